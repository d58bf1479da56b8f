"""Generate tests/data/keras_golden_<backend>.json.gz from Keras 3.

Run once per Keras backend, in an environment with Keras (the test-suite only
reads the files and needs neither Keras nor its backends)::

    pip install tensorflow-cpu jax
    KERAS_BACKEND=tensorflow python scripts/make_keras_golden.py
    KERAS_BACKEND=jax python scripts/make_keras_golden.py

TensorFlow's CPU kernels refuse dilated transposed convolutions, so those
cases come from the JAX backend only.

Every case stores a small random input and kernel, the Keras layer options,
and the layer's output, all converted to tconv_sparse's channel-first layout:
forward weight ``(C_out, C_in, *k)``, transposed weight ``(C_in_t, C_out_t, *k)``.
Cases Keras refuses (e.g. stride > 1 with dilation > 1 on some layers) are
skipped and counted.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_ENABLE_X64", "1")  # JAX computes float64 in float32 otherwise

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.config.set_floatx("float64")


def _layer(ndim: int, transposed: bool, **options):
    name = f"Conv{ndim}D{'Transpose' if transposed else ''}"
    return getattr(keras.layers, name)(use_bias=False, **options)


def _run_case(rng, ndim, transposed, spatial, kernel, stride, dilation, padding, output_padding):
    c_in, c_out = 2, 3
    options = dict(filters=c_out, kernel_size=(kernel,) * ndim, strides=(stride,) * ndim,
                   dilation_rate=(dilation,) * ndim, padding=padding)
    if transposed:
        options["output_padding"] = None if output_padding is None else (output_padding,) * ndim
    layer = _layer(ndim, transposed, **options)
    # inputs with two decimals keep the file small; outputs keep full precision
    x = np.round(rng.standard_normal((1, *(spatial,) * ndim, c_in)), 2)
    layer.build(x.shape)
    kernel_value = np.round(rng.standard_normal(layer.kernel.shape), 2)
    layer.set_weights([kernel_value])
    y = np.asarray(layer(x))
    spatial_axes = tuple(range(ndim))
    # forward kernel (*k, in, out) -> (out, in, *k); transposed (*k, out_t, in_t) -> (in_t, out_t, *k)
    weight = np.transpose(kernel_value, (ndim + 1, ndim, *spatial_axes))
    return {
        "ndim": ndim,
        "transposed": transposed,
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "output_padding": output_padding,
        "x": np.moveaxis(x[0], -1, 0).tolist(),
        "weight": weight.tolist(),
        "y": np.moveaxis(y[0], -1, 0).tolist(),
    }


def main() -> int:
    rng = np.random.default_rng(20261128)
    cases, refused = [], 0
    grid = itertools.product((1, 2), (False, True), (1, 2, 3), (1, 2, 3, 4, 5), (1, 2),
                             ("valid", "same"))
    for ndim, transposed, stride, kernel, dilation, padding in grid:
        paddings = [None] + (list(range(max(stride, 1))) if transposed else [])
        for output_padding in paddings:
            spatial = 5 if ndim == 1 else 4
            if not transposed:
                spatial = max(spatial, dilation * (kernel - 1) + 1)
            if transposed and output_padding is not None and output_padding >= stride:
                continue
            try:
                cases.append(_run_case(rng, ndim, transposed, spatial, kernel, stride, dilation,
                                       padding, output_padding))
            except Exception:  # Keras refuses some combinations (reported below)
                refused += 1
    meta = {"keras": keras.__version__, "backend": keras.backend.backend(),
            "generator": "scripts/make_keras_golden.py", "refused": refused}
    path = f"tests/data/keras_golden_{keras.backend.backend()}.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump({"meta": meta, "cases": cases}, handle, separators=(",", ":"))
    print(f"wrote {len(cases)} cases to {path} ({refused} combinations refused by Keras)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
