"""Deconvolution: recover ``g`` from ``h = C g (+ noise)`` with ``C`` and ``C^H``.

A transposed convolution computes ``C.T h``; it is not the inverse of ``C``
(``C.T C g`` is ``g`` blurred a second time, by the flipped kernel).
:func:`deconvolve` solves the inverse problem instead. The quadratic solvers
minimise

.. math::

    \\|C g - h\\|_2^2 + \\mathrm{damp}^2 \\, R(g)

with ``R(g) = ||g||^2`` (``regularizer=None``, Tikhonov),
``R(g) = ||grad g||^2 = <g, -Laplacian g>`` (``regularizer="laplacian"``) or,
with ``solver="pdhg"``, the isotropic total variation
``R(g) = sum |grad g|`` (``regularizer="tv"``); see
:mod:`tconv_sparse.solvers.regularizers`.

Every solver multiplies with one :class:`~tconv_sparse.ConvOperator` (its
plan chooses the method once, knowing it is applied many times), except that
``"direct"`` factorises ``C^H C + damp^2 R^H R`` once from the operator's
matrix. The package is split by idea: :mod:`~tconv_sparse.solvers.problem`
(argument checks), :mod:`~tconv_sparse.solvers.krylov` (LSQR, LSMR, CGLS),
:mod:`~tconv_sparse.solvers.least_squares` (the stacked damped system),
:mod:`~tconv_sparse.solvers.direct`, :mod:`~tconv_sparse.solvers.pdhg`,
:mod:`~tconv_sparse.solvers.richardson_lucy`,
:mod:`~tconv_sparse.solvers.monitor` and :mod:`~tconv_sparse.solvers.result`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from tconv_sparse.core import validation as v
from tconv_sparse.solvers import convergence, direct, least_squares, pdhg, richardson_lucy
from tconv_sparse.solvers.convergence import ConvergenceWarning
from tconv_sparse.solvers.damp_rules import choose_damps
from tconv_sparse.solvers.monitor import Monitor, Progress
from tconv_sparse.solvers.problem import SOLVERS, default_x0, parse_problem
from tconv_sparse.solvers.regularizers import REGULARIZERS
from tconv_sparse.solvers.result import DeconvolutionResult, collect

__all__ = ["deconvolve", "DeconvolutionResult", "ConvergenceWarning", "SOLVERS", "REGULARIZERS"]

#: solver name -> set-up returning ``solve(h, x0, monitor) -> (x, iterations, converged)``
_SETUP = {"lsqr": least_squares.setup, "lsmr": least_squares.setup, "cg": least_squares.setup,
          "direct": direct.setup, "richardson_lucy": richardson_lucy.setup, "pdhg": pdhg.setup}


def deconvolve(h, weight, input_shape=None, *, stride=1, padding=0, dilation=1, groups=1,
               padding_mode="zeros", solver="lsqr", damp=0.0, damp_rule="gcv", noise_std=None, regularizer=None,
               x0=None, maxiter=None, tol=None, clip=False, callback=None, progress=False):
    """Recover the input ``g`` of a convolution from its output ``h = conv(g, weight) (+ noise)``.

    Solves ``min_g ||C g - h||^2 + damp^2 R(g)`` (or, for Richardson-Lucy,
    the Poisson maximum-likelihood problem) for the convolution matrix ``C``
    of :func:`~tconv_sparse.conv_matrix` with these parameters, one sample
    at a time, sharing the operator (and any factorisation) across the batch.
    This is the inverse problem; :func:`~tconv_sparse.conv_transpose`
    computes ``C.T h`` instead, which is not ``g``.

    Parameters
    ----------
    h : array_like, shape ``(N, C_out, *out)`` or ``(C_out, *out)``
        The observed convolution output.
    weight : array_like, shape ``(C_out, C_in // groups, *kernel_size)``
        The forward convolution's weight (the same tensor
        :func:`~tconv_sparse.conv_transpose` takes).
    input_shape : int or tuple of int, optional
        Spatial shape of ``g``. ``None``: the output shape of
        ``conv_transpose(h, weight, ...)`` with the same parameters.
    stride, padding, dilation, groups, padding_mode
        The forward convolution's parameters, as in :func:`~tconv_sparse.conv`.
    solver : {"lsqr", "lsmr", "cg", "direct", "richardson_lucy", "pdhg"}
        See Notes.
    damp : float or "auto"
        Regularisation weight, ``>= 0``: the penalty is ``damp**2 * R(g)``.
        ``"auto"`` (with ``regularizer=None`` and a least-squares solver):
        chosen per sample by ``damp_rule``; ``result.damp`` reports the
        value used.
    damp_rule : {"gcv", "discrepancy", "lcurve"}
        How ``damp="auto"`` chooses: generalised cross-validation, the
        discrepancy principle ``||C g - h|| = noise_std * sqrt(m)`` (needs
        ``noise_std``) or the L-curve corner. Exact over the frequency-domain
        spectrum for circular padding with ``out * stride == n`` on every axis,
        otherwise from a Golub-Kahan bidiagonalisation of ``C`` started at
        ``h`` (about the cost of one damped LSQR solve); see
        :mod:`tconv_sparse.solvers.damp_rules`.
    noise_std : float, optional
        Standard deviation of the noise in ``h``, ``> 0``. Every solver then
        stops (``converged``) as soon as its residual (see
        :attr:`DeconvolutionResult.residuals`) is at most ``noise_std *
        sqrt(m)``, ``m`` the number of entries of one sample of ``h``: the
        discrepancy principle (Morozov), fitting the data no closer than the
        noise.
    regularizer : {None, "laplacian", "tv"}
        ``None``: ``R(g) = ||g||^2`` (Tikhonov). ``"laplacian"``:
        ``R(g) = ||grad g||^2 = <g, -Laplacian g>`` (smoothness; the normal
        equations are ``(C^H C - damp^2 Laplacian) g = C^H h``). ``"tv"``:
        ``R(g) = sum_pixels |grad g|`` (isotropic total variation, edges
        kept; ``solver="pdhg"`` only). ``grad`` is the forward difference on
        every spatial axis of each channel, Neumann boundary. No effect when
        ``damp == 0``.
    x0 : array_like, optional
        Initial guess, shaped like the result ``x`` (or one sample of it,
        shared by the batch). Default: zeros; for Richardson-Lucy the
        constant image whose blur has the total flux of ``h``.
    maxiter : int, optional
        Iteration limit, ``>= 1``; never exceeded. Default: ``min(2 n,
        1000)`` for ``n`` unknowns with ``"lsqr"``, ``"lsmr"`` and ``"cg"``
        (SciPy's ``2 n``, capped: an ill-posed problem fits the noise long
        before), 5 for ``"direct"`` (solves with the factorisation), 50 for
        ``"richardson_lucy"``, 1000 for ``"pdhg"``.
    tol : float, optional
        Stopping tolerance, ``0 <= tol < 1`` (0 runs ``maxiter`` iterations);
        default 1.5e-8 for float64 and complex128, 1.2e-6 (``10 eps``) for
        float32 and complex64. See Notes.
    clip : bool
        ``solver="richardson_lucy"`` only: set the negative entries of ``h``
        (and ``x0``) to 0 before solving, for noisy or
        background-subtracted counts. Without it, negative entries are
        refused unless they are round-off (at least ``-100 eps max|h|``,
        e.g. ``-3.6e-16`` from an FFT), which are read as 0; the same holds
        for the weight, which is never clipped. (scikit-image's
        ``richardson_lucy(..., clip=True)`` clips its *estimate* to
        ``[-1, 1]`` instead.)
    callback : callable, optional
        ``callback(iteration, x)`` after every iteration, with ``x`` a copy
        of the current estimate of the sample being solved,
        ``(C_in, *input_shape)``.
    progress : bool
        Draw a progress bar with the residual on stderr.

    Returns
    -------
    DeconvolutionResult
        ``.x`` in the layout of ``h`` (batched or not), ``.iterations``,
        ``.residuals``, ``.converged``, ``.solver`` and ``.damp``; see
        :class:`DeconvolutionResult`.

    Warns
    -----
    ConvergenceWarning
        When a sample stops without meeting its stopping test (``maxiter``
        reached with ``tol > 0``, or LSQR/LSMR's condition estimate above
        ``1e8``) or its residual history diverges; the message names the
        argument to change (``damp``, ``damp="auto"``, ``noise_std``,
        ``maxiter``). ``tol=0`` asks for exactly ``maxiter`` iterations and
        does not warn when they are reached.

    Raises
    ------
    ValueError
        Before any work, for a bad argument: ``h`` or ``x0`` whose shape does
        not match the geometry, negative or non-finite ``damp`` (or a string
        other than ``"auto"``, or ``"auto"`` with a regulariser or
        Richardson-Lucy), an unknown ``damp_rule``, ``"discrepancy"``
        without ``noise_std``, ``noise_std`` not positive and finite,
        ``maxiter < 1``, ``tol`` outside ``[0, 1)``, an unknown solver or
        regulariser, a regulariser the solver cannot use, ``clip=True`` with
        another solver than Richardson-Lucy, complex data, kernel or ``x0``,
        or negative ones beyond round-off (the message says what to do),
        with Richardson-Lucy, non-finite data. For ``"direct"``,
        before factorising, when ``C^H C`` or its factors would exceed the
        memory limit (:func:`~tconv_sparse.set_max_bytes`); the message
        states the estimated size.
    numpy.linalg.LinAlgError
        ``"direct"`` with a singular ``C^H C + damp^2 R^H R`` (use ``damp > 0``).

    Notes
    -----
    **Solvers.** With ``A = [C; damp R]`` and ``b = [h; 0]``:

    ===============  ===============================================  ===============================================
    solver           algorithm                                        stops when (``tol``)
    ===============  ===============================================  ===============================================
    lsqr             LSQR on ``A``                                    ``||r|| <= tol (||b|| + ||A|| ||x||)`` or
                                                                      ``||A^H r|| <= tol ||A|| ||r||`` (converged);
                                                                      ``cond(A) >= 1e8`` (not converged)
    lsmr             LSMR on ``A`` (monotone ``||A^H r||``)           as lsqr
    cg               CG on ``A^H A x = A^H b`` (CGLS form)            ``||A^H r|| <= tol ||A^H b||``
    direct           SuperLU of ``A^H A``, iterative refinement       as cg
    pdhg             Chambolle-Pock primal-dual, ``K = [C; R]``       relative change of primal and dual ``<= tol``
    richardson_lucy  ``x <- x C^T(h / C x) / C^T 1``                  relative change of ``x`` ``<= tol``
    ===============  ===============================================  ===============================================

    **Which to pick.** ``"lsqr"`` (the default) for any linear problem,
    damped or not; with ``damp = 0`` on an ill-posed blur, its iteration
    count is the regulariser (stop early, or use ``damp``). ``"lsmr"`` when
    you may stop early: its normal-equation residual decreases
    monotonically. ``"cg"`` is the cheapest per iteration, as accurate on
    well-conditioned problems. ``"direct"`` for small and moderate problems
    (up to ~1e5 unknowns in 2-D) solved for many samples or to full
    accuracy: one factorisation, then each sample costs two triangular
    solves. ``"richardson_lucy"`` for non-negative (photon-count) data and
    kernels: positive estimates, regularised by ``maxiter``. ``"pdhg"`` for
    ``regularizer="tv"`` (piecewise-constant images, sharp edges).

    **Richardson-Lucy** here is the EM algorithm for Poisson data
    (Shepp & Vardi), dividing by ``C^T 1`` so that ``g`` is a fixed point of
    every boundary and padding mode (``g`` with ``C^T 1 = 0`` pixels kept
    at ``x0``). ``skimage.restoration.richardson_lucy(image, psf, num_iter,
    clip=False)`` omits the division (it assumes ``C^T 1 = 1``, true for a
    unit-sum PSF away from the border) and uses ``x0 = 0.5``, true
    convolution and zero ``"same"`` padding; for an odd-sized PSF its
    iterates equal ``deconvolve(image[None], np.flip(psf)[None, None],
    padding=[((k - 1) // 2, (k - 1) // 2) for k in psf.shape],
    solver="richardson_lucy", x0=np.full((1, *image.shape), 0.5),
    maxiter=num_iter, tol=0)`` whenever ``C^T 1 = 1`` wherever the data
    reach, e.g. on an image with a dark margin of ``k - 1`` pixels. (For an
    even-sized PSF scikit-image's mirrored step is not the adjoint of its
    blur.)

    **The transpose is not the inverse.** ``conv_transpose(h)`` is
    ``C^T C g``: the image blurred a second time (by the flipped kernel),
    with the border folded back by the padding mode. For a unit-sum 5x5
    Gaussian (sigma 1) on a smooth 32x32 image, ``||C^T h - g|| / ||g||`` is
    30 % with zero padding and 26 % with reflect padding, where
    ``deconvolve(h, weight, padding=2, solver="direct")`` recovers ``g`` to
    1e-10 (``tests/test_deconvolution.py``); on the blurred, noisy camera
    image of ``examples/plot_deconvolution.py`` ``C^T h`` loses 3.6 dB PSNR
    against the data, where the gradient penalty, TV and Richardson-Lucy
    gain 2.4 to 2.9 dB.

    References
    ----------
    C. C. Paige, M. A. Saunders, LSQR, ACM TOMS 8 (1982). D. C.-L. Fong,
    M. A. Saunders, LSMR, SIAM J. Sci. Comput. 33 (2011). A. Chambolle,
    T. Pock, A first-order primal-dual algorithm for convex problems with
    applications to imaging, J. Math. Imaging Vis. 40 (2011). L. A. Shepp,
    Y. Vardi, Maximum likelihood reconstruction for emission tomography,
    IEEE TMI 1 (1982). ``damp="auto"``: G. H. Golub, M. Heath, G. Wahba,
    Technometrics 21 (1979) (GCV); P. C. Hansen, D. P. O'Leary, SIAM J. Sci.
    Comput. 14 (1993) (L-curve); J. Chung, J. G. Nagy, D. P. O'Leary, ETNA 28
    (2008) (hybrid LSQR).

    Examples
    --------
    A blur, the transposed convolution (not the input) and the deconvolution:

    >>> import numpy as np, tconv_sparse as ts
    >>> w = np.array([[[0.25, 0.5, 0.25]]])
    >>> g = np.array([[0.0, 1.0, 4.0, 2.0, 0.0, 3.0]])
    >>> h = ts.conv(g, w, padding=1)
    >>> bool(np.allclose(ts.conv_transpose(h, w, padding=1), g))
    False
    >>> result = ts.deconvolve(h, w, padding=1)
    >>> bool(np.allclose(result.x, g)), result.converged, result.solver
    (True, True, 'lsqr')

    Noisy data and a strided model (2x downsampling), with damping; a batch
    of two samples shares one factorisation:

    >>> rng = np.random.default_rng(0)
    >>> g = np.sin(np.linspace(0, 3, 2 * 32)).reshape(2, 1, 32)
    >>> h = ts.conv(g, w, stride=2, padding=1) + 1e-3 * rng.standard_normal((2, 1, 16))
    >>> result = ts.deconvolve(h, w, 32, stride=2, padding=1, solver="direct", damp=0.05,
    ...                        regularizer="laplacian")
    >>> result.x.shape, result.converged.tolist()
    ((2, 1, 32), [True, True])
    >>> bool(np.abs(result.x - g).max() < 0.05)
    True

    ``damp="auto"`` chooses each sample's ``damp``; with the discrepancy rule
    the residual norm is the noise level ``noise_std * sqrt(m)``:

    >>> result = ts.deconvolve(h, w, 32, stride=2, padding=1, damp="auto", damp_rule="discrepancy",
    ...                        noise_std=1e-3)
    >>> result.damp.round(4), (np.linalg.norm(ts.conv(result.x, w, stride=2, padding=1) - h, axis=(1, 2))
    ...                        / (1e-3 * np.sqrt(16))).round(3)
    (array([0.027 , 0.0257]), array([1., 1.]))

    Richardson-Lucy keeps the estimate non-negative; ``callback`` sees every
    iterate (``tol=0``: exactly ``maxiter`` iterations, the regularisation):

    >>> history = []
    >>> result = ts.deconvolve(ts.conv(np.abs(g[0]), w, padding=1), w, padding=1,
    ...                        solver="richardson_lucy", maxiter=20, tol=0,
    ...                        callback=lambda k, x: history.append(float(x.min())))
    >>> result.iterations, len(result.residuals), min(history) >= 0
    (20, 21, True)
    """
    conv_kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                   "padding_mode": padding_mode}
    if callback is not None and not callable(callback):
        raise v.ParameterTypeError(f"callback must be callable or None, got {callback!r}")
    if not isinstance(progress, (bool, np.bool_)):
        raise v.ParameterTypeError(f"progress must be True or False, got {progress!r}")
    problem = parse_problem(h, weight, input_shape, conv_kwargs, solver, damp, regularizer, x0, maxiter, tol,
                            noise_std, clip, damp_rule)
    damps, setups = choose_damps(problem), {}
    starts = default_x0(problem) if problem.x0 is None else problem.x0
    batch = problem.h.shape[0]
    bar = Progress(problem.solver, batch, problem.maxiter) if progress else None
    samples = []
    for sample in range(batch):
        if damps[sample] not in setups:   # one set-up (factorisation) per distinct damp
            setups[damps[sample]] = _SETUP[problem.solver](replace(problem, damp=damps[sample]))
        monitor = Monitor(sample, problem.sample_shape, callback, bar, problem.discrepancy)
        x, count, done = setups[damps[sample]](problem.h[sample], starts[sample], monitor)
        monitor.finish()
        samples.append((x.reshape(problem.sample_shape), count, np.array(monitor.residuals), done))
    if bar is not None:
        bar.close()
    convergence.check(problem.solver, problem.maxiter, problem.tol, samples)
    return collect(samples, problem.batched, problem.solver, damps)
