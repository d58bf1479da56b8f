"""Peak memory of every method of ``conv`` and ``conv_transpose`` on the shared grid.

``peakmem_call`` is what asv measures (the peak resident memory of the call,
data included); ``track_predicted_bytes`` is what the memory guard predicts for
the same call (output plus work buffers, :func:`tconv_sparse.backends.memory.work_bytes`),
so that a regression in either, or an estimate that stops bounding the
measurement, shows up in the benchmark history.
"""

import numpy as np

import tconv_sparse as ts
from tconv_sparse.backends.memory import output_bytes, work_bytes
from tconv_sparse.bench import cases
from tconv_sparse.functional import FORWARD_METHODS, TRANSPOSE_METHODS
from tconv_sparse.backends.chooser import choose


class _PeakMemory:
    """One grid case, method and dtype of :attr:`direction`; data from the grid's fixed seed,
    one warm-up call in ``setup`` (JIT compilation is never measured). A method that
    refuses the case (``ValueError``) is skipped by raising ``NotImplementedError``."""

    direction = ""
    param_names = ["case", "method", "dtype"]
    timeout = 300

    def setup(self, case, method, dtype):
        self.case = cases.CASES[case]
        self.data, self.weight = self.case.data(self.direction, dtype)
        self.function = ts.conv_transpose if self.direction == "conv_transpose" else ts.conv
        self.keywords = {**self.case.keywords(self.direction), "method": method}
        try:
            self.function(self.data, self.weight, **self.keywords)
        except ValueError as error:
            raise NotImplementedError(str(error)) from None

    def peakmem_call(self, case, method, dtype):
        self.function(self.data, self.weight, **self.keywords)

    def track_predicted_bytes(self, case, method, dtype):
        """Output plus work buffers, as the memory guard predicts them (``auto``: its choice)."""
        transposed = self.direction == "conv_transpose"
        geometry = ts.Geometry.forward(self.case.weight_shape, self.case.shape, stride=self.case.stride,
                                       padding=self.case.padding)  # C of both directions
        batch = self.case.batch
        if method == "auto":
            method = choose(geometry, batch, np.dtype(dtype), transposed)
        return (output_bytes(geometry, batch, dtype, transposed)
                + work_bytes(method, geometry, batch, dtype, transposed))

    track_predicted_bytes.unit = "bytes"


def _params(methods):
    return [[case.name for case in cases.CONV_CASES], list(methods), list(cases.DTYPES)]


class ConvTransposePeakMemory(_PeakMemory):
    """``tconv_sparse.conv_transpose(y, w, method=...)``: every method, every grid case."""

    direction = "conv_transpose"
    params = _params(TRANSPOSE_METHODS)


class ConvPeakMemory(_PeakMemory):
    """``tconv_sparse.conv(x, w, method=...)``: every method, every grid case."""

    direction = "conv"
    params = _params(FORWARD_METHODS)
