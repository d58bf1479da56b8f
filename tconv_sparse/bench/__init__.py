"""Benchmarks as a product: one grid and one harness for ``tconv-sparse bench`` and asv.

- :mod:`~tconv_sparse.bench.cases`: the case grid and its data (fixed seed).
- :mod:`~tconv_sparse.bench.runners`: the contenders (every ``method`` and the
  PyTorch peer), the correctness check against ``C`` / ``C.T``, and timing.
- :mod:`~tconv_sparse.bench.report`: machine description, table, JSON, CSV, plot.
- :mod:`~tconv_sparse.cli.bench`: the ``tconv-sparse bench`` sub-command.

The asv suite in ``benchmarks/`` imports the same cases and contenders.
"""
