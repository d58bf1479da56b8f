"""Symbolic convolution matrices: ``C`` and ``C.T`` with named kernel taps and inputs.

For a small single-channel geometry, :func:`symbolic_conv_transpose` writes
``C`` with tap names in place of numbers and the transposed convolution's
output ``C.T @ y`` as sums of named products, exactly as one would by hand::

    input [a, b], kernel [x, y, z], stride 2
    C   = [[x, y, z, 0, 0],
           [0, 0, x, y, z]]
    C.T @ [a, b] = [a*x, a*y, a*z + b*x, b*y, b*z]

Rows of ``C`` are the transposed convolution's inputs (the forward
convolution's outputs), columns its outputs (the forward convolution's
inputs), both flattened in C order. Padding modes other than ``"zeros"`` fold
the border back, so an entry of ``C`` can be a sum of taps.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.core.index_maps import product_map
from tconv_sparse.core.geometry import kernel_geometry

__all__ = ["symbolic_conv_transpose", "SymbolicConv", "MAX_SYMBOLIC_CELLS", "default_input_names",
           "default_kernel_names", "format_grid"]

#: Largest ``C`` (rows x columns) rendered symbolically.
MAX_SYMBOLIC_CELLS = 65536
#: Default input names: single letters, leaving w, x, y, z to the kernel.
_INPUT_LETTERS = string.ascii_lowercase[:22]


def _indexed_names(prefix, shape):
    sep = "" if max(shape) <= 10 else ","
    wrap = (lambda s: s) if sep == "" else (lambda s: f"[{s}]")
    return [prefix + wrap(sep.join(map(str, index))) for index in np.ndindex(*shape)]


def default_kernel_names(shape):
    """Default tap names: ``x, y, z`` for a 1-D kernel of up to 3 taps, else ``w`` + index."""
    if len(shape) == 1 and shape[0] <= 3:
        return ["x", "y", "z"][: shape[0]]
    return _indexed_names("w", shape)


def default_input_names(shape):
    """Default input names: ``a, b, c, ...`` for up to 22 inputs, else ``a`` + index."""
    if math.prod(shape) <= len(_INPUT_LETTERS):
        return list(_INPUT_LETTERS[: math.prod(shape)])
    return _indexed_names("a", shape)


def _parse_names(name, names, shape, default):
    if names is None:
        return np.array(default(shape), dtype=object).reshape(shape)
    array = np.array(names, dtype=object)
    if array.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (one name each), got shape {array.shape}")
    if not all(isinstance(n, str) and n for n in array.flat):
        raise v.ParameterTypeError(f"{name} must be non-empty strings, got {names!r}")
    return array


def format_grid(array, commas=True) -> str:
    """Nested-bracket text of an array of strings, numpy style, columns (last axis) aligned.

    ``commas=True`` separates entries by ``", "`` (sums of products), else by two spaces.

    Examples
    --------
    >>> from tconv_sparse.analysis.symbolic import format_grid
    >>> print(format_grid(np.array([["1", "10"], ["100", "2"]]), commas=False))
    [[1    10],
     [100  2]]
    """
    array = np.asarray(array, dtype=object)
    last = array.shape[-1] - 1
    columns = array.reshape(-1, array.shape[-1])
    widths = [max(len(s) for s in columns[:, j]) + commas for j in range(last + 1)]
    cells = np.array([(s + ("," if commas and j < last else "")).ljust(widths[j])
                      for row in columns for j, s in enumerate(row)], dtype=object).reshape(array.shape)
    return _nest(cells, " " if commas else "  ", 0)


def _nest(cells, sep, depth):
    if cells.ndim == 1:
        return "[" + sep.join(cells).rstrip() + "]"
    joiner = "," + "\n" * (cells.ndim - 1) + " " * (depth + 1)
    return "[" + joiner.join(_nest(part, sep, depth + 1) for part in cells) + "]"


@dataclass(frozen=True)
class SymbolicConv:
    """``C``, ``C.T`` and ``C.T @ y`` of a single-channel convolution, with names.

    Attributes
    ----------
    matrix : numpy.ndarray of str, shape ``(prod(input_shape), prod(output_shape))``
        ``C``: row ``r`` is transposed-convolution input ``r``, column ``c``
        transposed-convolution output ``c`` (flattened); entries are tap
        names, sums of tap names, or ``"0"``.
    output : numpy.ndarray of str, transposed output's spatial shape
        ``C.T @ y`` as sums of ``input*tap`` products (``"0"`` where none lands).
    input_names, kernel_names : numpy.ndarray of str
        The names used, shaped like the transposed input and the kernel.
    geometry : Geometry
        The forward convolution's geometry.
    """

    matrix: np.ndarray
    output: np.ndarray
    input_names: np.ndarray
    kernel_names: np.ndarray
    geometry: Geometry

    @property
    def transpose(self) -> np.ndarray:
        """``C.T`` (rows: transposed outputs, columns: transposed inputs)."""
        return self.matrix.T

    def matrix_text(self, transpose: bool = False) -> str:
        """``C`` (or ``C.T``) as text, one bracketed row per line."""
        return format_grid(self.transpose if transpose else self.matrix, commas=False)

    def output_text(self) -> str:
        """The transposed output as text: a list for 1-D, a grid of sums for 2-D and up."""
        return format_grid(self.output, commas=True)

    def __str__(self) -> str:
        flat = ", ".join(self.input_names.ravel())
        return (f"C =\n{self.matrix_text()}\n\nC.T =\n{self.matrix_text(transpose=True)}\n\n"
                f"C.T @ [{flat}] =\n{self.output_text()}")


def symbolic_conv_transpose(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                            output_size=None, dilation=1, padding_mode="zeros", kernel_names=None,
                            input_names=None) -> SymbolicConv:
    """Symbolic ``C``, ``C.T`` and transposed output of a small single-channel geometry.

    Parameters
    ----------
    kernel_shape : int or tuple of int
        Spatial kernel size.
    input_shape : int or tuple of int
        Spatial shape of the transposed convolution's input.
    stride, padding, output_padding, output_size, dilation, padding_mode
        As in :func:`tconv_sparse.conv_transpose`.
    kernel_names, input_names : nested sequences of str, optional
        Names shaped like the kernel and the input. Defaults: ``x, y, z`` for
        a 1-D kernel of up to 3 taps, else ``w`` with the tap index (``w01``);
        ``a, b, c, ...`` for up to 22 inputs, else ``a`` with the index.

    Returns
    -------
    SymbolicConv
        ``str()`` of it shows ``C``, ``C.T`` and the output;
        :func:`tconv_sparse.analysis.plotting.plot_symbolic_matrix` draws it.

    Raises
    ------
    ValueError
        For invalid geometry arguments or names, or when ``C`` has more than
        ``MAX_SYMBOLIC_CELLS`` entries.

    Examples
    --------
    The CS231n 1-D example: input ``[a, b]``, kernel ``[x, y, z]``, stride 2.

    >>> import tconv_sparse as ts
    >>> s = ts.symbolic_conv_transpose(3, 2, stride=2)
    >>> print(s.matrix_text())
    [[x  y  z  0  0],
     [0  0  x  y  z]]
    >>> print(s.output_text())
    [a*x, a*y, a*z + b*x, b*y, b*z]

    Padding 1 crops the first and last output; ``output_padding=1`` keeps the last:

    >>> print(ts.symbolic_conv_transpose(3, 2, stride=2, padding=1, output_padding=1).output_text())
    [a*y, a*z + b*x, b*y, b*z]

    2-D outputs are grids of sums:

    >>> print(ts.symbolic_conv_transpose((2, 2), (2, 2), stride=1).output_text())
    [[a*w00,         a*w01 + b*w00,                 b*w01],
     [a*w10 + c*w00, a*w11 + b*w10 + c*w01 + d*w00, b*w11 + d*w01],
     [c*w10,         c*w11 + d*w10,                 d*w11]]
    """
    geometry = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, output_size=output_size,
                               dilation=dilation, padding_mode=padding_mode)
    kernel_shape = geometry.kernel_shape
    cells = geometry.output_size * geometry.input_size
    if cells > MAX_SYMBOLIC_CELLS:
        raise ValueError(
            f"the symbolic matrix would have {geometry.output_size} x {geometry.input_size} = {cells} "
            f"entries; symbolic rendering is for small geometries (at most {MAX_SYMBOLIC_CELLS})"
        )
    taps = _parse_names("kernel_names", kernel_names, kernel_shape, default_kernel_names).ravel()
    inputs = _parse_names("input_names", input_names, geometry.output_shape, default_input_names)
    fused = product_map(geometry.axis_maps)
    matrix = np.full(geometry.matrix_shape, "0", dtype=object)
    for row in range(fused.output_size):
        for pair in range(fused.row_ptr[row], fused.row_ptr[row + 1]):
            tap_range = fused.tap[fused.tap_ptr[pair]:fused.tap_ptr[pair + 1]]
            matrix[row, fused.col[pair]] = " + ".join(taps[tap_range])
    flat_inputs = inputs.ravel()
    output = np.array([
        " + ".join(f"{flat_inputs[o]}*{taps[t]}" for o, t in zip(fused.back_out[start:stop],
                                                               fused.back_tap[start:stop])) or "0"
        for start, stop in zip(fused.back_ptr[:-1], fused.back_ptr[1:])
    ], dtype=object).reshape(geometry.input_shape)
    return SymbolicConv(matrix=matrix, output=output, input_names=inputs,
                        kernel_names=taps.reshape(kernel_shape), geometry=geometry)
