"""Argument parsing shared by every public entry point.

Each parser checks one argument, returns it normalised, and raises before any
work is done with a message that names the parameter, the bad value and the
valid range. Geometry-level checks (sizes, padding against input sizes) live in
:mod:`tconv_sparse.core.geometry`; this module only knows single arguments.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = [
    "ParameterTypeError",
    "MAX_SIZE",
    "MAX_SIZE_TEXT",
    "check_size",
    "parse_max_bytes",
    "BYTES_RULE",
    "PADDING_MODES",
    "PADDING_STRINGS",
    "parse_int_tuple",
    "parse_padding",
    "parse_choice",
    "parse_real",
    "parse_optional_int",
    "parse_padding_mode",
    "parse_groups",
    "parse_optional_int_tuple",
    "check_weight_shape",
    "as_weight",
    "as_data",
    "as_bias",
    "result_dtype",
    "parse_dtype",
    "check_bytes",
    "format_bytes",
]

PADDING_MODES = ("zeros", "circular", "reflect", "replicate")
PADDING_STRINGS = ("valid", "same", "full")
_SUPPORTED_DTYPES = (np.float32, np.float64, np.complex64, np.complex128)

#: the largest size parameter (stride, dilation, padding, kernel and input sizes,
#: output_padding, output_size) and derived size (effective kernel, padded input, output
#: length): positions ``o * stride + t * dilation - lo`` then stay inside int64, the index
#: type of every map and kernel
MAX_SIZE = 2**62
MAX_SIZE_TEXT = "2**62"


class ParameterTypeError(TypeError, ValueError):
    """An argument of the wrong type.

    It is both a :class:`TypeError` (its cause) and a :class:`ValueError` (the
    library's one error class for bad arguments), the way
    :class:`numpy.exceptions.AxisError` is both ``ValueError`` and ``IndexError``.
    """


def _as_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(
            f"{name} must be an int or a tuple of ints, got {value!r} of type {type(value).__name__}"
        )
    return int(value)


def _is_sequence(value) -> bool:
    return isinstance(value, (tuple, list)) or (isinstance(value, np.ndarray) and value.ndim > 0)


def parse_int_tuple(name: str, value, ndim: int, minimum: int) -> tuple[int, ...]:
    """Parse an int or a length-``ndim`` sequence of ints, each ``>= minimum``."""
    if isinstance(value, (str, bytes)):
        raise ParameterTypeError(f"{name} must be an int or a tuple of {ndim} ints, got {value!r}")
    if not _is_sequence(value):
        values = (_as_int(name, value),) * ndim
    else:
        seq = list(value)
        if len(seq) != ndim:
            raise ValueError(
                f"{name} must be an int or a tuple of {ndim} ints (one per spatial axis), "
                f"got {value!r} with {len(seq)} entries"
            )
        values = tuple(_as_int(name, v) for v in seq)
    for v in values:
        if v < minimum:
            raise ValueError(f"{name} must be >= {minimum} on every axis, got {value!r}")
        if v > MAX_SIZE:
            raise ValueError(
                f"{name} must be an int in [{minimum}, {MAX_SIZE_TEXT}] on every axis, got {value!r}"
            )
    return values


def check_size(what: str, size: int, because: str) -> None:
    """Refuse a derived size above :data:`MAX_SIZE`; ``because`` names the parameters behind it."""
    if size > MAX_SIZE:
        raise ValueError(f"{what} = {size} exceeds {MAX_SIZE_TEXT}, the largest size the int64 "
                         f"index arithmetic allows; {because}")


def parse_optional_int_tuple(name: str, value, ndim: int, minimum: int):
    """Like :func:`parse_int_tuple`, but ``None`` passes through."""
    return None if value is None else parse_int_tuple(name, value, ndim, minimum)


def parse_groups(groups) -> int:
    """Parse ``groups`` (an int >= 1)."""
    if _is_sequence(groups) or not isinstance(groups, numbers.Integral) or isinstance(groups, (bool, np.bool_)):
        raise ParameterTypeError(f"groups must be an int >= 1, got {groups!r}")
    value = int(groups)
    if value < 1:
        raise ValueError(f"groups must be an int >= 1, got {groups!r}")
    if value > MAX_SIZE:
        raise ValueError(f"groups must be an int in [1, {MAX_SIZE_TEXT}], got {groups!r}")
    return value


def parse_padding(padding, ndim: int):
    """Normalise ``padding`` to a string or a tuple of ``ndim`` ``(lo, hi)`` pairs.

    Accepted: an int >= 0; a tuple of ``ndim`` entries, each an int or a
    ``(lo, hi)`` pair; or one of ``"valid"``, ``"same"``, ``"full"`` (any case).
    """
    if isinstance(padding, str):
        lowered = padding.lower()
        if lowered not in PADDING_STRINGS:
            raise ValueError(
                f"padding must be an int >= 0, a tuple of {ndim} ints or (lo, hi) pairs, "
                f"or one of {PADDING_STRINGS}; got {padding!r}"
            )
        return lowered
    if not _is_sequence(padding):
        p = _as_int("padding", padding)
        pairs = ((p, p),) * ndim
    else:
        entries = list(padding)
        if len(entries) != ndim:
            raise ValueError(
                f"padding must have one entry per spatial axis ({ndim}), each an int or a "
                f"(lo, hi) pair; got {padding!r} with {len(entries)} entries"
            )
        pairs = []
        for entry in entries:
            if isinstance(entry, str):
                raise ParameterTypeError(f"padding entries must be ints or (lo, hi) pairs, got {padding!r}")
            if not _is_sequence(entry):
                p = _as_int("padding", entry)
                pairs.append((p, p))
            else:
                pair = list(entry)
                if len(pair) != 2:
                    raise ValueError(f"padding pairs must be (lo, hi), got {entry!r} in padding={padding!r}")
                pairs.append((_as_int("padding", pair[0]), _as_int("padding", pair[1])))
        pairs = tuple(pairs)
    if any(lo < 0 or hi < 0 for lo, hi in pairs):
        raise ValueError(f"padding must be >= 0 on every side, got {padding!r}")
    if any(max(pair) > MAX_SIZE for pair in pairs):
        raise ValueError(f"padding must be an int in [0, {MAX_SIZE_TEXT}] on every side, got {padding!r}")
    return tuple(pairs)


def parse_choice(name: str, value, valid) -> str:
    """Check that ``value`` is one of the strings in ``valid``; return it."""
    if not isinstance(value, str):
        raise ParameterTypeError(f"{name} must be one of {tuple(valid)}, got {value!r}")
    if value not in valid:
        raise ValueError(f"{name} must be one of {tuple(valid)}, got {value!r}")
    return value


def parse_real(name: str, value, low: float, high: float, valid: str) -> float:
    """Check that ``value`` is a real number with ``low <= value < high``; return it as a float.

    ``valid`` states the range in the messages (``">= 0 and finite"``). NaN
    is never in range; bools are not numbers here.

    Examples
    --------
    >>> from tconv_sparse.core.validation import parse_real
    >>> parse_real("tol", 1e-6, 0.0, 1.0, "in the range 0 <= tol < 1")
    1e-06
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{name} must be a real number {valid}, got {value!r}")
    if not low <= value < high:
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return float(value)


def parse_optional_int(name: str, value, minimum: int) -> int | None:
    """Check that ``value`` is ``None`` or an int ``>= minimum``; return it as an int (or ``None``)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ParameterTypeError(f"{name} must be an int >= {minimum} or None, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum} or None, got {value!r}")
    return int(value)


def parse_padding_mode(padding_mode) -> str:
    """Check ``padding_mode`` against :data:`PADDING_MODES`."""
    return parse_choice("padding_mode", padding_mode, PADDING_MODES)


def _as_numeric_array(name: str, value) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise ParameterTypeError(f"{name} must be an array of numbers, got {type(value).__name__}")
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise ParameterTypeError(f"{name} must be an array of numbers: {error}") from None
    if array.dtype.kind not in "biufc":
        raise ParameterTypeError(f"{name} must be an array of numbers, got dtype {array.dtype}")
    return array


def check_weight_shape(shape) -> tuple:
    """Check a weight shape ``(C_out, C_in // groups, *kernel_size)``; return it as ints."""
    shape = tuple(map(int, shape))
    if len(shape) < 3:
        raise ValueError(
            "weight must have shape (C_out, C_in // groups, *kernel_size) with at least one "
            f"spatial axis, got shape {shape}"
        )
    if min(shape) < 1:
        raise ValueError(f"weight must have no empty axis, got shape {shape}")
    return shape


def as_weight(weight) -> np.ndarray:
    """Return ``weight`` as an array with at least one spatial axis and no empty axis."""
    array = _as_numeric_array("weight", weight)
    check_weight_shape(array.shape)
    return array


def as_data(name: str, value, spatial_ndim: int) -> tuple[np.ndarray, bool]:
    """Return ``(array, batched)`` for an input of layout ``(N, C, *spatial)`` or ``(C, *spatial)``."""
    array = _as_numeric_array(name, value)
    if array.ndim == spatial_ndim + 2:
        batched = True
    elif array.ndim == spatial_ndim + 1:
        batched = False
    else:
        raise ValueError(
            f"{name} must have {spatial_ndim + 1} (unbatched C, *spatial) or {spatial_ndim + 2} "
            f"(batched N, C, *spatial) dimensions for a weight with {spatial_ndim} spatial "
            f"axes, got shape {array.shape}"
        )
    return array, batched


def as_bias(bias, channels: int, dtype) -> np.ndarray | None:
    """Return ``bias`` as a 1-D array of ``channels`` entries in ``dtype`` (or ``None``)."""
    if bias is None:
        return None
    array = _as_numeric_array("bias", bias)
    if array.shape != (channels,):
        raise ValueError(f"bias must have shape ({channels},) (one per output channel), got {array.shape}")
    if array.dtype.kind == "c" and np.dtype(dtype).kind != "c":
        raise ValueError(f"bias is complex ({array.dtype}) but the result dtype is real ({np.dtype(dtype)})")
    return array.astype(dtype, copy=False)


def _promote(dtype: np.dtype) -> np.dtype:
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.type not in _SUPPORTED_DTYPES:
        raise ValueError(
            f"dtype {dtype} is not supported; use float32, float64, complex64 or complex128"
        )
    return dtype


def result_dtype(*arrays) -> np.dtype:
    """``np.result_type`` of the inputs, with integers and bools promoted to float64."""
    return _promote(np.result_type(*arrays))


def parse_dtype(dtype, weight: np.ndarray) -> np.dtype:
    """The matrix dtype: ``dtype`` if given, else the weight's, promoted as above."""
    if dtype is None:
        return _promote(weight.dtype)
    try:
        parsed = np.dtype(dtype)
    except TypeError:
        raise ParameterTypeError(f"dtype must be a NumPy dtype, got {dtype!r}") from None
    if parsed.kind not in "fc" or parsed.type not in _SUPPORTED_DTYPES:
        raise ValueError(f"dtype must be float32, float64, complex64 or complex128, got {parsed}")
    if weight.dtype.kind == "c" and parsed.kind != "c":
        raise ValueError(f"dtype {parsed} is real but the weight is complex ({weight.dtype})")
    return parsed


def format_bytes(size: float) -> str:
    """Human-readable byte count, e.g. ``'1.5 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


#: what a memory limit must be, in every message about one
BYTES_RULE = "a positive int (or a finite float such as 8e9): a number of bytes >= 1"


def parse_max_bytes(value, name: str = "max_bytes") -> int:
    """Parse a memory limit: a number of bytes >= 1, an int or a finite float (``8e9``).

    Floats are rounded down. Anything else (strings, NaN, infinities, zero, negative
    numbers, bools) raises, naming ``name``.

    Examples
    --------
    >>> from tconv_sparse.core.validation import parse_max_bytes
    >>> parse_max_bytes(8e9), parse_max_bytes(2**30)
    (8000000000, 1073741824)
    """
    message = f"{name} must be {BYTES_RULE}, got {value!r}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ParameterTypeError(f"{message} of type {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        value = int(value)
    elif not math.isfinite(value):
        raise ValueError(message)
    if not value >= 1:
        raise ValueError(message)
    return int(value)


def check_bytes(what: str, size: float, max_bytes: int | None = None) -> None:
    """Refuse an allocation of ``size`` bytes above the memory limit (``max_bytes``, default
    the library limit of :func:`tconv_sparse.set_max_bytes`)."""
    from tconv_sparse.core import config

    limit = config.get_max_bytes() if max_bytes is None else parse_max_bytes(max_bytes)
    if size > limit:
        raise ValueError(
            f"{what} would need an estimated {format_bytes(size)} ({int(size)} bytes), above the "
            f"memory limit of {format_bytes(limit)}; raise it with max_bytes=, "
            "tconv_sparse.set_max_bytes() or TCONV_SPARSE_MAX_BYTES if the machine has the memory"
        )
