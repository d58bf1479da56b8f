"""``tconv_sparse.dask``: equal to the in-memory result for random geometries x chunkings, on the
threaded scheduler and on ``dask.distributed``; bounded memory through Zarr; clear errors."""

from __future__ import annotations

import itertools
import os
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import dask  # noqa: E402
from conftest import assert_close, random_array  # noqa: E402
from hypothesis import HealthCheck, given, reject, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tconv_sparse as ts  # noqa: E402
import tconv_sparse.dask as tsd  # noqa: E402

MODES = ("zeros", "circular", "reflect", "replicate")
#: random geometries are often invalid (a kernel larger than the padded input, reflect padding
#: as large as the input): they are rejected, not counted
relaxed = settings(suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])


# ------------------------------------------------------------------ strategies
def _partition(draw, size: int) -> tuple:
    """Random chunk sizes adding up to ``size``: uneven, often smaller than the kernel."""
    cuts = draw(st.sets(st.integers(1, size - 1), max_size=size - 1)) if size > 1 else set()
    bounds = [0, *sorted(cuts), size]
    return tuple(b - a for a, b in itertools.pairwise(bounds))


def _padding(draw, ndim):
    kind = draw(st.sampled_from(["int", "pairs", "valid", "same", "full"]))
    if kind == "int":
        return draw(st.integers(0, 3))
    if kind == "pairs":
        return tuple((draw(st.integers(0, 3)), draw(st.integers(0, 3))) for _ in range(ndim))
    return kind


@st.composite
def problems(draw, transposed: bool):
    """``(data, weight, bias, kwargs, data chunks, output chunks)`` of a valid random geometry."""
    ndim = draw(st.sampled_from([1, 2, 2, 3]))
    groups, per_in, per_out = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    axes = lambda low, high: tuple(draw(st.integers(low, high)) for _ in range(ndim))  # noqa: E731
    kernel, stride, dilation = axes(1, 4), axes(1, 3), axes(1, 2)
    kwargs = {"stride": stride, "padding": _padding(draw, ndim), "dilation": dilation, "groups": groups,
              "padding_mode": draw(st.sampled_from(MODES))}
    weight_shape = (groups * per_out, per_in, *kernel)
    size = 5 if ndim == 3 else 10
    try:
        if transposed:
            spatial = axes(1, size // 2 + 1)
            choice = draw(st.sampled_from(["output_padding", "output_size", None]))
            if choice == "output_padding":
                kwargs["output_padding"] = tuple(draw(st.integers(0, max(s, d) - 1))
                                                 for s, d in zip(stride, dilation))
            geometry = ts.Geometry.transposed(weight_shape, spatial, **kwargs)
            if choice == "output_size":  # the default size, picked explicitly (when it is in range)
                kwargs["output_size"] = geometry.input_shape
                geometry = ts.Geometry.transposed(weight_shape, spatial, **kwargs)
            outputs, channels, out_channels = geometry.input_shape, geometry.out_channels, geometry.in_channels
        else:
            spatial = axes(1, size)
            geometry = ts.Geometry.forward(weight_shape, spatial, **kwargs)
            outputs, channels, out_channels = geometry.output_shape, geometry.in_channels, geometry.out_channels
    except ValueError:
        reject()
    batch = draw(st.sampled_from([None, 1, 3]))
    dtype = draw(st.sampled_from([np.float64, np.complex128]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (channels, *spatial) if batch is None else (batch, channels, *spatial)
    data = random_array(rng, shape, dtype)
    weight = random_array(rng, weight_shape, dtype)
    bias = random_array(rng, (out_channels,), dtype) if draw(st.booleans()) else None
    chunks = tuple(_partition(draw, n) for n in shape)
    output_chunks = tuple(_partition(draw, n) for n in outputs) if draw(st.booleans()) else None
    return data, weight, bias, kwargs, chunks, output_chunks


# -------------------------------------------------------- equality, threads
@relaxed
@given(problems(transposed=False))
def test_conv_equals_in_memory(problem):
    x, weight, bias, kwargs, chunks, output_chunks = problem
    lazy = tsd.conv(da.from_array(x, chunks=chunks), weight, bias, chunks=output_chunks, **kwargs)
    expected = ts.conv(x, weight, bias, **kwargs)
    assert lazy.shape == expected.shape
    if output_chunks is not None:
        assert lazy.chunks[-len(output_chunks):] == output_chunks
    assert_close(lazy.compute(scheduler="threads"), expected, x.dtype)


@relaxed
@given(problems(transposed=True))
def test_conv_transpose_equals_in_memory(problem):
    y, weight, bias, kwargs, chunks, output_chunks = problem
    lazy = tsd.conv_transpose(da.from_array(y, chunks=chunks), weight, bias, chunks=output_chunks, **kwargs)
    expected = ts.conv_transpose(y, weight, bias, **kwargs)
    assert lazy.shape == expected.shape
    if output_chunks is not None:
        assert lazy.chunks[-len(output_chunks):] == output_chunks
    assert_close(lazy.compute(scheduler="threads"), expected, y.dtype)


@pytest.mark.parametrize("padding_mode", MODES)
def test_strided_transposed_halo_with_chunks_smaller_than_the_kernel(rng, padding_mode):
    """Stride 3, dilation 2 (k_eff 7), output_padding, chunks of 1-3 and a far-end fold."""
    y = rng.standard_normal((2, 2, 7, 6))
    weight = rng.standard_normal((2, 3, 4, 3))
    kwargs = {"stride": (3, 2), "padding": ((2, 3), (3, 1)), "output_padding": (1, 1), "dilation": (2, 2),
              "padding_mode": padding_mode}
    lazy = tsd.conv_transpose(da.from_array(y, chunks=(1, 1, (1, 3, 1, 2), (2, 1, 3))), weight, **kwargs)
    assert_close(lazy.compute(scheduler="threads"), ts.conv_transpose(y, weight, **kwargs), np.float64)


def test_default_chunks_follow_the_stride():
    y = da.zeros((1, 1, 32, 30), chunks=(1, 1, 8, 8))
    weight = np.ones((1, 1, 3, 3))
    assert tsd.conv_transpose(y, weight, stride=2, padding=1, output_padding=1).chunks[2:] == (
        (16, 16, 16, 16), (16, 16, 16, 12))
    assert tsd.conv(y, weight, stride=2, padding="same").chunks[2:] == ((4, 4, 4, 4), (4, 4, 4, 3))


def _recording(shape, chunks):
    """A Dask array of zeros that records the block ids its tasks compute."""
    seen, lock = set(), threading.Lock()

    def block(block_id=None):
        with lock:
            seen.add(block_id)
        return np.zeros([c[i] for c, i in zip(chunks, block_id, strict=True)])

    return da.map_blocks(block, chunks=chunks, dtype=float, meta=np.empty((0,) * len(shape))), seen


def test_one_block_reads_only_its_halo():
    """Batch chunks are independent; a spatial block reads the chunks its halo reaches, and with
    circular padding also the far end of the axis."""
    chunks = ((1, 1, 1), (1,), (4, 4, 4, 4), (16,))
    weight = np.ones((1, 1, 3, 3))
    x, seen = _recording((3, 1, 16, 16), chunks)
    tsd.conv(x, weight, padding=1).blocks[1, 0, 2].compute(scheduler="threads")
    assert seen == {(1, 0, 1, 0), (1, 0, 2, 0), (1, 0, 3, 0)}
    x, seen = _recording((3, 1, 16, 16), chunks)
    tsd.conv(x, weight, padding=1, padding_mode="circular").blocks[2, 0, 0].compute(scheduler="threads")
    assert seen == {(2, 0, 0, 0), (2, 0, 1, 0), (2, 0, 3, 0)}


def test_read_amplification():
    x = da.zeros((1, 1, 1000), chunks=(1, 1, 100))
    weight = np.ones((1, 1, 5))
    assert tsd.read_amplification(x, weight, padding="same") == pytest.approx((8 * 104 + 2 * 102) / 1000)
    assert tsd.read_amplification(x, weight, padding="same", padding_mode="circular") == pytest.approx(1.04)
    assert tsd.read_amplification(x, weight, padding="same", chunks=1000) == 1
    # transposed, stride 2, crop 2: outputs [i0, i1) are padded positions [i0 + 2, i1 + 2), reached by
    # the inputs [ceil((i0 + 2 - 4) / 2), floor((i1 + 1) / 2)]: 102 per interior block of 200, 101 at the ends
    assert tsd.read_amplification(x, weight, transposed=True, stride=2, padding=2,
                                  chunks=200) == pytest.approx((8 * 102 + 2 * 101) / 1000)


# ---------------------------------------------------------------- deconvolve
@pytest.mark.parametrize("solver", ["lsqr", "cg", "richardson_lucy"])
def test_deconvolve_per_batch_chunk_is_the_in_memory_solve(rng, solver):
    weight = np.abs(rng.standard_normal((2, 1, 3, 3)))
    h = ts.conv(rng.random((5, 1, 12, 10)), weight, stride=2, padding=1)
    kwargs = {"stride": 2, "padding": 1, "solver": solver, "maxiter": 30}
    expected = ts.deconvolve(h, weight, (12, 10), **kwargs)
    result = tsd.deconvolve(da.from_array(h, chunks=(2, -1, -1, -1)), weight, (12, 10), **kwargs)
    assert result.x.chunks[0] == (2, 2, 1)
    x, iterations, residuals, converged = dask.compute(result.x, result.iterations, result.residuals,
                                                       result.converged, scheduler="threads")
    np.testing.assert_array_equal(x, expected.x)
    np.testing.assert_array_equal(iterations, expected.iterations)
    np.testing.assert_array_equal(converged, expected.converged)
    for history, reference in zip(residuals, expected.residuals, strict=True):
        np.testing.assert_array_equal(history, reference)


def test_deconvolve_progress_shows_dask_progress_bar_and_persists(rng, capsys):
    weight = np.array([[[0.25, 0.5, 0.25]]])
    h = ts.conv(rng.random((4, 1, 16)), weight, padding=1)
    result = tsd.deconvolve(da.from_array(h, chunks=(2, 1, 16)), weight, padding=1, noise_std=1e-3,
                            progress=True)
    err = capsys.readouterr().err
    assert "100% Completed" in err                 # dask.diagnostics.ProgressBar, on stderr
    assert len(dict(result.x.dask)) == len(result.x.chunks[0])   # persisted: one in-memory block per chunk
    expected = ts.deconvolve(h, weight, padding=1, noise_std=1e-3)
    np.testing.assert_array_equal(result.x.compute(), expected.x)
    np.testing.assert_array_equal(result.iterations.compute(), expected.iterations)


def test_deconvolve_unbatched_and_initial_guesses(rng):
    weight = np.array([[[0.25, 0.5, 0.25]]])
    h = ts.conv(rng.random((4, 1, 16)), weight, padding=1)
    lazy = da.from_array(h, chunks=(3, 1, 16))
    single = tsd.deconvolve(lazy[0], weight, padding=1)
    expected = ts.deconvolve(h[0], weight, padding=1)
    np.testing.assert_array_equal(single.x.compute(scheduler="threads"), expected.x)
    assert int(single.iterations.compute(scheduler="threads")) == expected.iterations
    x0 = rng.random((4, 1, 16))
    for guess, lazy_guess in ((x0, x0), (x0, da.from_array(x0, chunks=1)), (x0[0], da.from_array(x0[0]))):
        result = tsd.deconvolve(lazy, weight, padding=1, x0=lazy_guess, maxiter=3)
        expected = ts.deconvolve(h, weight, padding=1, x0=guess, maxiter=3)
        np.testing.assert_array_equal(result.x.compute(scheduler="threads"), expected.x)


# --------------------------------------------------------------------- errors
def _lazy(shape=(2, 1, 8, 8), chunks=4):
    return da.zeros(shape, chunks=chunks)


WEIGHT = np.ones((1, 1, 3, 3))


@pytest.mark.parametrize("call, match", [
    (lambda: tsd.conv(np.zeros((1, 1, 8, 8)), WEIGHT), "dask.array.Array"),
    (lambda: tsd.conv(_lazy()[_lazy()[:, 0, 0, 0] > 0], WEIGHT), "compute_chunk_sizes"),
    (lambda: tsd.conv(_lazy(), da.from_array(WEIGHT)), "in-memory array"),
    (lambda: tsd.conv(_lazy(), WEIGHT, chunks=(3, 3, 3)), "not a chunking"),
    (lambda: tsd.conv(_lazy(), WEIGHT, chunks=((3, 3),)), "not a chunking"),
    (lambda: tsd.conv(_lazy(), WEIGHT, chunks=((6, 0), (6,))), "empty chunk"),
    (lambda: tsd.conv_transpose(_lazy(), WEIGHT, stride=0), "stride"),
    (lambda: tsd.conv_transpose(_lazy((2, 3, 8, 8)), WEIGHT), "channels"),
    (lambda: tsd.conv(_lazy(), WEIGHT, method="gather"), "method"),
    (lambda: tsd.deconvolve(_lazy(), WEIGHT, padding=1), "batch axis only"),
    (lambda: tsd.deconvolve(_lazy(chunks=(1, 1, 8, 8)), WEIGHT, padding=1, progress="yes"), "progress"),
    (lambda: tsd.deconvolve(_lazy(chunks=(1, 1, 8, 8)), WEIGHT, (9, 9), padding=1), "produces"),
    (lambda: tsd.deconvolve(_lazy(chunks=(1, 1, 8, 8)), WEIGHT, padding=1, x0=np.zeros((3, 1, 8, 8))),
     "samples"),
])
def test_errors_are_value_errors_before_any_work(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------- distributed
#: per-worker memory limit of the test cluster; a worker with the library loaded holds about 250 MB
MEMORY_LIMIT = 500_000_000


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit=MEMORY_LIMIT,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        yield client


def test_distributed_equals_in_memory(client, rng):
    # the in-memory references first: this process compiles the kernels and writes Numba's on-disk
    # cache, and the workers, which import the library at their first task, load them from it
    # instead of each compiling them (minutes on two busy cores)
    y = rng.standard_normal((3, 2, 20, 18)).astype(np.float32)
    weight = rng.standard_normal((2, 3, 4, 3)).astype(np.float32)
    kwargs = {"stride": 2, "padding": 1, "dilation": (1, 2), "padding_mode": "reflect"}
    transposed = ts.conv_transpose(y, weight, **kwargs)
    forward = ts.conv(transposed, weight, **kwargs)
    solve = {"solver": "cg", "maxiter": 5, **kwargs}
    deconvolved = ts.deconvolve(forward, weight, transposed.shape[2:], **solve).x

    lazy = tsd.conv_transpose(da.from_array(y, chunks=(1, 1, 6, 7)), weight, **kwargs)
    assert_close(client.compute(lazy).result(), transposed, np.float32)
    lazy = tsd.conv(da.from_array(transposed, chunks=(2, 3, 9, 5)), weight, **kwargs)
    assert_close(client.compute(lazy).result(), forward, np.float32)
    result = tsd.deconvolve(da.from_array(forward, chunks=(1, -1, -1, -1)), weight, transposed.shape[2:], **solve)
    np.testing.assert_array_equal(client.compute(result.x).result(), deconvolved)


def _peak_resident_bytes():
    """Peak resident memory of this process's address space since its ``exec`` (Linux ``VmHWM``).

    Not ``getrusage().ru_maxrss``: Linux carries that across ``fork`` + ``exec``, so a worker
    spawned by a large pytest process would report the parent's size, not its own.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="peak memory is read from Linux /proc")
def test_bounded_memory_to_zarr(client, tmp_path):
    """A 2 GiB transposed convolution, 4.3x a worker's limit, streamed to Zarr by 2 workers."""
    zarr = pytest.importorskip("zarr")
    y = da.random.default_rng(0).random((128, 1, 1024, 1024), dtype=np.float32, chunks=(1, 1, 1024, 1024))
    weight = np.random.default_rng(1).standard_normal((1, 1, 4, 4)).astype(np.float32)
    result = tsd.conv_transpose(y, weight, stride=2, padding=1)
    assert result.nbytes > 4 * MEMORY_LIMIT
    # the reference first (see test_distributed_equals_in_memory): sample 77, in this process
    expected = ts.conv_transpose(y[77].compute(scheduler="threads"), weight, stride=2, padding=1)
    workers = client.run(os.getpid)
    # uncompressed: random floats do not compress, and the test should time the library, not zstd
    uncompressed = {"compressors": None} if int(zarr.__version__.split(".")[0]) >= 3 else {"compressor": None}
    da.to_zarr(result, str(tmp_path / "result.zarr"), **uncompressed)
    assert client.run(os.getpid) == workers  # no worker was restarted by its nanny
    peaks = client.run(_peak_resident_bytes)
    assert max(peaks.values()) < MEMORY_LIMIT
    stored = zarr.open_array(str(tmp_path / "result.zarr"), mode="r")
    assert stored.shape == result.shape
    assert_close(stored[77], expected, np.float32)
