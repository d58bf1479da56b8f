"""asv benchmarks of tconv_sparse (see ``asv.conf.json`` at the repository root).

The case grid, its data and the contenders (every ``method`` and the PyTorch
peer) come from :mod:`tconv_sparse.bench`, the same definitions that
``tconv-sparse bench`` runs.
"""
