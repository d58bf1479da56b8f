"""``ConvOperator`` in ``scipy.sparse.linalg.lsqr`` for a fixed number of iterations."""

from scipy.sparse.linalg import lsqr

from tconv_sparse.bench import cases


class OperatorLsqr:
    """``lsqr(ConvOperator(w, shape, method=...), h, iter_lim=LSQR_ITERATIONS)``, tolerances off.

    ``setup`` runs one solve as the warm-up (it compiles the kernels and, for
    ``"sparse"``, builds the operator's cached matrix).
    """

    params = [list(cases.LSQR_CASES), list(cases.LSQR_METHODS), list(cases.DTYPES)]
    param_names = ["case", "method", "dtype"]
    timeout = 300

    def setup(self, case, method, dtype):
        case = cases.CASES[case]
        self.operator = case.operator(cases.LSQR_METHODS[method], dtype)
        self.rhs = case.columns("conv_transpose", 1, dtype)[:, 0]
        self.solve()

    def solve(self):
        return lsqr(self.operator, self.rhs, atol=0, btol=0, conlim=0, iter_lim=cases.LSQR_ITERATIONS)

    def time_lsqr(self, case, method, dtype):
        self.solve()

    def peakmem_lsqr(self, case, method, dtype):
        self.solve()

    def track_residual_norm(self, case, method, dtype):
        """``||h - C g||`` after the fixed iterations (the same for every method)."""
        return float(self.solve()[3])

    track_residual_norm.unit = "norm"


class DeblurLsqr200:
    """``ts.deconvolve(..., solver="lsqr", damp=0.05, maxiter=200, tol=0)`` on a 64x64 single-channel
    7x7 Gaussian blur (:func:`tconv_sparse.bench.cases.deblur_problem`, as ``scripts/bench_lsqr.py``).

    Two hundred iterations are four hundred tiny products with C and C.T, so
    this is the per-call cost of every small deconvolution experiment.
    """

    params = [list(cases.DTYPES)]
    param_names = ["dtype"]
    timeout = 120

    def setup(self, dtype):
        import tconv_sparse as ts

        self.h, self.weight = cases.deblur_problem(dtype)
        self.deconvolve = ts.deconvolve
        self.solve()

    def solve(self):
        return self.deconvolve(self.h, self.weight, padding=cases.DEBLUR_PADDING, solver="lsqr",
                               damp=cases.DEBLUR_DAMP, maxiter=cases.DEBLUR_ITERATIONS, tol=0.0)

    def time_lsqr_200(self, dtype):
        self.solve()

    def track_iterations(self, dtype):
        """Iterations run (200: the tolerance is off)."""
        return self.solve().iterations

    track_iterations.unit = "iterations"
