"""Case tables: ``(input_shape, weight_shape, bias_shape, kwargs)``.

``OPINFO_*`` are PyTorch's OpInfo samples (``sample_inputs_conv*`` and
``sample_inputs_conv_transpose*`` in ``torch.testing._internal.
common_methods_invocations``, torch 2.13), transcribed as data; each is run
batched and unbatched. ``MODE_CASES`` adds what PyTorch's samples lack:
every padding mode, asymmetric padding, strings, and rank 1 to 3.
"""

OPINFO_CONV = [
    ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "groups": 1}),
    ((2, 4, 8), (2, 2, 3), (2,), {"stride": 3, "padding": 1, "groups": 2, "dilation": 2}),
    ((1, 4, 5), (1, 4, 3), None, {"stride": (2,), "padding": "valid"}),
    ((2, 2, 4), (2, 1, 4), (2,), {"stride": (1,), "padding": "same", "groups": 2, "dilation": (2,)}),
    ((1, 4, 5), (3, 4, 3), None, {}),
    ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "groups": 1}),
    ((2, 4, 8, 8), (2, 2, 3, 3), (2,), {"stride": (3, 2), "padding": (2, 1), "groups": 2, "dilation": (4, 4)}),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": 1, "groups": 1, "dilation": (2, 3)}),
    ((1, 2, 4, 3), (4, 2, 3, 4), None, {"stride": 2, "padding": 1, "groups": 1}),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 2, "padding": "valid"}),
    ((1, 4, 5, 5), (1, 4, 2, 3), (1,), {"stride": 1, "padding": "same", "dilation": 3}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4}),
    ((2, 4, 6, 6), (8, 1, 3, 3), (8,), {"groups": 4}),
    ((2, 4, 6, 6), (8, 1, 3, 3), None, {"groups": 4}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "stride": (3, 2)}),
    ((2, 4, 6, 6), (4, 1, 3, 3), (4,), {"groups": 4, "padding": (1, 1)}),
    ((2, 4, 5, 5), (4, 1, 2, 2), (4,), {"groups": 4, "dilation": (2, 2)}),
    ((2, 4, 6, 5), (6, 2, 3, 2), (6,), {"groups": 2}),
    ((1, 4, 5, 5), (3, 4, 3, 3), None, {}),
    ((1, 1, 4, 4, 4), (1, 1, 1, 1, 1), (1,), {"padding": "same"}),
    ((1, 1, 4, 4, 4), (1, 1, 4, 4, 4), (1,), {"stride": (2, 2, 2)}),
    ((1, 1, 5, 5, 5), (1, 1, 3, 3, 3), (1,), {"dilation": 2}),
    ((1, 1, 1, 1, 10), (1, 1, 1, 1, 4), None, {"padding": "valid"}),
    ((1, 1, 10, 11, 12), (1, 1, 1, 2, 5), None, {"padding": "same"}),
    ((1, 1, 10, 11, 12), (1, 1, 1, 2, 5), None, {"padding": "same", "dilation": 2}),
    ((1, 1, 10, 11, 12), (1, 1, 4, 4, 4), None, {"padding": "same", "dilation": 3}),
    ((3, 9, 3, 1, 9), (3, 3, 3, 1, 9), (3,), {"groups": 3}),
    ((3, 9, 3, 1, 9), (3, 3, 3, 1, 9), (3,), {"stride": (2, 2, 2), "dilation": 1, "groups": 3}),
]

OPINFO_CONV_TRANSPOSE = [
    ((1, 3, 4), (3, 3, 3), (3,), {"stride": (2,), "padding": 2, "output_padding": (1,), "groups": 1}),
    ((2, 2, 4), (2, 2, 4), (4,), {"stride": (3,), "padding": (1,), "output_padding": (2,), "groups": 2, "dilation": (4,)}),
    ((1, 1, 4), (1, 1, 4), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2,)}),
    ((1, 1, 4), (1, 2, 3), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
    ((1, 4, 5), (4, 8, 3), None, {}),
    ((1, 3, 4, 4), (3, 3, 3, 3), (3,), {"stride": (2, 2), "padding": 2, "output_padding": (1, 1), "groups": 1}),
    ((2, 2, 4, 4), (2, 2, 4, 5), (4,), {"stride": (3, 2), "padding": (1, 2), "output_padding": (2, 3), "groups": 2, "dilation": (4, 4)}),
    ((1, 1, 4, 5), (1, 1, 4, 3), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3)}),
    ((1, 1, 4, 3), (1, 2, 3, 4), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
    ((2, 4, 4, 4), (4, 1, 3, 3), None, {"groups": 4}),
    ((1, 2, 5, 5), (2, 4, 3, 3), None, {}),
    ((1, 3, 4, 4, 4), (3, 3, 3, 3, 3), (3,), {"stride": (2, 2, 2), "padding": 2, "output_padding": (1, 1, 1), "groups": 1}),
    ((2, 2, 4, 4, 4), (2, 2, 4, 5, 6), (4,), {"stride": (3, 2, 1), "padding": (1, 2, 3), "output_padding": (2, 3, 1), "groups": 2, "dilation": (4, 4, 4)}),
    ((1, 1, 4, 5, 2), (1, 1, 4, 3, 1), (1,), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1, "dilation": (2, 3, 2)}),
    ((1, 1, 4, 3, 4), (1, 2, 3, 4, 5), None, {"stride": 2, "padding": 1, "output_padding": 1, "groups": 1}),
    ((1, 4, 5, 5, 5), (4, 8, 3, 3, 3), None, {}),
]

# Every padding mode, asymmetric and string padding, ranks 1-3; small enough for the loop reference.
_GEOMETRIES = [
    ((2, 2, 7), (3, 2, 3), {"stride": 2, "padding": ((2, 1),)}),
    ((1, 4, 6), (4, 2, 2), {"stride": 1, "padding": "same", "groups": 2, "dilation": 2}),
    ((2, 2, 5, 6), (2, 1, 3, 2), {"stride": (2, 1), "padding": ((1, 2), (0, 1)), "groups": 2}),
    ((1, 3, 5, 5), (2, 3, 3, 3), {"stride": 2, "padding": "same"}),
    ((1, 2, 6, 5), (2, 2, 2, 3), {"stride": (1, 2), "padding": 1, "dilation": (2, 1)}),
    ((1, 2, 4, 4, 5), (2, 2, 2, 3, 2), {"stride": (2, 1, 2), "padding": ((1, 0), 1, (0, 1))}),
]
MODE_CASES = [
    (x, w, None, dict(kwargs, padding_mode=mode))
    for x, w, kwargs in _GEOMETRIES
    for mode in ("zeros", "circular", "reflect", "replicate")
]


def _forward_output(x_shape, w_shape, kwargs):
    from reference import forward_padding

    ndim = len(w_shape) - 2
    expand = lambda v: (v,) * ndim if isinstance(v, int) else tuple(v)
    stride, dilation = expand(kwargs.get("stride", 1)), expand(kwargs.get("dilation", 1))
    pads = forward_padding(kwargs.get("padding", 0), x_shape[2:], w_shape[2:], stride, dilation)
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, (lo, hi), k, s, d in zip(x_shape[2:], pads, w_shape[2:], stride, dilation))


# The same geometries transposed: y has the forward output's shape, output_size gives x's shape back
# ("same" becomes the Keras rule with an explicit output_size).
MODE_TRANSPOSE_CASES = [
    ((x[0], w[0], *_forward_output(x, w, kwargs)), w, bias,
     dict(kwargs, output_size=x[2:]))
    for x, w, bias, kwargs in MODE_CASES
]
