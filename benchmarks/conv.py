"""``conv_transpose`` and ``conv``: every method and the PyTorch peer on the shared grid."""

from tconv_sparse.bench import cases, runners


class _Layer:
    """One case, method (or ``"torch"``) and dtype of :attr:`direction`.

    ``setup`` builds the data from the grid's fixed seed, makes the
    contender and calls it once (Numba compiles there, never in a timed
    call). A method that refuses the case (``ValueError``) or a peer that is
    not installed is skipped by raising ``NotImplementedError``.
    """

    direction = ""
    param_names = ["case", "method", "dtype"]
    timeout = 300

    def setup(self, case, method, dtype):
        self.case = cases.CASES[case]
        self.data, self.weight = self.case.data(self.direction, dtype)
        runners.match_threads()
        try:
            self.run = runners.contenders(self.direction)[method](self.direction, self.case, self.data,
                                                                   self.weight)
            self.run()
        except (runners.Unavailable, ValueError) as error:
            raise NotImplementedError(str(error)) from None

    def time_call(self, case, method, dtype):
        self.run()

    def peakmem_call(self, case, method, dtype):
        self.run()

    def track_max_relative_error(self, case, method, dtype):
        """``max|result - reference| / max|reference|`` against ``C @ x`` / ``C.T @ y`` in float64."""
        expected, _ = runners.reference(self.direction, self.case, self.data, self.weight)
        return runners.relative_error(self.run(), expected)

    track_max_relative_error.unit = "relative error"


def _params(direction):
    return [[case.name for case in cases.CONV_CASES], list(runners.contenders(direction)),
            list(cases.DTYPES)]


class ConvTranspose(_Layer):
    """``tconv_sparse.conv_transpose(y, w, method=...)`` and ``torch.nn.functional.conv_transpose{1,2,3}d``."""

    direction = "conv_transpose"
    params = _params(direction)


class Conv(_Layer):
    """``tconv_sparse.conv(x, w, method=...)`` and ``torch.nn.functional.conv{1,2,3}d``."""

    direction = "conv"
    params = _params(direction)
