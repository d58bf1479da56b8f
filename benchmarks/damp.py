"""``ts.deconvolve(..., damp="auto")`` against one damped solve of the same problem (issue 15)."""

from tconv_sparse.bench import cases


class DeblurDampAuto:
    """``deconvolve(damp="auto", damp_rule=rule)`` on a 64x64 single-channel 7x7 blur, noise 0.01.

    ``padding_mode="circular"`` takes the exact-spectrum route, ``"zeros"``
    the Golub-Kahan one. ``time_damped_solve`` is one solve at the ``damp``
    the rule chose: the cost ``damp="auto"`` is compared with (at most about
    5x).
    """

    params = [["gcv", "discrepancy", "lcurve"], ["circular", "zeros"]]
    param_names = ["rule", "padding_mode"]
    timeout = 300

    def setup(self, rule, padding_mode):
        import numpy as np

        import tconv_sparse as ts

        rng = np.random.default_rng(cases.SEED)
        self.weight = np.full((1, 1, 7, 7), 1 / 49)
        self.kwargs = {"padding": "same", "padding_mode": padding_mode}
        truth = rng.random((1, 64, 64))
        self.h = ts.conv(truth, self.weight, **self.kwargs) + 0.01 * rng.standard_normal((1, 64, 64))
        self.deconvolve = ts.deconvolve
        self.damp = self.solve_auto(rule).damp

    def solve_auto(self, rule):
        return self.deconvolve(self.h, self.weight, damp="auto", damp_rule=rule, noise_std=0.01, **self.kwargs)

    def time_damp_auto(self, rule, padding_mode):
        self.solve_auto(rule)

    def time_damped_solve(self, rule, padding_mode):
        self.deconvolve(self.h, self.weight, damp=self.damp, noise_std=0.01, **self.kwargs)

    def track_damp(self, rule, padding_mode):
        """The ``damp`` the rule chose."""
        return self.damp

    track_damp.unit = "damp"
