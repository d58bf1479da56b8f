"""The figures of ``tconv-sparse demo``: who draws them, and the figures composed for it.

:class:`Figures` saves a figure when matplotlib is importable and lists what it wrote; the
functions below compose the analysis plots (:mod:`tconv_sparse.analysis.plotting`,
:mod:`tconv_sparse.analysis.canvas_figures`) into the demo's figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tconv_sparse as ts

__all__ = ["Figures", "matrix_figure", "deconvolution_figure", "overlap_figure"]

#: resolution of every saved figure
DPI = 110


class Figures:
    """Draws and saves figures into ``out`` when matplotlib is importable; lists what it wrote."""

    def __init__(self, out: Path):
        self.out = out
        self.written: list[Path] = []
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            self.plt = None
        else:
            self.plt = plt

    def write(self, name: str, writer) -> None:
        """``writer(path)`` writes the file ``out/name``."""
        if self.plt is None:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / name
        writer(path)
        self.written.append(path)

    def save(self, name: str, draw) -> None:
        """``draw()`` returns a matplotlib Figure; it is saved as ``out/name`` and closed."""
        def writer(path):
            figure = draw()
            figure.savefig(path, dpi=DPI)
            self.plt.close(figure)
        self.write(name, writer)


def matrix_figure(plt, valid, padded):
    """``C`` and ``C.T`` of the unpadded (``valid``) and the padded symbolic example, in a 2x2 grid."""
    from tconv_sparse.analysis.plotting import plot_symbolic_matrix

    figure, axes = plt.subplots(2, 2, figsize=(9, 7.5), layout="constrained",
                                gridspec_kw={"width_ratios": [valid.matrix.shape[1], valid.matrix.shape[0] + 1]})
    for row, (symbolic, label) in enumerate([(valid, 'no padding (Keras "valid")'),
                                             (padded, "padding 1, output_padding 1 (CS231n)")]):
        for column, transpose in enumerate((False, True)):
            ax = plot_symbolic_matrix(symbolic, transpose=transpose, ax=axes[row, column])
            rows, cols = symbolic.transpose.shape if transpose else symbolic.matrix.shape
            ax.set_title(f"{'C.T' if transpose else 'C'}, {label}: {rows} x {cols}", fontsize=9)
    figure.suptitle("input [a, b], kernel [x, y, z], stride 2: the forward matrix C and the transposed "
                    "convolution's C.T", fontsize=10)
    return figure


def deconvolution_figure(plt, truth, estimates, psnr):
    """The true image and each estimate of part 5, titled with its PSNR (``psnr(estimate, truth)``)."""
    panels = [("true image g", truth)] + [
        (f"{name}\n{psnr(estimate[0], truth):.1f} dB", estimate[0]) for name, (estimate, _) in estimates.items()]
    figure, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.2), layout="constrained")
    for axis, (title, image) in zip(axes, panels):
        axis.imshow(np.clip(image, 0, 1), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=8)
        axis.axis("off")
    return figure


def overlap_figure(plt):
    """Overlap maps of kernel 3 and kernel 4 at stride 2: the checkerboard and the even interior."""
    from tconv_sparse.analysis.plotting import plot_overlap_map

    figure, axes = plt.subplots(1, 2, figsize=(9, 4.4), layout="constrained")
    plot_overlap_map(ts.overlap_map((3, 3), (4, 4), stride=2, padding="valid"), ax=axes[0],
                     title="kernel 3, stride 2: checkerboard")
    plot_overlap_map(ts.overlap_map((4, 4), (4, 4), stride=2, padding="valid"), ax=axes[1],
                     title="kernel 4, stride 2: even interior")
    return figure
