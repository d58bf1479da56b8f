"""ConvOperator from PyTorch modules and Keras layers, checked against the framework's output."""

import gzip
import json
import pathlib

import numpy as np
import pytest

import tconv_sparse as ts

def _check_transpose(A, seed=0):
    """``A.T`` is the transpose of ``A``: ``<A v, u> == <v, A.T u>`` and ``A.T.T`` acts as ``A``."""
    rng = np.random.default_rng(seed)
    v, u = rng.standard_normal(A.shape[1]), rng.standard_normal(A.shape[0])
    assert A.T.shape == A.shape[::-1]
    np.testing.assert_allclose(np.dot(A @ v, u), np.dot(v, A.T @ u), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(A.T.T @ v, A @ v, rtol=1e-12, atol=1e-12)


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
    # output_padding >= stride (dilation > stride) cropped back by the padding: a forward conv exists
    (1, dict(kernel_size=3, stride=2, dilation=3, padding=2, output_padding=2), (4,)),
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
    np.testing.assert_array_equal(op.bias, module.bias.detach().numpy())
    np.testing.assert_allclose((op @ x.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)
    np.testing.assert_allclose((op.matrix @ x.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)


@pytest.mark.parametrize("ndim,kwargs,shape", TORCH_TRANSPOSE)
def test_torch_conv_transpose(ndim, kwargs, shape):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    groups = kwargs.get("groups", 1)
    module = getattr(torch.nn, f"ConvTranspose{ndim}d")(2 * groups, 3 * groups, **kwargs).double()
    A = ts.from_torch(module, shape)
    y = torch.randn(2 * groups, *shape, dtype=torch.float64)
    expected = (module(y[None])[0] - module.bias.reshape(-1, *[1] * ndim)).detach().numpy()
    # API.md section 7: the result applies the layer, A @ y == layer(y) - bias; A.T is the forward conv
    assert A.shape == (expected.size, y.numel())
    np.testing.assert_allclose((A @ y.numpy().ravel()).reshape(expected.shape), expected, atol=1e-12)
    np.testing.assert_array_equal(A.bias, module.bias.detach().numpy())
    _check_transpose(A)


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
    np.testing.assert_allclose((op @ x_first).reshape(expected.shape), expected, atol=1e-4)
    np.testing.assert_array_equal(op.bias, bias)


def test_keras_seed_shapes():
    keras = pytest.importorskip("keras")
    for padding, size in (("valid", 5), ("same", 4)):
        layer = keras.layers.Conv2DTranspose(1, 3, strides=2, padding=padding)
        layer.build((None, 2, 2, 1))
        assert ts.from_keras(layer, (2, 2)).shape == (size * size, 4)


def test_keras_bad_layers():
    keras = pytest.importorskip("keras")
    with pytest.raises(ValueError, match="got DepthwiseConv2D"):
        ts.from_keras(keras.layers.DepthwiseConv2D(3), (5, 5))
    with pytest.raises(ValueError, match="not built yet"):
        ts.from_keras(keras.layers.Conv2D(2, 3), (5, 5))
    layer = keras.layers.Conv1DTranspose(1, 1, strides=3, padding="same")  # forward padding hi < 0
    layer.build((None, 4, 1))
    x = np.random.default_rng(3).standard_normal((1, 4, 1)).astype(np.float32)
    expected = np.asarray(layer(x))[0, :, 0] - layer.get_weights()[1][0]
    np.testing.assert_allclose(ts.from_keras(layer, 4) @ x[0, :, 0], expected, atol=1e-5)


def test_frameworks_are_not_imported_at_import_time():
    import subprocess
    import sys

    code = "import sys, tconv_sparse; print(sorted({'torch', 'keras', 'tensorflow', 'jax', 'matplotlib'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- Keras geometry without Keras
class _FakeKerasLayer:
    """The attributes :func:`ts.from_keras` reads from a built Keras 3 layer, with Keras' layouts."""

    name = "fake"

    def __init__(self, kernel, bias, **config):
        self.kernel, self.bias_value, self.config = np.asarray(kernel), bias, config

    def get_weights(self):
        return [self.kernel] + ([] if self.bias_value is None else [self.bias_value])

    def get_config(self):
        return dict(self.config)


def _fake_keras(name, weight, *, stride, padding, dilation=1, output_padding=None, bias=None):
    """A fake built Keras layer of class ``name`` holding ``weight`` (tconv_sparse / torch layout)."""
    ndim = weight.ndim - 2
    config = dict(filters=weight.shape[1 if name.endswith("Transpose") else 0], padding=padding,
                  kernel_size=weight.shape[2:], strides=(stride,) * ndim, dilation_rate=(dilation,) * ndim,
                  data_format="channels_last", use_bias=bias is not None)
    if name.endswith("Transpose"):
        config["output_padding"] = None if output_padding is None else (output_padding,) * ndim
    else:
        config["groups"] = 1
    # Keras kernels: (*k, C_in/groups, C_out) for Conv, (*k, C_out, C_in) for Transpose
    layer_class = type(name, (_FakeKerasLayer,), {})
    return layer_class(np.moveaxis(weight, (0, 1), (-1, -2)), bias, **config)


GOLDEN = [
    pytest.param(case, id=f"{path.name.split('_')[2].split('.')[0]}-{i}")
    for path in sorted((pathlib.Path(__file__).parent / "data").glob("keras_golden_*.json.gz"))
    for i, case in enumerate(json.load(gzip.open(path, "rt"))["cases"])
]


@pytest.mark.parametrize("case", GOLDEN)
def test_keras_geometry_against_golden_keras_outputs(case):
    """Every stored Keras 3 result (TensorFlow and JAX backends) is ``A @ x`` for a fake layer."""
    x, weight, expected = (np.asarray(case[key]) for key in ("x", "weight", "y"))
    ndim = weight.ndim - 2
    name = f"Conv{ndim}D" + ("Transpose" if case["transposed"] else "")
    bias = np.arange(1.0, expected.shape[0] + 1)
    layer = _fake_keras(name, weight, stride=case["stride"], padding=case["padding"],
                        dilation=case["dilation"], output_padding=case["output_padding"], bias=bias)
    A = ts.from_keras(layer, x.shape[1:])
    assert A.shape == (expected.size, x.size)
    np.testing.assert_allclose((A @ x.ravel()).reshape(expected.shape), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(A.bias, bias)
    _check_transpose(A)


@pytest.mark.parametrize("kernel,stride,output_padding", [(1, 2, None), (2, 3, None), (3, 4, None), (1, 2, 1)])
@pytest.mark.parametrize("ndim", [1, 2])
def test_keras_same_transpose_with_kernel_below_stride(kernel, stride, output_padding, ndim):
    """Keras "same" with ``k < stride`` crops past the canvas (forward ``hi < 0``): a forward conv with
    ``hi = 0`` has the same matrix, so ``from_keras`` accepts it (issue 14, item 7)."""
    rng = np.random.default_rng(kernel + stride)
    weight = rng.standard_normal((2, 3, *(kernel,) * ndim))
    y = rng.standard_normal((2, *(4,) * ndim))
    layer = _fake_keras(f"Conv{ndim}DTranspose", weight, stride=stride, padding="same",
                        output_padding=output_padding)
    A = ts.from_keras(layer, y.shape[1:])
    expected = ts.conv_transpose(y, weight, stride=stride, padding="same", output_padding=output_padding)
    assert A.shape == (expected.size, y.size) and A.bias is None
    np.testing.assert_allclose(A @ y.ravel(), expected.ravel(), atol=1e-12)
    _check_transpose(A)
    # A.T is the forward convolution of the layer's output with the same kernel and stride (no padding)
    x = rng.standard_normal(expected.shape)
    forward = ts.conv_matrix(weight, expected.shape[1:], stride=stride)
    assert forward.shape == A.T.shape
    np.testing.assert_allclose(A.T @ x.ravel(), forward @ x.ravel(), atol=1e-12)


def test_keras_arguments_read_from_the_config():
    """The conversion reads strides, padding, dilation, groups and output_padding from ``get_config``."""
    from tconv_sparse.interop import _keras_arguments as keras_arguments

    weight = np.ones((4, 3, 2, 3))
    layer = _fake_keras("Conv2DTranspose", weight, stride=2, padding="same", output_padding=1, bias=np.zeros(3))
    arguments = keras_arguments(layer)
    assert arguments.transposed and arguments.weight.shape == (4, 3, 2, 3)
    assert arguments.keywords == dict(stride=(2, 2), padding="same", dilation=(1, 1), groups=1, output_padding=(1, 1))
    causal = _fake_keras("Conv1D", np.ones((2, 1, 3)), stride=1, padding="causal", dilation=2)
    assert keras_arguments(causal).keywords["padding"] == ((4, 0),)
    unbuilt = type("Conv2D", (_FakeKerasLayer,), {})(np.ones(1), None)
    unbuilt.get_weights = lambda: []
    with pytest.raises(ValueError, match="not built yet"):
        keras_arguments(unbuilt)
    with pytest.raises(ValueError, match="got DepthwiseConv2D"):
        keras_arguments(type("DepthwiseConv2D", (_FakeKerasLayer,), {})(np.ones(1), None))
