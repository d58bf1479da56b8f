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

Every size is answered in closed form, so the work is bounded by the rank and
the limits below, never by the sizes: input sizes are given as a range when
there are more than ``_MAX_LISTED_SIZES`` of them, ``output_padding`` values
as 0, 1 and the largest when there are more than ``_MAX_OUTPUT_PADDINGS``; the
symbolic output is printed for canvases of up to ``_MAX_SYMBOLIC_CANVAS``
cells, the overlap map (and its minimum and maximum) is computed for up to
``_MAX_OVERLAP_PIXELS`` output pixels and printed up to ``_MAX_MAP_COLUMNS``
columns, and the interior tile is printed up to ``_MAX_TILE_CELLS`` cells
(above, its range comes from :func:`~tconv_sparse.analysis.overlap.interior_tile_range`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.core.geometry import Geometry, kernel_geometry
from tconv_sparse.analysis.overlap import interior_tile, interior_tile_range, overlap_summary
from tconv_sparse.analysis.symbolic import format_grid, symbolic_conv_transpose

__all__ = ["explain_transposed_conv", "equivalent_calls"]

#: Symbolic output is printed when the canvas has at most this many cells.
_MAX_SYMBOLIC_CANVAS = 100
#: The overlap map is printed up to this many columns.
_MAX_MAP_COLUMNS = 40
#: Forward input sizes of one axis listed one by one up to this many (else first two and last).
_MAX_LISTED_SIZES = 8
#: output_padding values listed up to this many (else 0, 1 and the largest).
_MAX_OUTPUT_PADDINGS = 8
#: The overlap map, its minimum and maximum are computed up to this many output pixels.
_MAX_OVERLAP_PIXELS = 10**6
#: The interior tile (period = stride) is printed up to this many cells.
_MAX_TILE_CELLS = 64
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


def _output_padding_values(geometry) -> list:
    """The output_padding values listed: all below ``max(stride, dilation)``, or 0, 1 and the largest."""
    top = max(map(max, geometry.stride, geometry.dilation)) - 1
    return list(range(top + 1)) if top < _MAX_OUTPUT_PADDINGS else [0, 1, top]


def _options(kernel_shape, input_shape, stride, padding, output_padding, output_size, dilation):
    """``(requested, options)``: the requested option, and every output_padding of the given
    padding plus Keras "valid" / "same" (the requested one included, first of its key)."""
    ndim = len(v.parse_int_tuple("kernel_shape", kernel_shape, max(np.size(kernel_shape), 1), 1))
    padding = v.parse_padding(padding, ndim)
    if output_padding is None and output_size is None and not isinstance(padding, str):
        output_padding = 0  # the PyTorch rule's default, named so in messages
    base = kernel_geometry(kernel_shape, input_shape, stride=stride, padding=padding,
                           output_padding=output_padding, output_size=output_size, dilation=dilation)
    if padding == "full":
        padding = tuple((k_eff - 1, k_eff - 1) for k_eff in base.effective_kernel_shape)
    args = (kernel_shape, input_shape, stride)
    prefix = f"padding={_padding_text(padding)}"
    options = [_option(prefix, *args, padding, None, dilation)] if isinstance(padding, str) else []
    for op in _output_padding_values(base):
        ops = tuple(min(op, s_or_d - 1) for s_or_d in map(max, base.stride, base.dilation))
        options.append(_option(f"{prefix}, output_padding={_int_or_tuple(ops)}", *args, padding, ops, dilation))
    options += [_option(f'Keras padding="{keras}"', *args, keras, None, dilation)
                for keras in ("valid", "same") if keras != padding]
    match = [option for option in options if option.key == _Option("", None, None, base).key]
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


def _forward_sizes(i, k_eff, s, pad) -> range:
    """Every input size ``n`` that the forward convolution maps to ``i`` outputs, in closed form.

    ``"same"``: ``ceil(n / s) = i``; otherwise ``floor((n + lo + hi - k_eff) / s) + 1 = i`` with
    ``n >= 1`` (the padded input then holds the kernel).
    """
    if pad == "same":
        return range((i - 1) * s + 1, i * s + 1)
    lo, hi = (0, 0) if pad == "valid" else pad
    return range(max(1, (i - 1) * s + k_eff - lo - hi), i * s + k_eff - lo - hi)


def _listed(sizes: range) -> list:
    """The sizes printed one by one: all of them, or the first two, ``None`` (an ellipsis), the last."""
    return list(sizes) if len(sizes) <= _MAX_LISTED_SIZES else [sizes[0], sizes[1], None, sizes[-1]]


def _forward_axis_lines(label, i, k, s, d, pad, sizes):
    k_eff = d * (k - 1) + 1
    if pad == "same":
        lines = [f"   {label}out = ceil(n / {s})"]
        lines += ["     ..." if n is None else f"     n = {n}: ceil({n} / {s}) = {i}" for n in _listed(sizes)]
    else:
        lo, hi = (0, 0) if pad == "valid" else pad
        lines = [f"   {label}k_eff = {d}*({k} - 1) + 1 = {k_eff};  out = floor((n + {lo} + {hi} - {k_eff}) / {s}) + 1"]
        lines += ["     ..." if n is None else
                  f"     n = {n}: floor(({n} + {lo} + {hi} - {k_eff}) / {s}) + 1 = "
                  f"floor({n + lo + hi - k_eff}/{s}) + 1 = {i}" for n in _listed(sizes)]
    if len(sizes) > _MAX_LISTED_SIZES:
        lines.append(f"     (every n from {sizes[0]} to {sizes[-1]}: {len(sizes)} sizes)")
    return lines


def _first_shapes(ranges, count):
    """The first ``count`` shapes of ``itertools.product(*ranges)``, without materialising the ranges."""
    lengths = [len(r) for r in ranges]
    shapes = []
    for index in range(min(count, math.prod(lengths))):
        shape = []
        for r, length in zip(reversed(ranges), reversed(lengths)):
            index, digit = divmod(index, length)
            shape.append(r[digit])
        shapes.append(shape[::-1])
    return shapes


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
        sizes = _forward_sizes(i, geometry.effective_kernel_shape[axis], s, pad)
        lines += _forward_axis_lines(label, i, k, s, d, pad, sizes)
        for axis in axes:
            sizes_per_axis[axis] = sizes
    output = _shape_text(geometry.output_shape)
    count = math.prod(len(sizes) for sizes in sizes_per_axis)
    if count == 0:
        return lines + [f"   No input size gives {output}: with this padding even a 1-pixel input has "
                        "more outputs."]
    shapes = [_shape_text(shape) for shape in _first_shapes(sizes_per_axis, 16)]
    shown = ", ".join(shapes) + (f", ... ({count} in all)" if count > 16 else "")
    lines.append(f"   So every input of {shown} gives {output}.")
    if count > 1:
        lines.append(f"   Rounding discards up to stride - 1 pixels, so a {output} "
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
        lines += _omitted_output_paddings(numeric)
    lines.append('   Keras / JAX rule: "valid" (i - 1)*stride + max(k_eff, stride), "same" i*stride; '
                 'with output_padding op: "valid" (i - 1)*stride + k_eff + op, '
                 '"same" (i - 1)*stride + k_eff % 2 + op')
    keras = [o for o in options if isinstance(o.padding, str)]
    lines += [f"     {o.label}: {_axes_formula(o, _keras_formula)}  -> "
              f"{_shape_text(o.geometry.input_shape)}{_mark(o, requested)}" for o in keras]
    return lines + _omitted_output_paddings([o for o in keras if o.label.startswith("padding=")])


def _omitted_output_paddings(options):
    """A note when only 0, 1 and the largest of many output_padding values are listed."""
    with_op = [o for o in options if o.output_padding is not None]
    if not with_op:
        return []
    g = with_op[0].geometry
    top = tuple(max(s, d) - 1 for s, d in zip(g.stride, g.dilation))
    if max(top) < _MAX_OUTPUT_PADDINGS:
        return []
    first = next(o for o in with_op if not any(o.output_padding)).geometry.input_shape
    last = next(o for o in with_op if o.output_padding == top).geometry.input_shape
    return [f"     output_padding 0 to {_int_or_tuple(top)} give every size from {_shape_text(first)} to "
            f"{_shape_text(last)}, one more pixel per step ({max(top) + 1} values; 0, 1 and the last listed)"]


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


def _keras_output_padding(g, padding):
    """The one uniform output_padding of a Keras ``padding`` layer giving ``g``'s size on axis 0, or ``None``.

    Keras' size is ``(i - 1)*s + k_eff + op`` ("valid") or ``(i - 1)*s + k_eff % 2 + op`` ("same"),
    so axis 0 alone decides ``op``; Keras allows ``0 <= op < stride``.
    """
    i, s, k_eff = g.output_shape[0], g.stride[0], g.effective_kernel_shape[0]
    op = g.input_shape[0] - (i - 1) * s - (k_eff if padding == "valid" else k_eff % 2)
    return (op,) * g.ndim if 0 <= op < min(g.stride) else None


def _keras_match(g):
    """``(padding, output_padding)`` of a single Keras layer computing exactly ``g``, or ``None``.

    Keras allows ``output_padding < stride`` only; ``"same"`` with an
    ``output_padding`` is offered only where the TensorFlow backend accepts it
    (its forward "same" convolution of the output gives back the input size).
    """
    target = _Option("", None, None, g).key
    for pad in ("valid", "same"):
        candidates = [None] + [ops for ops in [_keras_output_padding(g, pad)] if ops is not None]
        for ops in candidates:
            keras = kernel_geometry(g.kernel_shape, g.output_shape, stride=g.stride, padding=pad,
                                    output_padding=ops, dilation=g.dilation)
            tensorflow_rejects = pad == "same" and ops is not None and any(
                -(-n // s) != i for n, s, i in zip(keras.input_shape, g.stride, g.output_shape))
            if _Option("", None, None, keras).key == target and not tensorflow_rejects:
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
    for group in groups.values():  # per output size, the first option keeping each window
        sizes.setdefault(group[0].geometry.input_shape, {}).setdefault(_window(group[0].geometry), group[0])
    for shape, by_window in sizes.items():
        same = list(by_window.values())
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


def _overlap_affordable(g) -> bool:
    """Whether the overlap map is computed: at most ``_MAX_OVERLAP_PIXELS`` output pixels, stride
    cells and index-map entries (``i * k + n`` per axis)."""
    entries = sum(i * k + n for i, k, n in zip(g.output_shape, g.kernel_shape, g.input_shape))
    return max(math.prod(g.input_shape), math.prod(g.stride), entries) <= _MAX_OVERLAP_PIXELS


def _tile_lines(g):
    """The interior tile (printed when small) and the checkerboard verdict."""
    low, high = interior_tile_range(g.kernel_shape, g.stride, g.dilation)
    if math.prod(g.stride) <= _MAX_TILE_CELLS:
        tile = interior_tile(g.kernel_shape, g.stride, g.dilation)
        text = f"interior tile (period = stride): {' '.join(format_grid(tile.astype(str)).split())}"
    else:
        text = (f"interior tile (period = stride, {math.prod(g.stride)} cells): {low} to {high} products "
                "per pixel")
    if low == high:
        return [f"   {text}, even: no checkerboard"]
    reasons = dict.fromkeys(
        f"kernel {k} % stride {s} = {k % s}" if k % s else f"gcd(dilation {d}, stride {s}) = {math.gcd(d, s)}"
        for k, s, d in zip(g.kernel_shape, g.stride, g.dilation) if k % s or math.gcd(d, s) > 1
    )
    return [f"   {text}, uneven: a checkerboard, since {'; '.join(reasons)} (Odena, Dumoulin & Olah 2016)"]


def _overlap_section(requested):
    g = requested.geometry
    lines = [f"5. Overlap map of the requested {_shape_text(g.input_shape)} output: input-kernel products "
             "landing on each pixel (the column counts of C)"]
    if _overlap_affordable(g):
        summary = overlap_summary(g.kernel_shape, g.output_shape, stride=g.stride, padding=requested.padding,
                                  output_padding=requested.output_padding, dilation=g.dilation)
        if summary.counts.shape[-1] <= _MAX_MAP_COLUMNS and summary.counts.size <= 40 * _MAX_MAP_COLUMNS:
            lines += _indented(format_grid(summary.counts.astype(str), commas=False))
        ratio = "inf (some pixels get no product)" if math.isinf(summary.ratio) else f"{summary.ratio:g}"
        lines.append(f"   min {summary.min}, max {summary.max}, max/min {ratio}")
    else:
        lines.append(f"   the map, its min and max: not computed above {_MAX_OVERLAP_PIXELS} output pixels, "
                     f"stride cells or index-map entries (here {math.prod(g.input_shape)} pixels, "
                     f"{math.prod(g.stride)} stride cells)")
    return lines + _tile_lines(g)


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
