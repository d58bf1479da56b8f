"""Run a piece of Python in a child process under a memory limit.

Reproductions of memory defects must fail cleanly, never take the machine
down: the child gets an address-space limit (``RLIMIT_AS``), so an allocation
beyond it raises ``MemoryError`` in the child instead of waking the OOM
killer, and a crash (abort, segfault) fails the test instead of killing pytest.
The child imports the package from the repository root (the tree under test).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: address space of the child: the interpreter, NumPy, SciPy, Numba and LLVM fit in well under it
ADDRESS_SPACE = 4 * 10**9


def run_limited(code: str, *, address_space: int = ADDRESS_SPACE, timeout: float = 900,
                env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` with ``python -c`` in a child limited to ``address_space`` bytes."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "2",
                 "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
                 **(env or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit, env=child_env)


def run_json(code: str, **kwargs):
    """Run ``code`` (which prints one JSON document as its last line) and return the document.

    Fails with the child's output when the child does not exit cleanly.
    """
    result = run_limited(code, **kwargs)
    assert result.returncode == 0, (
        f"child exited with {result.returncode}\nstdout:\n{result.stdout[-4000:]}\n"
        f"stderr:\n{result.stderr[-4000:]}"
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
