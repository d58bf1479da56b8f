"""Issue 14, item 10: calls from several Python threads are safe on every Numba threading layer.

With ``tbb`` or ``omp`` the parallel kernels run concurrently; with ``workqueue``
(which aborts the process when two threads launch parallel kernels at once) the
library serialises its parallel kernels behind a lock and says so once with a
``RuntimeWarning``. Each run is a child process, so a crash fails the test
instead of killing pytest.
"""

from __future__ import annotations

import pytest

from limited import run_json

_CHILD = """
import json, threading, warnings
import numpy as np
import numba
import tconv_sparse as ts
warnings.simplefilter("always")
caught = []
warnings.showwarning = lambda message, *args, **kwargs: caught.append(str(message))
rng = np.random.default_rng(0)
weight = rng.standard_normal((4, 2, 3, 3))
x = rng.standard_normal((2, 2, 24, 20))
y = ts.conv(x, weight, stride=2, padding=1, method="sparse")
expected = {"conv": ts.conv(x, weight, stride=2, padding=1, method="sparse"),
            "conv_transpose": ts.conv_transpose(y, weight, stride=2, padding=1, output_padding=1,
                                                method="sparse")}
calls = [("conv", m) for m in ("sparse", "direct", "im2col", "auto")] + [
    ("conv_transpose", m) for m in ("sparse", "scatter", "gather", "zero_insert", "im2col", "auto")]
errors, barrier = [], threading.Barrier(8)

def work(index):
    barrier.wait()
    for repeat in range(3):
        for direction, method in calls[index % 3:] + calls[:index % 3]:
            if direction == "conv":
                result = ts.conv(x, weight, stride=2, padding=1, method=method)
            else:
                result = ts.conv_transpose(y, weight, stride=2, padding=1, output_padding=1,
                                           method=method)
            if not np.allclose(result, expected[direction], atol=1e-10):
                errors.append((direction, method))
    operator = ts.ConvOperator(weight, (24, 20), stride=2, padding=1, method="sparse")
    operator.matvec(x[0].ravel()); operator.rmatvec(y[0].ravel())

threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(dict(errors=errors, layer=numba.threading_layer(), warnings=caught)))
"""


@pytest.mark.parametrize("layer", ["default", "workqueue"])
def test_eight_threads_call_every_method_concurrently(layer):
    env = {} if layer == "default" else {"NUMBA_THREADING_LAYER": layer}
    report = run_json(_CHILD, env=env, timeout=1800)
    assert report["errors"] == []
    if layer != "default":
        assert report["layer"] == layer
    serialised = [w for w in report["warnings"] if "workqueue" in w]
    if report["layer"] == "workqueue":
        assert len(serialised) == 1 and "serialises" in serialised[0] and "tbb" in serialised[0]
    else:
        assert serialised == []
