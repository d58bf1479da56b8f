"""``tconv-sparse explain``: parse the options, print the report, save the figure."""

from __future__ import annotations

import sys

from tconv_sparse.analysis.explain import explain_transposed_conv

__all__ = ["add_arguments", "run"]

def _shape(text):
    try:
        return tuple(int(part) for part in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise ValueError(f"expected sizes like 2, 2x2 or 2x3x4, got {text!r}") from None


def _padding(text):
    if text.lower() in ("valid", "same", "full"):
        return text.lower()
    parts = text.lower().replace(",", "x").split("x")
    try:
        return tuple(tuple(int(p) for p in part.split(":")) if ":" in part else int(part) for part in parts)
    except ValueError:
        raise ValueError(f"padding must be valid, same, full, or sizes like 1, 1x2 or 1:2x0:1 "
                         f"(lo:hi per axis), got {text!r}") from None


def _broadcast(name, values, ndim):
    if len(values) == 1:
        return values * ndim
    if len(values) != ndim:
        raise ValueError(f"--{name} needs 1 or {ndim} values (one per axis of --input), got {len(values)}")
    return values


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
                        help="also save the conv-arithmetic frames to FILE (png, pdf, svg)")


def run(args) -> int:
    """Print the explanation (and save the figure); return the exit status."""
    try:
        input_shape = _shape(args.input)
        ndim = len(input_shape)
        kwargs = dict(
            stride=_broadcast("stride", _shape(args.stride), ndim),
            dilation=_broadcast("dilation", _shape(args.dilation), ndim),
            output_padding=None if args.output_padding is None else
            _broadcast("output-padding", _shape(args.output_padding), ndim),
            output_size=None if args.output_size is None else
            _broadcast("output-size", _shape(args.output_size), ndim),
        )
        padding = _padding(args.padding)
        kwargs["padding"] = padding if isinstance(padding, str) else _broadcast("padding", padding, ndim)
        kernel = _broadcast("kernel", _shape(args.kernel), ndim)
        text = explain_transposed_conv(kernel, input_shape, **kwargs)
    except ValueError as error:
        print(f"tconv-sparse explain: error: {error}", file=sys.stderr)
        return 2
    print(text)
    if args.plot:
        from tconv_sparse.analysis.plotting import plot_conv_arithmetic

        try:
            figure = plot_conv_arithmetic(kernel, input_shape, **kwargs)
        except ValueError as error:
            print(f"tconv-sparse explain: no figure: {error}", file=sys.stderr)
            return 2
        figure.savefig(args.plot, dpi=120)
        import matplotlib.pyplot as plt

        plt.close(figure)
        print(f"\nFigure (input, kernel, output on the canvas, one frame per input pixel) saved to {args.plot}")
    return 0
