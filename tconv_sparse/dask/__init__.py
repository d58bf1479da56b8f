"""Scale-out on Dask: ``conv``, ``conv_transpose`` and ``deconvolve`` on ``dask.array`` inputs.

``import tconv_sparse.dask as tsd`` (needs the ``dask`` extra:
``pip install "tconv-sparse[dask]"``; ``import tconv_sparse`` never imports
Dask). :func:`conv` and :func:`conv_transpose` take the arguments of
:func:`tconv_sparse.conv` and :func:`tconv_sparse.conv_transpose`, a
``dask.array.Array`` for the data, and return a lazy ``dask.array.Array``
equal to the in-memory result to float rounding, for every geometry and every
chunking. They run on any Dask scheduler (threads, processes,
``dask.distributed``).

How a block is computed
-----------------------
Each output block (one batch chunk, all channels, one spatial chunk per axis)
is computed by one call of the in-memory kernel on exactly the input it
depends on. Per spatial axis, the geometry's padding index map
(:func:`~tconv_sparse.core.index_maps.padding_index`, the same map every backend
uses) says which input each padded position reads, so the dependencies are
derived, not guessed:

* **forward**: the outputs ``[o0, o1)`` read the padded window
  ``[o0 * stride, (o1 - 1) * stride + k_eff)``. The block gathers that window
  through the map (zeros: an index of -1 is a zero; circular wraps, reflect
  mirrors, replicate clamps, possibly into chunks at the far end of the
  axis) and runs the ``"valid"`` convolution on it.
* **transposed**: ``C.T = P.T S.T``, with ``S`` the valid strided convolution
  on the padded domain and ``P`` the padding map. The result block
  ``[i0, i1)`` collects the padded positions that fold onto it (for zeros just
  ``[i0 + lo, i1 + lo)``; for the other modes also the wrapped, mirrored or
  clamped positions at the borders), split into runs of consecutive
  positions. A run ``[p0, p1)`` is reached by the transposed inputs
  ``[ceil((p0 - k_eff + 1) / stride), floor((p1 - 1) / stride)]`` (clipped to
  the input): an asymmetric halo that depends on stride, dilation, padding and
  output_padding. The block runs the in-memory transposed convolution of that
  input window with the crop that keeps exactly ``[p0, p1)``, then folds the
  run onto the result block through the map (a scatter-add for the positions
  that padding duplicates).

The input ranges every block reads are cut out with Dask slicing, one chunk
per output block per axis (``rechunk`` only merges pieces), so a task holds its
input window and its output block, and a worker receives only the slices it
needs. Chunks smaller than the kernel, uneven chunks and blocks that read
nothing are all the same case. The weight, the bias and the per-block plan are
one graph node, sent once to each worker.

**Chunk shapes.** The batch axis keeps the input's chunks (each batch chunk is
independent). The channel axis is one chunk on both sides: the input is
rechunked to one channel chunk first, because every output channel needs every
input channel of its group. The spatial output chunk boundaries are the
input's, divided by the stride (forward) or multiplied by it (transposed), the
last chunk taking the remainder, so regular input chunks give regular output
chunks (what :func:`dask.array.to_zarr` needs); or ``chunks=`` picks them
(anything :func:`dask.array.core.normalize_chunks` accepts for the output's
spatial shape).
:func:`read_amplification` tells how much input a chunking reads.

Deconvolution and ``ConvOperator``
----------------------------------
:func:`deconvolve` maps the in-memory :func:`tconv_sparse.deconvolve` over
batch chunks: each batch chunk is a set of independent problems, solved in one
task with one shared operator (and factorisation), so every sample's result is
identical to the in-memory one. The solvers are not run on Dask arrays: every
iteration of LSQR, CG or Richardson-Lucy needs global inner products, so a
Dask-array solver pays one graph evaluation, one cluster-wide reduction and
one halo exchange per iteration, hundreds of times; the ``"direct"`` solver
cannot be distributed this way at all. Many independent images or volumes
(the common case at scale) parallelise perfectly per block instead. A single
sample must therefore fit one worker; the spatial and channel axes of ``h``
must be one chunk. :class:`~tconv_sparse.ConvOperator` stays the in-memory
operator of one sample (SciPy's solvers need NumPy vectors); on Dask data its
products are :func:`conv` (``C x``) and :func:`conv_transpose` (``C.T y``, the
adjoint for real weights, or with the conjugated weight for complex ones).

Examples
--------
>>> import numpy as np, dask.array as da, tconv_sparse as ts, tconv_sparse.dask as tsd
>>> rng = np.random.default_rng(0)
>>> y, w = rng.standard_normal((2, 3, 20, 20)), rng.standard_normal((3, 2, 3, 3))
>>> lazy = tsd.conv_transpose(da.from_array(y, chunks=(1, 3, 7, 6)), w, stride=2, padding=1,
...                           padding_mode="reflect")
>>> lazy.chunks[2:]
((14, 14, 11), (12, 12, 12, 3))
>>> bool(np.allclose(lazy.compute(), ts.conv_transpose(y, w, stride=2, padding=1,
...                                                    padding_mode="reflect")))
True
"""

import importlib.util

if importlib.util.find_spec("dask") is None:  # pragma: no cover - the extra is not installed
    raise ImportError("tconv_sparse.dask needs Dask: pip install 'tconv-sparse[dask]'")

from tconv_sparse.dask.convolution import conv, conv_transpose, read_amplification
from tconv_sparse.dask.deconvolution import deconvolve

__all__ = ["conv", "conv_transpose", "deconvolve", "read_amplification"]
