"""Cold start of the main paths: first call in a fresh process on a fresh, empty Numba cache.

The same rows as ``tconv-sparse bench --cold`` (:mod:`tconv_sparse.bench.cold`):
each ``track_`` runs its row in fresh subprocesses and returns seconds, so the
history shows compile time as the kernels change.
"""

from tconv_sparse.bench import cold

#: the main paths: ``(direction, method)``
_PATHS = ["conv_transpose:gather", "conv_transpose:im2col", "conv_transpose:sparse", "conv:direct",
          "conv:im2col"]


class ColdStart:
    """``import tconv_sparse`` plus the first call of one method, float32, empty cache."""

    params = [_PATHS]
    param_names = ["path"]
    timeout = 900

    def setup_cache(self):
        rows = {}
        for path in _PATHS:
            direction, method = path.split(":")
            rows[path] = cold.cold_row(direction, method, "float32")
        return rows

    def track_cold_first_call(self, rows, path):
        """Seconds of the first call from an empty cache (compile included)."""
        return rows[path].cold_first_s

    track_cold_first_call.unit = "seconds"

    def track_compile(self, rows, path):
        """Cold first call minus the first call on the cache it filled."""
        return rows[path].compile_s

    track_compile.unit = "seconds"

    def track_import_plus_first_call(self, rows, path):
        """What a user meets: ``import tconv_sparse`` plus the cold first call."""
        return rows[path].start_s

    track_import_plus_first_call.unit = "seconds"
