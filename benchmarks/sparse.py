"""The sparse matrix ``C``: building it, and applying ``C @ x`` / ``C.T @ y``."""

from tconv_sparse.bench import cases


class ConvMatrix:
    """``tconv_sparse.conv_matrix`` from 5.9e5 to 1.9e8 nonzeros (2.1 GiB in float64)."""

    params = [list(cases.MATRIX_CASES), list(cases.DTYPES)]
    param_names = ["case", "dtype"]
    timeout = 600

    def setup(self, case, dtype):
        self.case = cases.CASES[case]
        # warm-up: compile the fill kernel for this dtype on the smallest matrix of the list
        cases.CASES[cases.MATRIX_CASES[0]].matrix(dtype)

    def time_conv_matrix(self, case, dtype):
        self.case.matrix(dtype)

    def peakmem_conv_matrix(self, case, dtype):
        self.case.matrix(dtype)

    def track_nnz(self, case, dtype):
        return self.case.matrix(dtype).nnz

    track_nnz.unit = "nonzeros"

    def track_bytes(self, case, dtype):
        matrix = self.case.matrix(dtype)
        return matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes

    track_bytes.unit = "bytes"


class SparseApply:
    """``C @ x`` and ``C.T @ y`` (SciPy CSR) for one vector and for a batch of columns."""

    params = [list(cases.APPLY_CASES), ["C @ x", "C.T @ y"], list(cases.APPLY_COLUMNS),
              list(cases.DTYPES)]
    param_names = ["case", "product", "columns", "dtype"]

    def setup(self, case, product, columns, dtype):
        case = cases.CASES[case]
        self.matrix = case.matrix(dtype)
        self.transposed = product == "C.T @ y"
        operand = case.columns("conv_transpose" if self.transposed else "conv", columns, dtype)
        self.operand = operand[:, 0] if columns == 1 else operand
        self.product()

    def product(self):
        return (self.matrix.T if self.transposed else self.matrix) @ self.operand

    def time_product(self, case, product, columns, dtype):
        self.product()

    def peakmem_product(self, case, product, columns, dtype):
        self.product()
