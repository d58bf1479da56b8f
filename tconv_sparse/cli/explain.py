"""``tconv-sparse explain``: parse the options, print the report, save the figure.

Every option is checked first, with messages that name the option (``--kernel``,
not the library's ``kernel_shape``); the ``--plot`` file is checked before any
work. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import re
import sys

from tconv_sparse.analysis.explain import explain_transposed_conv
from tconv_sparse.cli.outputs import OptionError, check_figure_file

__all__ = ["add_arguments", "run"]

#: option -> (smallest value, what the value looks like)
_SIZES = {
    "input": (1, "sizes like 2, 2x2 or 2x3x4 (whole numbers >= 1, one per axis)"),
    "kernel": (1, "sizes like 3 or 3x3 (whole numbers >= 1, one for all axes or one per axis)"),
    "stride": (1, "whole numbers >= 1, one for all axes or one per axis (like 2 or 2x1)"),
    "dilation": (1, "whole numbers >= 1, one for all axes or one per axis (like 2 or 2x1)"),
    "output-padding": (0, "whole numbers >= 0, one for all axes or one per axis (like 1 or 1x0)"),
    "output-size": (1, "sizes like 4 or 4x4 (whole numbers >= 1, one for all axes or one per axis)"),
}
#: the library's parameter names that are not the options' names
_LIBRARY_NAMES = {"kernel_shape": "--kernel", "input_shape": "--input"}


def _split(text):
    return text.lower().replace(",", "x").split("x")


def _sizes(name, text):
    """Parse ``--name`` (e.g. ``2x3``) into a tuple of ints >= its minimum."""
    minimum, looks_like = _SIZES[name]
    try:
        values = tuple(int(part) for part in _split(text))
    except ValueError:
        raise OptionError(f"--{name}: expected {looks_like}, got {text!r}") from None
    if min(values) < minimum:
        raise OptionError(f"--{name} must be >= {minimum} on every axis, got {text!r}")
    return values


def _padding(text):
    if text.lower() in ("valid", "same", "full"):
        return text.lower()
    try:
        values = tuple(tuple(int(p) for p in part.split(":")) if ":" in part else int(part)
                       for part in _split(text))
    except ValueError:
        raise OptionError(f"--padding must be valid, same, full, or sizes like 1, 1x2 or 1:2x0:1 "
                          f"(lo:hi per axis), got {text!r}") from None
    flat = [p for value in values for p in (value if isinstance(value, tuple) else (value,))]
    if min(flat) < 0:
        raise OptionError(f"--padding must be >= 0 on every side, got {text!r}")
    return values


def _broadcast(name, values, ndim):
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise OptionError(f"--{name} needs 1 or {ndim} values (one per axis of --input), got {len(values)}")
    return values


def _optional(args, name, ndim):
    text = getattr(args, name.replace("-", "_"))
    return None if text is None else _broadcast(name, _sizes(name, text), ndim)


def _arguments(args):
    """``(kernel, input_shape, keyword arguments)`` of :func:`explain_transposed_conv` from the options."""
    input_shape = _sizes("input", args.input)
    ndim = len(input_shape)
    padding = _padding(args.padding)
    kwargs = dict(
        stride=_broadcast("stride", _sizes("stride", args.stride), ndim),
        dilation=_broadcast("dilation", _sizes("dilation", args.dilation), ndim),
        padding=padding if isinstance(padding, str) else _broadcast("padding", padding, ndim),
        output_padding=_optional(args, "output-padding", ndim),
        output_size=_optional(args, "output-size", ndim),
    )
    return _broadcast("kernel", _sizes("kernel", args.kernel), ndim), input_shape, kwargs


def _option_names(message: str) -> str:
    """The library's message with its parameter names replaced by the options."""
    return re.sub("|".join(_LIBRARY_NAMES), lambda match: _LIBRARY_NAMES[match.group(0)], message)


def add_arguments(parser) -> None:
    """Register the ``explain`` options on an argparse (sub-)parser."""
    parser.add_argument("--input", required=True, metavar="SIZE",
                        help="spatial shape of the transposed convolution's input, e.g. 2x2")
    parser.add_argument("--kernel", required=True, metavar="SIZE", help="kernel size, e.g. 3 or 3x3")
    parser.add_argument("--stride", default="1", metavar="SIZE", help="stride (default 1)")
    parser.add_argument("--padding", default="0",
                        help="padding of the forward convolution: 1, 1x2, 1:2x0:1 (lo:hi), valid, same "
                             "or full (default 0)")
    parser.add_argument("--dilation", default="1", metavar="SIZE", help="dilation (default 1)")
    parser.add_argument("--output-padding", metavar="SIZE", help="output_padding (default none)")
    parser.add_argument("--output-size", metavar="SIZE", help="exact output size instead of output_padding")
    parser.add_argument("--plot", metavar="FILE",
                        help="also save the conv-arithmetic frames to FILE (png, pdf, svg, ...; 1-D and "
                             "2-D, small sizes)")


def _save_plot(path, kernel, input_shape, kwargs) -> None:
    from tconv_sparse.analysis.plotting import plot_conv_arithmetic

    try:
        figure = plot_conv_arithmetic(kernel, input_shape, **kwargs)
    except ValueError as error:
        raise OptionError(f"no figure: {error}") from None
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path, dpi=120)
    except (OSError, RuntimeError) as error:  # a full disk; a format whose tool is missing (pgf: LaTeX)
        raise OptionError(f"--plot {path}: the figure could not be saved: {error}") from None
    finally:
        plt.close(figure)


def run(args) -> int:
    """Print the explanation (and save the figure); return the exit status."""
    try:
        kernel, input_shape, kwargs = _arguments(args)
        if args.plot:
            check_figure_file("--plot", args.plot)
        text = explain_transposed_conv(kernel, input_shape, **kwargs)
        if args.plot:
            _save_plot(args.plot, kernel, input_shape, kwargs)
    except ValueError as error:
        print(f"tconv-sparse explain: error: {_option_names(str(error))}", file=sys.stderr)
        return 2
    print(text)
    if args.plot:
        print(f"\nFigure (input, kernel, output on the canvas, one frame per input pixel) saved to {args.plot}")
    return 0
