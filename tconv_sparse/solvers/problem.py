"""The deconvolution problem: every argument of :func:`~tconv_sparse.deconvolve` validated once.

:func:`parse_problem` checks each argument before any work (no operator is
built on the way to an error) and returns a :class:`Problem` holding the one
:class:`~tconv_sparse.ConvOperator` every solver multiplies with, the data
and the options in the working dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry, conv_transpose_output_shape
from tconv_sparse.operator import ConvOperator
from tconv_sparse.solvers.convergence import default_maxiter
from tconv_sparse.solvers.damp_rules import DAMP_RULES, parse_noise_std
from tconv_sparse.solvers.regularizers import REGULARIZERS

__all__ = ["SOLVERS", "Problem", "parse_problem", "default_x0"]

#: every ``solver`` value
SOLVERS = ("lsqr", "lsmr", "cg", "direct", "richardson_lucy", "pdhg")


@dataclass(frozen=True)
class Problem:
    """Everything :func:`~tconv_sparse.deconvolve` validated, in the working dtype."""

    operator: ConvOperator
    conv_kwargs: dict
    h: np.ndarray           # (N, output_size)
    x0: np.ndarray | None   # (N, input_size) or None for the solver's default
    solver: str
    regularizer: str | None
    damp: float
    maxiter: int
    tol: float
    batched: bool
    noise_std: float | None = None
    damp_rule: str | None = None   # the rule choosing each sample's damp when damp="auto", else None

    @property
    def geometry(self) -> Geometry:
        return self.operator.geometry

    @property
    def dtype(self) -> np.dtype:
        return self.operator.dtype

    @property
    def sample_shape(self) -> tuple:
        """``(C_in, *input_shape)``: the shape of one sample of ``x``."""
        return self.operator.dims

    @property
    def discrepancy(self) -> float | None:
        """``noise_std * sqrt(m)`` (``m`` data entries per sample), where the solvers stop; or ``None``."""
        return None if self.noise_std is None else self.noise_std * math.sqrt(self.operator.shape[0])

    @cached_property
    def column_sums(self) -> np.ndarray:
        """``C^T 1``: how much of each input the data see (Richardson-Lucy's normalisation)."""
        return self.operator.rmatvec(np.ones(self.operator.shape[0], dtype=self.dtype))


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {np.count_nonzero(~np.isfinite(array))} NaN or inf entries")


#: Richardson-Lucy reads entries down to ``-ROUNDOFF * eps * max|array|`` as zeros (FFT round-off)
ROUNDOFF = 100
_ADVICE = {"weight": "use a non-negative PSF, e.g. np.clip(weight, 0, None)",
           "h": "pass clip=True to set the negative data to 0 (noisy or background-subtracted counts), or use "
                "a least-squares solver such as solver='lsqr'",
           "x0": "pass clip=True to set its negative entries to 0, or start from np.clip(x0, 0, None)"}


def _nonnegative(name: str, array: np.ndarray, clip: bool) -> np.ndarray:
    """``array`` with its negative entries set to 0 if they are round-off (or ``clip`` allows it)."""
    if np.iscomplexobj(array):
        raise ValueError(f"solver='richardson_lucy' needs {name} real and >= 0 (Poisson model), got dtype "
                         f"{array.dtype}")
    lowest = np.min(array, initial=0)
    if lowest >= 0:
        return array
    allowance = ROUNDOFF * np.finfo(v.result_dtype(array)).eps * np.max(np.abs(array))
    if lowest < -allowance and not (clip and name != "weight"):
        raise ValueError(
            f"solver='richardson_lucy' needs {name} real and >= 0 (Poisson model), got minimum {lowest:.3g} "
            f"({np.count_nonzero(array < -allowance)} entries below -{allowance:.2g}, the round-off allowance "
            f"of {ROUNDOFF} eps * max|{name}|); {_ADVICE[name]}")
    return np.maximum(array, 0)


def _parse_damp(damp, damp_rule, solver, regularizer):
    """``(damp, damp_rule)``: a float and ``None``, or ``"auto"`` and the rule that will choose it."""
    damp_rule = v.parse_choice("damp_rule", damp_rule, DAMP_RULES)
    if not isinstance(damp, str):
        return v.parse_real("damp", damp, 0.0, math.inf, ">= 0 and finite"), None
    if damp != "auto":
        raise ValueError(f"damp must be a real number >= 0 and finite, or 'auto', got {damp!r}")
    if regularizer is not None or solver == "richardson_lucy":
        raise ValueError(f"damp='auto' chooses the Tikhonov damp (regularizer=None) of a least-squares "
                         f"solver, got solver={solver!r} and regularizer={regularizer!r}")
    return damp, damp_rule


def _parse_options(solver, regularizer, damp, maxiter, damp_rule="gcv"):
    """``solver``, ``regularizer``, ``damp``, ``damp_rule``, ``maxiter`` and the combinations they allow."""
    solver = v.parse_choice("solver", solver, SOLVERS)
    if regularizer is not None:
        regularizer = v.parse_choice("regularizer", regularizer, REGULARIZERS)
    damp, damp_rule = _parse_damp(damp, damp_rule, solver, regularizer)
    maxiter = v.parse_optional_int("maxiter", maxiter, 1)
    if regularizer == "tv" and solver != "pdhg":
        raise ValueError(f"regularizer='tv' is not differentiable: it needs solver='pdhg' "
                         f"(Chambolle-Pock), got solver={solver!r}")
    if solver == "richardson_lucy" and (regularizer is not None or damp != 0):   # damp="auto" refused above
        raise ValueError(f"solver='richardson_lucy' is regularised by its iteration count (maxiter) "
                         f"alone: it needs regularizer=None and damp=0, got regularizer={regularizer!r} "
                         f"and damp={damp!r}")
    return solver, regularizer, damp, maxiter, damp_rule


def _parse_geometry(h, weight: np.ndarray, input_shape, conv_kwargs: dict):
    """``h`` as ``(array, batched)`` and the forward geometry whose output has ``h``'s shape."""
    d = weight.ndim - 2
    h, batched = v.as_data("h", h, d)
    spatial = h.shape[2 if batched else 1:]
    if input_shape is None:
        input_shape = conv_transpose_output_shape(spatial, weight.shape[2:], stride=conv_kwargs["stride"],
                                                  padding=conv_kwargs["padding"],
                                                  dilation=conv_kwargs["dilation"])
    geometry = Geometry.forward(weight.shape, input_shape, **conv_kwargs)
    if geometry.output_shape != spatial:
        raise ValueError(f"h has spatial shape {spatial}, but the convolution of input_shape="
                         f"{geometry.input_shape} with these parameters produces {geometry.output_shape}; "
                         "give the input_shape whose convolution has h's shape (None: conv_transpose's "
                         "output shape)")
    channels = h.shape[1 if batched else 0]
    if channels != geometry.out_channels:
        raise ValueError(f"h has {channels} channels but the weight {weight.shape} produces "
                         f"C_out = weight.shape[0] = {geometry.out_channels}")
    return h, batched, geometry


def _parse_x0(x0, sample_shape: tuple, batch: int, d: int, dtype) -> np.ndarray:
    array, batched = v.as_data("x0", x0, d)
    if array.shape[int(batched):] != sample_shape or (batched and array.shape[0] != batch):
        raise ValueError(f"x0 must have the shape of x, {(batch, *sample_shape)} for a batched h or "
                         f"{sample_shape} (shared by every sample), got {array.shape}")
    if np.iscomplexobj(array) and dtype.kind != "c":
        raise ValueError(f"x0 is complex ({array.dtype}) but the problem is real ({dtype})")
    _check_finite("x0", array)
    return np.broadcast_to(array, (batch, *sample_shape)).reshape(batch, -1).astype(dtype)


def _parse_tol(tol, dtype) -> float:
    if tol is None:
        return max(math.sqrt(np.finfo(np.float64).eps), 10 * np.finfo(dtype).eps)
    return v.parse_real("tol", tol, 0.0, 1.0, "in the range 0 <= tol < 1")


def _richardson_lucy_inputs(weight, h, x0, clip: bool):
    """``weight``, ``h`` and ``x0`` checked non-negative, round-off (and, with ``clip``, data) set to 0."""
    weight, h = _nonnegative("weight", weight, False), _nonnegative("h", h, clip)
    if x0 is not None:
        x0 = _nonnegative("x0", x0, clip)
    if not np.any(weight > 0):
        raise ValueError("solver='richardson_lucy' needs a weight with a positive entry, got all zeros")
    return weight, h, x0


def parse_problem(h, weight, input_shape, conv_kwargs: dict, solver, damp, regularizer, x0, maxiter,
                  tol, noise_std=None, clip=False, damp_rule="gcv") -> Problem:
    """Validate every argument of :func:`~tconv_sparse.deconvolve`, then build its one operator."""
    weight = v.as_weight(weight)
    solver, regularizer, damp, maxiter, damp_rule = _parse_options(solver, regularizer, damp, maxiter, damp_rule)
    if not isinstance(clip, (bool, np.bool_)):
        raise v.ParameterTypeError(f"clip must be True or False, got {clip!r}")
    if clip and solver != "richardson_lucy":
        raise ValueError(f"clip=True sets negative data to 0 for solver='richardson_lucy' (Poisson model) only, "
                         f"got solver={solver!r}")
    noise_std = parse_noise_std(noise_std, damp_rule)
    h, batched, geometry = _parse_geometry(h, weight, input_shape, conv_kwargs)
    dtype = v.result_dtype(h, weight)
    tol = _parse_tol(tol, dtype)
    _check_finite("h", h)
    _check_finite("weight", weight)
    batch = h.shape[0] if batched else 1
    if x0 is not None:
        x0 = _parse_x0(x0, (geometry.in_channels, *geometry.input_shape), batch, geometry.ndim, dtype)
    if solver == "richardson_lucy":
        weight, h, x0 = _richardson_lucy_inputs(weight, h, x0, clip)
    operator = ConvOperator(weight.astype(dtype), geometry.input_shape, **conv_kwargs)
    maxiter = maxiter or default_maxiter(solver, geometry.input_size)
    return Problem(operator, conv_kwargs, h.reshape(batch, -1).astype(dtype), x0, solver, regularizer,
                   damp, maxiter, tol, batched, noise_std, damp_rule)


def default_x0(problem: Problem) -> np.ndarray:
    """Zeros; for Richardson-Lucy the flat image whose blur has the data's total flux."""
    batch, n = problem.h.shape[0], problem.geometry.input_size
    if problem.solver != "richardson_lucy":
        return np.zeros((batch, n), dtype=problem.dtype)
    flux = problem.h.sum(axis=1, keepdims=True) / np.sum(problem.column_sums)
    return np.broadcast_to(flux, (batch, n)).copy()
