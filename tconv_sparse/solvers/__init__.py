"""Deconvolution: least-squares and iterative solvers that use C and C.T only."""
