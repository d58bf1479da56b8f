"""
Singular values of convolutions
===============================

The singular values of ``C`` say how a convolution stretches its input: the
largest is its operator norm (the layer's Lipschitz constant), the smallest
how far it is from losing information, and their ratio how hard the
deconvolution is. ``C.T``, the transposed convolution, has the same ones.
:func:`tconv_sparse.singular_values` computes them exactly;
:func:`tconv_sparse.operator_norm` gives the largest, or a cheap upper bound.
"""

import matplotlib.pyplot as plt
import numpy as np

import tconv_sparse as ts

rng = np.random.default_rng(0)

# %%
# Circular convolutions are diagonal in Fourier space
# ---------------------------------------------------
# With circular padding and a geometry that wraps exactly, ``C`` is
# block-circulant: its singular values are those of the kernel's DFT at each
# frequency (Sedghi, Gupta & Long, ICLR 2019). For one channel, the
# magnitudes of the zero-padded kernel's 2-D DFT.
w = rng.standard_normal((1, 1, 3, 3))
n = 16
values = ts.singular_values(w, (n, n), padding=1, padding_mode="circular")
kernel_on_grid = np.zeros((n, n))
kernel_on_grid[:3, :3] = w[0, 0]
dft = np.sort(np.abs(np.fft.fft2(kernel_on_grid)).ravel())[::-1]
print(f"largest difference to the DFT magnitudes: {np.max(np.abs(values - dft)):.1e}")

# %%
# Padding modes, strides and dilation
# -----------------------------------
# The same kernel on a 16x16 input. Zero padding lowers the small singular
# values (border pixels are seen by fewer taps); reflect and replicate
# padding count border inputs twice and raise the largest. A stride of 2
# keeps a quarter of the rows of ``C``, so a quarter of the values.
figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), layout="constrained")
for mode in ("zeros", "circular", "reflect", "replicate"):
    axes[0].semilogy(ts.singular_values(w, (n, n), padding=1, padding_mode=mode), label=mode)
axes[0].set_title("padding 1, by padding mode")
for label, params in {"stride 1": {}, "stride 2": {"stride": 2}, "dilation 2": {"dilation": 2, "padding": 2},
                      "stride 2, dilation 2": {"stride": 2, "dilation": 2, "padding": 2}}.items():
    params = {"padding": 1, **params}
    axes[1].semilogy(ts.singular_values(w, (n, n), **params), label=label)
axes[1].set_title("zero padding, by stride and dilation")
for axis in axes:
    axis.set_xlabel("index")
    axis.set_ylabel("singular value")
    axis.legend()

# %%
# Operator norms: exact and bound
# -------------------------------
# ``bound=True`` embeds ``C`` in a circular convolution on a slightly larger
# grid and takes its norm: a guaranteed upper bound that costs one small SVD
# per frequency instead of many sparse products. For multi-channel layers it
# is the usual tool for Lipschitz control; for circular geometries it is
# exact.
w = rng.standard_normal((8, 8, 3, 3)) / 8
print(f"{'geometry':28s} {'exact':>8s} {'bound':>8s}")
for label, params in {"padding 1": {"padding": 1},
                      "padding 1, circular": {"padding": 1, "padding_mode": "circular"},
                      "stride 2, padding 1": {"stride": 2, "padding": 1},
                      "padding 1, reflect": {"padding": 1, "padding_mode": "reflect"}}.items():
    exact = ts.operator_norm(w, (16, 16), **params)
    bound = ts.operator_norm(w, (16, 16), bound=True, **params)
    print(f"{label:28s} {exact:8.4f} {bound:8.4f}")

# %%
# The spectrum of ``C.T C``
# -------------------------
# Applying the transposed convolution after the convolution multiplies each
# singular component by its value squared; the eigenvalues of ``C.T C`` are
# the squared singular values. This is why ``C.T h`` blurs a second time
# instead of undoing the blur (see the deconvolution example).
w = np.full((1, 1, 3, 3), 1 / 9)
C = ts.conv_matrix(w, (n, n), padding=1)
eigenvalues = np.sort(np.linalg.eigvalsh((C.T @ C).toarray()))[::-1]
values = ts.singular_values(w, (n, n), padding=1)
assert np.allclose(eigenvalues, values**2)
figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
axis.semilogy(values, label="singular values of C (a 3x3 box blur)")
axis.semilogy(eigenvalues, label="eigenvalues of C.T C")
axis.set_xlabel("index")
axis.legend()
