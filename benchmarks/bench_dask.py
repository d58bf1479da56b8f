"""``tconv_sparse.dask``: throughput on a ``LocalCluster`` of 1 and 2 workers, and the halo overhead.

Needs the ``dask`` extra (``pip install -e ".[dask]"``); without it every
benchmark here is skipped. ``python -m benchmarks.bench_dask`` runs both
grids once and prints the tables quoted in ``docs/dask.md``.
"""

import multiprocessing
import statistics
import time

import numba
import numpy as np

try:
    import dask.array as da
    import distributed

    import tconv_sparse.dask as tsd
except ImportError:  # the dask extra is not installed: setup skips every benchmark
    tsd = None

#: the throughput problem: 128 images of 4 channels, 256x256, upsampled 2x by a 4x4 kernel (float32)
BATCH, CHANNELS, SIZE = 128, 4, 256
UPSAMPLE = {"stride": 2, "padding": 1}
#: input chunks (16 blocks each): whole images in batches of 8, or 128x128 tiles of 32 images
CHUNKINGS = {"batch": (8, -1, -1, -1), "spatial": (32, -1, 128, 128)}
#: the halo grid: one 4-channel 1024x1024 image, square chunks, kernels and strides
HALO_SIZE = 1024
HALO_CHUNKS, HALO_KERNELS, HALO_STRIDES = [128, 256, 512, HALO_SIZE], [3, 7, 15], [1, 2, 4]


def _require_dask():
    if tsd is None:
        raise NotImplementedError("needs the dask extra: pip install 'tconv-sparse[dask]'")


class ClusterThroughput:
    """``conv_transpose`` of a persisted batch on ``workers`` processes of one thread each.

    Each worker runs one Numba thread (``NUMBA_NUM_THREADS=1``), so the
    workers are the only parallelism. ``setup`` persists the input on the
    workers and runs the convolution once (worker imports and Numba cache
    loads are never timed); a timed call persists the result and waits.
    """

    params = [[1, 2], list(CHUNKINGS)]
    param_names = ["workers", "chunking"]
    timeout = 600

    def setup(self, workers, chunking):
        _require_dask()
        self.cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                host="127.0.0.1", dashboard_address=None,
                                                env={"NUMBA_NUM_THREADS": "1"})
        self.client = distributed.Client(self.cluster)
        y = da.random.default_rng(0).standard_normal((BATCH, CHANNELS, SIZE, SIZE), dtype=np.float32,
                                                     chunks=CHUNKINGS[chunking])
        self.y = self.client.persist(y)
        self.weight = np.random.default_rng(1).standard_normal((CHANNELS, CHANNELS, 4, 4), dtype=np.float32)
        self.run()

    def teardown(self, workers, chunking):
        self.client.close()
        self.cluster.close()

    def run(self) -> int:
        """Compute the result on the workers; return its number of entries.

        The keys of the result are deterministic, and the scheduler may still hold the previous
        run's when the next one starts: a fresh final name (fused into the last layer, no extra
        task) makes every run compute.
        """
        self.runs = getattr(self, "runs", 0) + 1
        result = tsd.conv_transpose(self.y, self.weight, **UPSAMPLE)
        result = self.client.persist(result.map_blocks(np.asarray, name=f"throughput-{id(self)}-{self.runs}"))
        distributed.wait(result)
        return result.size

    def time_conv_transpose(self, workers, chunking):
        self.run()

    def track_outputs_per_second(self, workers, chunking):
        start = time.perf_counter()
        outputs = self.run()
        return outputs / (time.perf_counter() - start)

    track_outputs_per_second.unit = "outputs/s"


class HaloOverhead:
    """One 4-channel 1024x1024 ``conv_transpose`` in square chunks, one thread, no cluster.

    The synchronous scheduler, one Numba thread and one kernel (``"gather"``,
    which computes only the outputs of the block, so chunking adds no
    arithmetic) measure what chunking costs: compare each chunk size with the
    one-chunk run (``chunk = 1024``) of the same kernel and stride.
    ``track_read_amplification`` is the exact number of inputs the blocks
    read per input (:func:`tconv_sparse.dask.read_amplification`).
    """

    params = [HALO_CHUNKS, HALO_KERNELS, HALO_STRIDES]
    param_names = ["chunk", "kernel", "stride"]
    timeout = 600

    def setup(self, chunk, kernel, stride):
        _require_dask()
        numba.set_num_threads(1)
        rng = np.random.default_rng(0)
        y = rng.standard_normal((1, 4, HALO_SIZE, HALO_SIZE), dtype=np.float32)
        self.y = da.from_array(y, chunks=(1, 4, chunk, chunk))
        self.weight = rng.standard_normal((4, 4, kernel, kernel), dtype=np.float32)
        self.kwargs = {"stride": stride, "padding": (kernel - 1) // 2, "method": "gather"}
        self.run()

    def run(self):
        return tsd.conv_transpose(self.y, self.weight, **self.kwargs).compute(scheduler="synchronous")

    def time_conv_transpose(self, chunk, kernel, stride):
        self.run()

    def track_read_amplification(self, chunk, kernel, stride):
        geometry = {name: value for name, value in self.kwargs.items() if name != "method"}
        return tsd.read_amplification(self.y, self.weight, transposed=True, **geometry)

    track_read_amplification.unit = "inputs read per input"


def _median_time(function, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _spin(iterations: int) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i
    return time.perf_counter() - start


def _machine_speedup(iterations: int = 10_000_000) -> float:
    """Speed-up of 2 processes over 1 on pure-Python work: the parallelism a shared machine offers now."""
    one = _spin(iterations)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1, 1])
        start = time.perf_counter()
        pool.map(_spin, [iterations, iterations])
        return 2 * one / (time.perf_counter() - start)


def main():
    """Print the throughput and halo tables of ``docs/dask.md`` (median of 5 runs each)."""
    print(f"2-process speed-up of this machine on pure Python, before: {_machine_speedup():.2f}")
    print("| chunking | workers | time (s) | outputs/s | speed-up |\n| --- | --- | --- | --- | --- |")
    for chunking in CHUNKINGS:
        single = None
        for workers in ClusterThroughput.params[0]:
            bench = ClusterThroughput()
            bench.setup(workers, chunking)
            seconds = _median_time(bench.run)
            outputs = bench.run()
            bench.teardown(workers, chunking)
            single = single or seconds
            print(f"| {chunking} | {workers} | {seconds:.3f} | {outputs / seconds:.3g} | {single / seconds:.2f} |")
    print(f"2-process speed-up of this machine on pure Python, after: {_machine_speedup():.2f}")
    print("\n| kernel | stride | chunk | blocks | read amplification | time (s) | time / one chunk |\n"
          "| --- | --- | --- | --- | --- | --- | --- |")
    for kernel in HALO_KERNELS:
        for stride in HALO_STRIDES:
            rows = []
            for chunk in HALO_CHUNKS:
                bench = HaloOverhead()
                bench.setup(chunk, kernel, stride)
                rows.append((chunk, bench.track_read_amplification(chunk, kernel, stride), _median_time(bench.run)))
            whole = rows[-1][2]
            for chunk, amplification, seconds in rows:
                print(f"| {kernel} | {stride} | {chunk} | {(HALO_SIZE // chunk) ** 2} | {amplification:.4f} | "
                      f"{seconds:.3f} | {seconds / whole:.2f} |")


if __name__ == "__main__":
    main()
