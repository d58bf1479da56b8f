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
