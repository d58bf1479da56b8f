"""``tconv-sparse explain``: every shape question about one transposed convolution, answered.

:func:`explain_transposed_conv` returns the text; the sub-command prints it
and, with ``--plot FILE``, saves the conv-arithmetic frames of
:func:`tconv_sparse.analysis.plotting.plot_conv_arithmetic`. The text has five parts:

1. the forward convolution's output-size formula, filled in, and every input
   size it maps to the given one (why 3x3 and 4x4 both give 2x2);
2. the transposed output size for each ``output_padding`` (PyTorch rule) and
   for Keras ``"valid"``/``"same"``;
3. for each of those, the window it keeps of the uncropped *canvas* and the
   equivalent tconv_sparse, PyTorch, Keras and JAX calls;
4. for small sizes, the symbolic canvas (sums of ``input*tap`` products) and
   the requested output;
5. the overlap map of the requested output and its checkerboard summary.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry, conv_output_shape
from tconv_sparse.core.geometry import kernel_geometry
from tconv_sparse.analysis.overlap import overlap_summary
from tconv_sparse.analysis.symbolic import format_grid, symbolic_conv_transpose

__all__ = ["explain_transposed_conv", "equivalent_calls"]

#: Symbolic output is printed when the canvas has at most this many cells.
_MAX_SYMBOLIC_CANVAS = 100
#: The overlap map is printed up to this many columns.
_MAX_MAP_COLUMNS = 40
_SPATIAL = {1: "H", 2: "HW", 3: "DHW"}


@dataclass(frozen=True)
class _Option:
    """One way to choose the output size: its arguments, label and geometry."""

    label: str
    padding: object  # (lo, hi) pairs, or "valid" / "same"
    output_padding: object  # None or a tuple
    geometry: Geometry

    @property
    def key(self):
        """Options with equal keys compute the same transposed convolution."""
        return self.geometry.input_shape, self.geometry.padding


def _shape_text(shape) -> str:
    return "x".join(map(str, shape))


def _int_or_tuple(values) -> str:
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else str(values)


def _padding_text(padding) -> str:
    if isinstance(padding, str):
        return f'"{padding}"'
    if all(lo == hi for lo, hi in padding):
        return _int_or_tuple(lo for lo, _ in padding)
    return str(tuple(padding))


def _option(label, kernel_shape, input_shape, stride, padding, output_padding, dilation):
    geometry = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                               output_padding=output_padding, dilation=dilation)
    return _Option(label, padding, output_padding, geometry)


def _options(kernel_shape, input_shape, stride, padding, output_padding, output_size, dilation):
    """``(requested, options)``: the requested option, and every output_padding of the given
    padding plus Keras "valid" / "same" (the requested one included, first of its key)."""
    base = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                           output_padding=output_padding, output_size=output_size, dilation=dilation)
    ndim = base.ndim
    padding = v.parse_padding(padding, ndim)
    if padding == "full":
        padding = tuple((k_eff - 1, k_eff - 1) for k_eff in base.effective_kernel_shape)
    args = (kernel_shape, input_shape, stride)
    prefix = f"padding={_padding_text(padding)}"
    options = [_option(prefix, *args, padding, None, dilation)] if isinstance(padding, str) else []
    max_op = [max(s, d) - 1 for s, d in zip(base.stride, base.dilation)]
    for op in range(max(max_op) + 1):
        ops = tuple(min(op, m) for m in max_op)
        options.append(_option(f"{prefix}, output_padding={_int_or_tuple(ops)}", *args, padding, ops, dilation))
    options += [_option(f'Keras padding="{keras}"', *args, keras, None, dilation)
                for keras in ("valid", "same") if keras != padding]
    match = [option for option in options if option.key == (base.input_shape, base.padding)]
    if match:
        return match[0], options
    # an output_size or per-axis output_padding outside the uniform options
    zero = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding, output_padding=0,
                           dilation=dilation).input_shape
    ops = tuple(n - m for n, m in zip(base.input_shape, zero))
    label = (f"{prefix}, output_size={_shape_text(base.input_shape)}" if output_size is not None
             else f"{prefix}, output_padding={_int_or_tuple(ops)}")
    requested = _Option(label, padding, ops, base)
    return requested, [requested] + options


# ------------------------------------------------------------------ 1. forward sizes
def _axis_groups(geometry, padding):
    """Axes with identical parameters, as ``(label, axes)``; label ``""`` when all are alike."""
    groups = {}
    for axis in range(geometry.ndim):
        pad = padding if isinstance(padding, str) else padding[axis]
        key = (geometry.output_shape[axis], geometry.input_shape[axis], geometry.kernel_shape[axis],
               geometry.stride[axis], geometry.dilation[axis], pad)
        groups.setdefault(key, []).append(axis)
    if len(groups) == 1:
        return [("", list(range(geometry.ndim)))]
    return [(f"axis {', '.join(map(str, axes))}: ", axes) for axes in groups.values()]


def _forward_size(n, k, s, pad, d):
    try:
        return conv_output_shape((n,), (k,), stride=s, padding=pad if isinstance(pad, str) else (pad,),
                                 dilation=d)[0]
    except ValueError:  # the kernel is larger than the padded input
        return None


def _forward_section(geometry, padding):
    if padding == "same":
        lines = ['1. The forward convolution (the one being transposed), "same": out = ceil(n / stride)']
    else:
        lines = ["1. The forward convolution (the one being transposed): "
                 "out = floor((n + lo + hi - k_eff) / stride) + 1,  k_eff = dilation*(k - 1) + 1"]
    sizes_per_axis = [None] * geometry.ndim
    for label, axes in _axis_groups(geometry, padding):
        axis = axes[0]
        i, k, s, d = (geometry.output_shape[axis], geometry.kernel_shape[axis], geometry.stride[axis],
                      geometry.dilation[axis])
        pad = padding if isinstance(padding, str) else padding[axis]
        k_eff = d * (k - 1) + 1
        sizes = [n for n in range(1, (i + 1) * s + 2 * k_eff) if _forward_size(n, k, s, pad, d) == i]
        if padding == "same":
            lines.append(f"   {label}out = ceil(n / {s})")
            lines += [f"     n = {n}: ceil({n} / {s}) = {i}" for n in sizes]
        else:
            lo, hi = (0, 0) if pad == "valid" else pad
            lines.append(f"   {label}k_eff = {d}*({k} - 1) + 1 = {k_eff};  "
                         f"out = floor((n + {lo} + {hi} - {k_eff}) / {s}) + 1")
            lines += [f"     n = {n}: floor(({n} + {lo} + {hi} - {k_eff}) / {s}) + 1 = "
                      f"floor({n + lo + hi - k_eff}/{s}) + 1 = {i}" for n in sizes]
        for axis in axes:
            sizes_per_axis[axis] = sizes
    shapes = [_shape_text(shape) for shape in itertools.product(*sizes_per_axis)]
    shown = ", ".join(shapes[:16]) + (f", ... ({len(shapes)} in all)" if len(shapes) > 16 else "")
    lines.append(f"   So every input of {shown} gives {_shape_text(geometry.output_shape)}.")
    if len(shapes) > 1:
        lines.append(f"   Rounding discards up to stride - 1 pixels, so a {_shape_text(geometry.output_shape)} "
                     "input does not tell the transposed convolution which size to return: "
                     "output_padding (or output_size) picks one.")
    return lines


# ------------------------------------------------------------------ 2. transposed sizes
def _axes_formula(option, formula):
    return ";  ".join(label + formula(option, axes[0])
                      for label, axes in _axis_groups(option.geometry, option.padding))


def _torch_formula(option, axis):
    g = option.geometry
    lo, hi = option.padding[axis]
    op = 0 if option.output_padding is None else option.output_padding[axis]
    return (f"({g.output_shape[axis]} - 1)*{g.stride[axis]} - ({lo} + {hi}) + "
            f"{g.effective_kernel_shape[axis]} + {op} = {g.input_shape[axis]}")


def _keras_formula(option, axis):
    g = option.geometry
    i, s, k_eff = g.output_shape[axis], g.stride[axis], g.effective_kernel_shape[axis]
    op = None if option.output_padding is None else option.output_padding[axis]
    if option.padding == "valid":
        text = f"({i} - 1)*{s} + max({k_eff}, {s})" if op is None else f"({i} - 1)*{s} + {k_eff} + {op}"
    else:
        text = f"{i}*{s}" if op is None else f"({i} - 1)*{s} + {k_eff} % 2 + {op}"
    return f"{text} = {g.input_shape[axis]}"


def _mark(option, requested):
    return "   <- requested" if option.key == requested.key else ""


def _size_section(options, requested):
    g = requested.geometry
    lines = ["2. The transposed convolution: output size"]
    numeric = [o for o in options if not isinstance(o.padding, str)]
    if numeric:
        max_op = _int_or_tuple(max(s, d) for s, d in zip(g.stride, g.dilation))
        lines.append("   PyTorch rule: (i - 1)*stride - (lo + hi) + k_eff + output_padding,  "
                     f"0 <= output_padding < max(stride, dilation) = {max_op}")
        lines += [f"     {o.label}: {_axes_formula(o, _torch_formula)}  -> "
                  f"{_shape_text(o.geometry.input_shape)}{_mark(o, requested)}" for o in numeric]
    lines.append('   Keras / JAX rule: "valid" (i - 1)*stride + max(k_eff, stride), "same" i*stride; '
                 'with output_padding op: "valid" (i - 1)*stride + k_eff + op, '
                 '"same" (i - 1)*stride + k_eff % 2 + op')
    lines += [f"     {o.label}: {_axes_formula(o, _keras_formula)}  -> "
              f"{_shape_text(o.geometry.input_shape)}{_mark(o, requested)}"
              for o in options if isinstance(o.padding, str)]
    return lines


# ------------------------------------------------------------------ 3. equivalent calls
def _canvas(geometry):
    """Per axis ``(full, crop_start, crop_end)``: the uncropped size and the cells cut at each end
    (``crop_end < 0``: zeros appended past the canvas)."""
    return [((i - 1) * s + k_eff, lo, (i - 1) * s + k_eff - lo - n)
            for i, s, k_eff, (lo, _), n in zip(geometry.output_shape, geometry.stride,
                                                geometry.effective_kernel_shape, geometry.padding,
                                                geometry.input_shape)]


def _window(geometry):
    return ", ".join(f"{start}:{full - end}" for full, start, end in _canvas(geometry))


def _window_text(geometry):
    canvas = _canvas(geometry)
    text = f"canvas[{_window(geometry)}] of the uncropped {_shape_text(full for full, _, _ in canvas)}"
    if any(end < 0 for _, _, end in canvas):
        text += " (cells past the canvas are zeros: no product lands there)"
    return text


def _ts_call(option):
    g = option.geometry
    args = [f"stride={_int_or_tuple(g.stride)}", f"padding={_padding_text(option.padding)}"]
    if option.output_padding is not None and (isinstance(option.padding, str) or any(option.output_padding)):
        args.append(f"output_padding={_int_or_tuple(option.output_padding)}")
    if max(g.dilation) > 1:
        args.append(f"dilation={_int_or_tuple(g.dilation)}")
    return f"ts.conv_transpose(y, w, {', '.join(args)})"


def _torch_call(g):
    canvas = _canvas(g)
    dilation = f", dilation={_int_or_tuple(g.dilation)}" if max(g.dilation) > 1 else ""
    ops = [start - end for _, start, end in canvas]
    if all(0 <= op < max(s, d) for op, s, d in zip(ops, g.stride, g.dilation)):
        args = f"stride={_int_or_tuple(g.stride)}"
        if any(start for _, start, _ in canvas):
            args += f", padding={_int_or_tuple(start for _, start, _ in canvas)}"
        if any(ops):
            args += f", output_padding={_int_or_tuple(ops)}"
        return f"torch.nn.functional.conv_transpose{g.ndim}d(y, w, {args}{dilation})"
    pads = tuple(p for _, start, end in reversed(canvas) for p in (-start, -end))
    return (f"torch.nn.functional.pad(torch.nn.functional.conv_transpose{g.ndim}d(y, w, "
            f"stride={_int_or_tuple(g.stride)}{dilation}), {pads})"
            "   # a negative pad crops: no single torch layer crops unevenly like this")


def _keras_layer(g, padding, output_padding):
    args = [f"filters=C_out, kernel_size={_int_or_tuple(g.kernel_shape)}",
            f"strides={_int_or_tuple(g.stride)}", f'padding="{padding}"']
    if output_padding is not None:
        args.append(f"output_padding={_int_or_tuple(output_padding)}")
    if max(g.dilation) > 1:
        args.append(f"dilation_rate={_int_or_tuple(g.dilation)}")
    return f"keras.layers.Conv{g.ndim}DTranspose({', '.join(args)})"


def _keras_match(g):
    """``(padding, output_padding)`` of a single Keras layer computing exactly ``g``, or ``None``.

    Keras allows ``output_padding < stride`` only; ``"same"`` with an
    ``output_padding`` is offered only where the TensorFlow backend accepts it
    (its forward "same" convolution of the output gives back the input size).
    """
    options = [(pad, ops) for pad in ("valid", "same")
               for ops in [None] + [(op,) * g.ndim for op in range(min(g.stride))]]
    for pad, ops in options:
        keras = kernel_geometry(g.kernel_shape, g.output_shape, stride=g.stride, padding=pad,
                                output_padding=ops, dilation=g.dilation)
        tensorflow_rejects = pad == "same" and ops is not None and any(
            -(-n // s) != i for n, s, i in zip(keras.input_shape, g.stride, g.output_shape))
        if (keras.input_shape, keras.padding) == (g.input_shape, g.padding) and not tensorflow_rejects:
            return pad, ops
    return None


def _keras_call(g):
    if max(g.stride) > 1 and max(g.dilation) > 1:
        return "(no Keras layer: Keras does not combine strides > 1 with dilation_rate > 1)"
    match = _keras_match(g)
    if match is not None:
        return _keras_layer(g, *match)
    canvas = _canvas(g)
    wrap = (lambda pairs: pairs) if g.ndim > 1 else (lambda pairs: pairs[0])
    layers = [_keras_layer(g, "valid", (0,) * g.ndim)]
    crops = tuple((start, max(end, 0)) for _, start, end in canvas)
    if any(max(pair) for pair in crops):
        layers.append(f"keras.layers.Cropping{g.ndim}D({wrap(crops)})")
    zeros = tuple((0, max(-end, 0)) for _, _, end in canvas)
    if any(max(pair) for pair in zeros):
        layers.append(f"keras.layers.ZeroPadding{g.ndim}D({wrap(zeros)})")
    return " then ".join(layers)


def _jax_call(g):
    spatial = _SPATIAL[g.ndim]
    pairs = tuple((k_eff - 1 - start, k_eff - 1 - end)
                  for k_eff, (_, start, end) in zip(g.effective_kernel_shape, _canvas(g)))
    dilation = f", rhs_dilation={tuple(g.dilation)}" if max(g.dilation) > 1 else ""
    return (f"jax.lax.conv_transpose(y, w, strides={tuple(g.stride)}, padding={pairs}{dilation}, "
            f'dimension_numbers=("NC{spatial}", "OI{spatial}", "NC{spatial}"), transpose_kernel=True)')


def equivalent_calls(option) -> list:
    """``[(framework, code)]`` computing ``option``'s transposed convolution of ``y`` with ``w``."""
    g = option.geometry
    calls = [("tconv_sparse", _ts_call(option))]
    if g.ndim not in _SPATIAL:
        return calls
    return calls + [("PyTorch", _torch_call(g)), ("Keras", _keras_call(g)), ("JAX", _jax_call(g))]


def _calls_section(options, requested):
    ndim = requested.geometry.ndim
    spatial = ", ".join(_SPATIAL.get(ndim, "S" * ndim))
    lines = [f"3. Equivalent calls. y: (N, C_in, {spatial}); w: (C_in, C_out, *kernel), the layout of "
             "torch ConvTranspose (Keras: channels-last data, kernel (*kernel, C_out, C_in)).",
             "   Every product lands on the uncropped canvas of (i - 1)*stride + k_eff cells per axis; "
             "padding crops lo cells at the start and hi - output_padding at the end."]
    groups = {}
    for option in options:
        groups.setdefault(option.key, []).append(option)
    for group in groups.values():
        first = group[0]
        lines.append(f"   {_shape_text(first.geometry.input_shape)}  [{'; '.join(o.label for o in group)}]"
                     f"{_mark(first, requested)}")
        lines.append(f"     keeps {_window_text(first.geometry)}")
        calls = equivalent_calls(first)
        width = max(len(name) for name, _ in calls) + 1
        lines += [f"     {name + ':':<{width}} {code}" for name, code in calls]
    sizes = {}
    for group in groups.values():
        sizes.setdefault(group[0].geometry.input_shape, []).append(group[0])
    for shape, same in sizes.items():
        if len(same) > 1:
            windows = "; ".join(f"{option.label} keeps canvas[{_window(option.geometry)}]" for option in same)
            lines.append(f"   Same size {_shape_text(shape)}, different pixels: {windows}.")
    return lines


# ------------------------------------------------------------------ 4. symbolic, 5. overlap
def _indented(text, indent="     "):
    return [indent + line for line in text.splitlines()]


def _symbolic_section(requested):
    g = requested.geometry
    canvas = _canvas(g)
    cells = math.prod(full for full, _, _ in canvas)
    if cells > _MAX_SYMBOLIC_CANVAS or math.prod(g.output_shape) > 22:
        return [f"4. Symbolic output: skipped for a canvas of {cells} cells "
                f"(printed up to {_MAX_SYMBOLIC_CANVAS} cells and 22 inputs)"]
    full = symbolic_conv_transpose(g.kernel_shape, g.output_shape, stride=g.stride, dilation=g.dilation)
    lines = ["4. Symbolic transposed output", "   input:"]
    lines += _indented(format_grid(full.input_names))
    lines += ["   kernel:"] + _indented(format_grid(full.kernel_names))
    lines += [f"   uncropped canvas ({_shape_text(full.geometry.input_shape)}):"]
    lines += _indented(full.output_text())
    padded = np.pad(full.output, [(0, max(-end, 0)) for _, _, end in canvas], constant_values="0")
    window = padded[tuple(slice(start, full_size - end) for full_size, start, end in canvas)]
    lines += [f"   requested output ({_shape_text(g.input_shape)}) = {_window_text(g)}:"]
    return lines + _indented(format_grid(window))


def _overlap_section(requested):
    g = requested.geometry
    summary = overlap_summary(g.kernel_shape, g.output_shape, stride=g.stride, padding=requested.padding,
                              output_padding=requested.output_padding, dilation=g.dilation)
    lines = [f"5. Overlap map of the requested {_shape_text(g.input_shape)} output: input-kernel products "
             "landing on each pixel (the column counts of C)"]
    if summary.counts.shape[-1] <= _MAX_MAP_COLUMNS and summary.counts.size <= 40 * _MAX_MAP_COLUMNS:
        lines += _indented(format_grid(summary.counts.astype(str), commas=False))
    ratio = "inf (some pixels get no product)" if math.isinf(summary.ratio) else f"{summary.ratio:g}"
    lines.append(f"   min {summary.min}, max {summary.max}, max/min {ratio}")
    tile = " ".join(format_grid(summary.tile.astype(str)).split())
    if not summary.checkerboard:
        return lines + [f"   interior tile (period = stride): {tile}, even: no checkerboard"]
    reasons = dict.fromkeys(
        f"kernel {k} % stride {s} = {k % s}" if k % s else f"gcd(dilation {d}, stride {s}) = {math.gcd(d, s)}"
        for k, s, d in zip(g.kernel_shape, g.stride, g.dilation) if k % s or math.gcd(d, s) > 1
    )
    return lines + [f"   interior tile (period = stride): {tile}, uneven: a checkerboard, since "
                    f"{'; '.join(reasons)} (Odena, Dumoulin & Olah 2016)"]


def explain_transposed_conv(kernel_shape, input_shape, *, stride=1, padding=0, output_padding=None,
                            output_size=None, dilation=1) -> str:
    """Explain a transposed convolution's shapes, equivalent calls, products and overlaps, as text.

    Parameters
    ----------
    kernel_shape : int or tuple of int
        Spatial kernel size (its length sets the rank).
    input_shape : int or tuple of int
        Spatial shape of the transposed convolution's input.
    stride, padding, output_padding, output_size, dilation
        As in :func:`tconv_sparse.conv_transpose`.

    Returns
    -------
    str
        The report printed by ``tconv-sparse explain`` (see the module notes).

    Examples
    --------
    >>> from tconv_sparse.analysis.explain import explain_transposed_conv
    >>> text = explain_transposed_conv(3, 2, stride=2, padding=1)
    >>> print(text.splitlines()[0])
    Transposed convolution of a 2 input: kernel 3, stride 2, padding 1, dilation 1
    >>> print(next(line for line in text.splitlines() if "output_padding=1:" in line).strip())
    padding=1, output_padding=1: (2 - 1)*2 - (1 + 1) + 3 + 1 = 4  -> 4
    """
    requested, options = _options(kernel_shape, input_shape, stride, padding, output_padding,
                                  output_size, dilation)
    g = requested.geometry
    header = (f"Transposed convolution of a {_shape_text(g.output_shape)} input: kernel "
              f"{_shape_text(g.kernel_shape)}, stride {_int_or_tuple(g.stride)}, padding "
              f"{_padding_text(requested.padding)}, dilation {_int_or_tuple(g.dilation)}")
    if output_padding is not None or output_size is not None:
        header += f", output size {_shape_text(g.input_shape)}"
    sections = [
        [header, "=" * len(header),
         "It is C.T for the forward convolution C with the same kernel, stride, padding and dilation."],
        _forward_section(g, requested.padding),
        _size_section(options, requested),
        _calls_section(options, requested),
        _symbolic_section(requested),
        _overlap_section(requested),
    ]
    return "\n\n".join("\n".join(lines) for lines in sections)
