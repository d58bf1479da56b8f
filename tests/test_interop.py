"""ConvOperator from PyTorch modules and Keras layers, checked against the framework's output."""

import numpy as np
import pytest

import tconv_sparse as ts

TORCH_CONV = [  # (ndim, kwargs, input spatial shape)
    (1, dict(kernel_size=3), (7,)),
    (1, dict(kernel_size=4, stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect"), (9,)),
    (2, dict(kernel_size=(3, 2), padding="same", padding_mode="circular"), (5, 6)),
    (2, dict(kernel_size=3, stride=(2, 1), padding=(1, 2), padding_mode="replicate", groups=2), (6, 5)),
    (2, dict(kernel_size=2, padding="valid", dilation=(2, 1)), (5, 4)),
    (3, dict(kernel_size=(2, 3, 2), stride=2, padding=1, padding_mode="circular"), (4, 5, 3)),
]

TORCH_TRANSPOSE = [
    (1, dict(kernel_size=3, stride=2), (4,)),
    (1, dict(kernel_size=5, stride=3, padding=2, output_padding=2, groups=2), (4,)),
    (2, dict(kernel_size=3, stride=2, padding=1, output_padding=1), (2, 2)),  # CS231n
    (2, dict(kernel_size=(3, 2), stride=(2, 3), padding=(1, 0), output_padding=(0, 2), dilation=(2, 1)), (3, 2)),
    (3, dict(kernel_size=2, stride=(1, 2, 2), padding=(0, 1, 0), output_padding=(0, 1, 1)), (2, 3, 2)),
]


@pytest.mark.parametrize("ndim,kwargs,shape", TORCH_CONV)
def test_torch_conv(ndim, kwargs, shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = getattr(torch.nn, f"Conv{ndim}d")(4, 6, **kwargs).double()
    op = ts.from_torch(module, shape)
    x = torch.randn(4, *shape, dtype=torch.float64)
    expected = (module(x[None])[0] - module.bias.reshape(-1, *[1] * ndim)).detach().numpy()
    assert op.shape == (expected.size, x.numel())
    np.testing.assert_allclose((op @ x.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)
    np.testing.assert_allclose((op.matrix @ x.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)


@pytest.mark.parametrize("ndim,kwargs,shape", TORCH_TRANSPOSE)
def test_torch_conv_transpose(ndim, kwargs, shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    groups = kwargs.get("groups", 1)
    module = getattr(torch.nn, f"ConvTranspose{ndim}d")(2 * groups, 3 * groups, **kwargs).double()
    op = ts.from_torch(module, shape)
    y = torch.randn(2 * groups, *shape, dtype=torch.float64)
    expected = (module(y[None])[0] - module.bias.reshape(-1, *[1] * ndim)).detach().numpy()
    assert op.shape == (y.numel(), expected.size)
    np.testing.assert_allclose((op.T @ y.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)


def test_torch_spectra_of_a_layer():
    torch = pytest.importorskip("torch")
    module = torch.nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", bias=False).double()
    op = ts.from_torch(module, (6, 6))
    reference = np.linalg.svd(op.matrix.toarray(), compute_uv=False)
    np.testing.assert_allclose(ts.singular_values(op), reference, atol=1e-12)
    float_module = torch.nn.Conv1d(1, 1, 3).float()
    assert ts.from_torch(float_module, 5).dtype == np.float32


def test_torch_bad_modules():
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError, match="must be a torch.nn.Conv1d/2d/3d or ConvTranspose1d/2d/3d, got Linear"):
        ts.from_torch(torch.nn.Linear(2, 3), 4)
    with pytest.raises(ValueError, match="not initialised yet"):
        ts.from_torch(torch.nn.LazyConv2d(3, 3), (5, 5))
    # dilation > stride allows output_padding >= stride: no forward convolution of that output
    layer = torch.nn.ConvTranspose1d(1, 1, 3, stride=2, dilation=3, output_padding=2)
    with pytest.raises(ValueError, match="cannot hold it"):
        ts.from_torch(layer, 4)
    with pytest.raises(ValueError, match="input_shape must be"):
        ts.from_torch(torch.nn.Conv2d(1, 1, 3), (5, 5, 5))


KERAS_LAYERS = [  # (class, kwargs, input spatial shape)
    ("Conv1D", dict(kernel_size=3, padding="causal", dilation_rate=2), (8,)),
    ("Conv1D", dict(kernel_size=4, strides=3, padding="same", groups=2), (10,)),
    ("Conv2D", dict(kernel_size=(3, 2), strides=(2, 1), padding="same"), (7, 6)),
    ("Conv2D", dict(kernel_size=3, padding="valid", dilation_rate=(1, 2)), (6, 7)),
    ("Conv3D", dict(kernel_size=2, strides=2, padding="same"), (3, 4, 5)),
    ("Conv1DTranspose", dict(kernel_size=3, strides=2, padding="valid"), (4,)),
    ("Conv2DTranspose", dict(kernel_size=3, strides=2, padding="same"), (2, 2)),      # seed's Keras
    ("Conv2DTranspose", dict(kernel_size=3, strides=2, padding="valid"), (2, 2)),     # -> 5x5
    ("Conv2DTranspose", dict(kernel_size=(4, 3), strides=(2, 3), padding="same", output_padding=(1, 2)), (3, 2)),
    ("Conv3DTranspose", dict(kernel_size=2, strides=(1, 2, 2), padding="valid", output_padding=(0, 1, 0)),
     (2, 2, 3)),
]


@pytest.mark.parametrize("name,kwargs,shape", KERAS_LAYERS)
def test_keras_layers(name, kwargs, shape):
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    channels = 4
    layer = getattr(keras.layers, name)(filters=6, **kwargs)
    x = np.random.default_rng(2).standard_normal((1, *shape, channels)).astype(np.float32)
    out = np.asarray(layer(x))[0]
    bias = layer.get_weights()[1]
    expected = np.moveaxis(out - bias, -1, 0)
    op = ts.from_keras(layer, shape)
    x_first = np.moveaxis(x[0], -1, 0).ravel()
    got = op.T @ x_first if name.endswith("Transpose") else op @ x_first
    np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=1e-4)


def test_keras_seed_shapes():
    keras = pytest.importorskip("keras")
    for padding, size in (("valid", 5), ("same", 4)):
        layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding=padding)
        layer.build((None, 2, 2, 1))
        assert ts.from_keras(layer, (2, 2)).shape == (4, size * size)


def test_keras_bad_layers():
    keras = pytest.importorskip("keras")
    with pytest.raises(ValueError, match="got DepthwiseConv2D"):
        ts.from_keras(keras.layers.DepthwiseConv2D(3), (5, 5))
    with pytest.raises(ValueError, match="not built yet"):
        ts.from_keras(keras.layers.Conv2D(2, 3), (5, 5))
    layer = keras.layers.Conv1DTranspose(1, 1, strides=3, padding="same")  # forward padding hi < 0
    layer.build((None, 4, 1))
    with pytest.raises(ValueError, match="cannot hold it"):
        ts.from_keras(layer, 4)


def test_frameworks_are_not_imported_at_import_time():
    import subprocess
    import sys

    code = "import sys, tconv_sparse; print(sorted({'torch', 'keras', 'tensorflow', 'jax', 'matplotlib'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
