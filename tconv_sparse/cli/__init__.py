"""The ``tconv-sparse`` command: ``explain``, ``bench``, ``warmup`` and ``demo`` sub-commands.

Each sub-command lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``; those modules import their heavy dependencies (matplotlib,
torch) inside ``run`` so that building the parser stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tconv_sparse import __version__

__all__ = ["main"]

#: sub-command name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "explain": ("tconv_sparse.cli.explain",
                "explain a transposed convolution: output sizes, equivalent PyTorch/Keras/JAX calls, "
                "symbolic output, overlap map"),
    "bench": ("tconv_sparse.cli.bench",
              "time every conv / conv_transpose method against PyTorch on the benchmark grid"),
    "warmup": ("tconv_sparse.cli.warmup",
               "compile the Numba kernels ahead of time (all, or --method / --dtype), in parallel processes"),
    "demo": ("tconv_sparse.cli.demo",
             "a guided tour with real numbers: shapes, C and C.T, every method agreeing, speed, "
             "transposed convolution vs deconvolution; figures to --out"),
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = argparse.ArgumentParser(
        prog="tconv-sparse",
        description="Transposed convolution made precise: explicit sparse matrices, C.T, "
                    "fast kernels and deconvolution.",
    )
    parser.add_argument("--version", action="version", version=f"tconv-sparse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(module=module_name)
        importlib.import_module(module_name).add_arguments(command)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``tconv-sparse`` console script.

    Without a sub-command it prints the help to stderr and returns 2 (a usage error).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # like git: the help, on stderr, and the usage-error status
        parser.print_help(sys.stderr)
        return 2
    return importlib.import_module(args.module).run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
