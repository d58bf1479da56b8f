"""The plan cache behind :func:`~tconv_sparse.conv` and :func:`~tconv_sparse.conv_transpose`.

A loop of same-geometry calls validates once. Two small LRU caches, each
guarded by a lock (calls from several threads are safe):

* geometries, keyed by the direction, the weight's shape, the data's
  spatial shape and every geometry argument by its ``repr`` and its type (so
  ``2``, ``2.0``, ``True`` and ``np.int64(2)`` are different keys, and an
  argument that was an error once is an error every time: only arguments
  that validated are stored);
* plans, keyed by the geometry key, the method, and the weight itself: its
  dtype and its bytes. A weight enters by value, never by identity, so
  changing a weight array in place between calls can never reuse a stale
  plan. Weights above :data:`MAX_WEIGHT_BYTES` are not hashed (hashing would
  cost more than it saves); such calls reuse the cached geometry and build a
  fresh plan.

A valid geometry argument has at most three entries per axis level, so its
``repr`` is never abbreviated.

On top of both, repeated calls skip even those lookups: a call on NumPy
arrays (its bias too), with a weight small enough to hash and geometry
arguments of the plainest types (``int``, ``str``, ``None``, tuples of
``int``) has an exact key (:func:`call_key`) under which the call's result
dtype and checked runner are kept (:func:`remember_call`,
:func:`repeated_call`). Its validation is a function of that key alone (the
data and the bias enter by shape and dtype, the weight by value, the thread
count and memory limit as they are at the call), so a call found there would
pass every check again; among these types no two distinct arguments compare
equal (``2.0``, ``True`` and ``np.int64(2)`` never get such a key). A tiny
call then costs the key and the kernel.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from tconv_sparse.core.config import call_settings
from tconv_sparse.core.geometry import Geometry
from tconv_sparse.plan import Plan

__all__ = ["MAX_PLANS", "MAX_WEIGHT_BYTES", "function_plan", "call_key", "repeated_call", "remember_call",
           "clear"]

#: plans and geometries kept (least recently used dropped first)
MAX_PLANS = 64
#: largest weight, in bytes, that enters a plan key by value
MAX_WEIGHT_BYTES = 1 << 16

_lock = threading.Lock()
_geometries: OrderedDict = OrderedDict()
_plans: OrderedDict = OrderedDict()
_calls: dict = {}  # call key -> replay(data, bias); read without the lock, oldest dropped first
#: the exact types of a geometry argument in a :func:`call_key` (besides tuples of ``int``)
_PLAIN = frozenset({int, str, type(None)})


def _arguments_key(kwargs: dict) -> tuple:
    """The geometry arguments as a key: their ``repr`` (which tells ``2`` from ``2.0``,
    ``True`` and ``np.int64(2)``, and lists from tuples) and their types."""
    values = tuple(kwargs.values())
    return repr(values), tuple(map(type, values))


def _remember(cache: OrderedDict, key, value):
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > MAX_PLANS:
            cache.popitem(last=False)
    return value


def _get(cache: OrderedDict, key):
    with _lock:
        value = cache.get(key)
        if value is not None:
            cache.move_to_end(key)
        return value


def _geometry(transposed: bool, weight_shape, spatial, kwargs: dict, key) -> Geometry:
    geometry = _get(_geometries, key)
    if geometry is None:
        build = Geometry.transposed if transposed else Geometry.forward
        geometry = _remember(_geometries, key, build(weight_shape, spatial, **kwargs))
    return geometry


def function_plan(transposed: bool, weight, spatial: tuple, method: str, kwargs: dict) -> Plan:
    """The plan for one call of ``conv`` (``transposed=False``) or ``conv_transpose``.

    ``kwargs`` are the geometry arguments exactly as the caller gave them; they
    are validated by :class:`Geometry` unless an identical call already was.
    """
    key = (transposed, weight.shape, spatial, *_arguments_key(kwargs))
    plan_key = None
    if weight.nbytes <= MAX_WEIGHT_BYTES:  # the weight enters the key by value
        plan_key = (key, method, weight.dtype.str, weight.tobytes())
        plan = _get(_plans, plan_key)
        if plan is not None:  # a repeated call: this one lookup
            return plan
    geometry = _geometry(transposed, weight.shape, spatial, kwargs, key)
    forward, transpose = ("auto", method) if transposed else (method, "auto")
    plan = Plan(geometry, weight, forward=forward, transpose=transpose)
    return plan if plan_key is None else _remember(_plans, plan_key, plan)


def call_key(transposed: bool, data, weight, bias, method, kwargs: dict) -> tuple | None:
    """The exact key of a call of ``conv``/``conv_transpose``, or ``None`` when the call cannot
    be repeated from :func:`repeated_call` (arrays of other types, a weight above
    :data:`MAX_WEIGHT_BYTES`, an argument of another type). A bias enters by shape and dtype,
    all its checks depend on."""
    if type(data) is not np.ndarray or type(weight) is not np.ndarray or type(method) is not str \
            or weight.nbytes > MAX_WEIGHT_BYTES or (bias is not None and type(bias) is not np.ndarray):
        return None
    values = tuple(kwargs.values())
    for value in values:
        kind = type(value)
        if kind is tuple:
            for item in value:
                if type(item) is not int:
                    return None
        elif kind not in _PLAIN:
            return None
    return (transposed, method, values, data.shape, data.dtype, weight.shape, weight.dtype, weight.tobytes(),
            None if bias is None else (bias.shape, bias.dtype), call_settings())


def repeated_call(key):
    """``replay(data, bias)``, the call under ``key`` (:func:`call_key`) made again on ``data``
    and ``bias``, or ``None`` if no call with that key has completed."""
    return None if key is None else _calls.get(key)


def remember_call(key, plan: Plan, data: np.ndarray, batched: bool) -> None:
    """Keep the call that just completed under ``key`` (``None``: nothing is kept): ``plan``
    applied to ``data`` in the direction of the key, then the bias added as
    :meth:`~tconv_sparse.plan.Plan.apply` adds it."""
    if key is None:
        return
    dtype = plan.result_dtype(data.dtype)
    run = plan.runner(data.dtype, data.shape[0] if batched else 1, transposed=key[0])  # apply's own runner
    per_channel = (-1,) + (1,) * (data.ndim - (2 if batched else 1))

    def replay(data, bias):
        result = run(np.ascontiguousarray(data if batched else data[None], dtype=dtype))
        if bias is not None:
            result += bias.astype(dtype, copy=False).reshape(per_channel)
        return result if batched else result[0]

    with _lock:
        while len(_calls) >= MAX_PLANS:
            del _calls[next(iter(_calls))]
        _calls[key] = replay


def clear() -> None:
    """Empty the caches."""
    with _lock:
        _geometries.clear()
        _plans.clear()
        _calls.clear()
