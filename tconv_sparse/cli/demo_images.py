"""Data of the demo's part 5: a synthetic test image, its blur, and the PSNR score."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["synthetic_image", "psnr", "gaussian_psf"]


def synthetic_image(size: int = 128) -> np.ndarray:
    """A test image in ``[0, 1]`` with smooth, flat, sharp and fine-detail regions.

    A horizontal gradient, a bright disk, a dark square and a band of bars
    whose frequency rises from left to right (a resolution wedge). It is
    generated in code, so the demo needs no image file and no download.

    Parameters
    ----------
    size : int
        Height and width in pixels, ``>= 16``.

    Returns
    -------
    numpy.ndarray of float64, shape ``(size, size)``

    Examples
    --------
    >>> from tconv_sparse.cli.demo_images import synthetic_image
    >>> image = synthetic_image(64)
    >>> image.shape, float(image.min()) >= 0, float(image.max()) <= 1
    ((64, 64), True, True)
    """
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an int >= 16, got {size!r}")
    row, col = (np.mgrid[0:size, 0:size] + 0.5) / size
    image = 0.25 + 0.3 * col
    image[(row - 0.3) ** 2 + (col - 0.27) ** 2 < 0.16 ** 2] = 0.95
    image[(row > 0.14) & (row < 0.44) & (col > 0.56) & (col < 0.86)] = 0.08
    band = (row > 0.6) & (row < 0.88) & (col > 0.08) & (col < 0.92)
    u = (col - 0.08) / 0.84
    bars = np.sin(2 * np.pi * (3 + 0.07 * size * u) * u) > 0
    image[band] = np.where(bars, 0.85, 0.15)[band]
    return image


def psnr(estimate, truth) -> float:
    """Peak signal-to-noise ratio in dB of ``estimate`` clipped to ``[0, 1]``, for a peak of 1.

    Examples
    --------
    >>> import numpy as np
    >>> from tconv_sparse.cli.demo_images import psnr
    >>> round(psnr(np.full(4, 0.1), np.zeros(4)), 6)
    20.0
    """
    error = np.mean((np.clip(estimate, 0, 1) - np.asarray(truth)) ** 2)
    return math.inf if error == 0 else 10 * math.log10(1 / error)


def gaussian_psf(size: int, sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian point-spread function of ``size x size`` pixels."""
    offsets = np.arange(size) - size // 2
    psf = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma ** 2))
    return psf / psf.sum()
