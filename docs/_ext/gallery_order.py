"""The order of the gallery: from shapes to matrices, analyses, deconvolution, PyTorch and speed.

sphinx-gallery imports :class:`GalleryOrder` by name (``within_subsection_order``)
so that the configuration stays picklable.
"""

from __future__ import annotations

from pathlib import Path

#: gallery scripts in reading order; any other script follows, by file name
ORDER = (
    "plot_conv_arithmetic.py",
    "plot_cs231n_keras.py",
    "plot_matrix_spy.py",
    "plot_checkerboard.py",
    "plot_spectra.py",
    "plot_deconvolution.py",
    "plot_damp_auto.py",
    "plot_periodic_unet.py",
    "plot_benchmark.py",
)


class GalleryOrder:
    """Sort key of the gallery scripts: their position in :data:`ORDER`, then their name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename) -> tuple:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:
        return "GalleryOrder"
