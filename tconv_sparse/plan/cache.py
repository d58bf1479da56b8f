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
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from tconv_sparse.core.geometry import Geometry
from tconv_sparse.plan import Plan

__all__ = ["MAX_PLANS", "MAX_WEIGHT_BYTES", "function_plan", "clear"]

#: plans and geometries kept (least recently used dropped first)
MAX_PLANS = 64
#: largest weight, in bytes, that enters a plan key by value
MAX_WEIGHT_BYTES = 1 << 16

_lock = threading.Lock()
_geometries: OrderedDict = OrderedDict()
_plans: OrderedDict = OrderedDict()


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


def clear() -> None:
    """Empty both caches."""
    with _lock:
        _geometries.clear()
        _plans.clear()
