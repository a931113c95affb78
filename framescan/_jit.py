"""The one decorator factory every Numba kernel in framescan goes through.

Options and why:

- ``cache=True``: compiled machine code is written next to the module (or to
  ``NUMBA_CACHE_DIR``) so JIT cost is paid once per machine, not on every CLI run.
- ``nogil=True``: kernels release the GIL so the decode thread (PyAV), the
  preprocessing step and ONNX Runtime overlap on real cores.
- ``fastmath=False`` by default: kernels have NumPy references and are compared
  against them; reordering float ops would widen the tolerances for little gain.
- ``parallel=False`` by default: on 2-4 core devices a parallel kernel competes with
  FFmpeg and ONNX Runtime threads (oversubscription costs 20-30%); frames are the unit
  of parallelism instead.

Set ``NUMBA_DISABLE_JIT=1`` to run kernel bodies as plain Python (coverage, debugging).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from typing import Any, TypeVar

import numba

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_cache_checked = False


def _check_cache_dir() -> None:
    """Warn once when compiled kernels cannot be cached (JIT on every run)."""
    global _cache_checked
    if _cache_checked:
        return
    _cache_checked = True
    target = os.environ.get("NUMBA_CACHE_DIR") or os.path.join(os.path.dirname(__file__), "__pycache__")
    try:
        os.makedirs(target, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target):
            pass
    except OSError as ex:
        log.warning(
            "Numba cache directory %s is not writable (%s): kernels will be compiled on every run; "
            "set NUMBA_CACHE_DIR to a writable directory",
            target,
            ex,
        )


def kernel(signature: Any = None, **options: Any) -> Callable[[F], F]:
    """Compile ``func`` with framescan's kernel options (see module docstring).

    ``signature`` (optional) compiles eagerly for those types; ``options`` override the
    defaults and must be justified by a comment at the call site.
    """
    _check_cache_dir()
    opts = {"cache": True, "nogil": True, "fastmath": False, "parallel": False, "nopython": True}
    opts.update(options)

    def wrap(func: F) -> F:
        if signature is None:
            return numba.jit(**opts)(func)  # type: ignore[return-value]
        return numba.jit(signature, **opts)(func)  # type: ignore[return-value]

    return wrap
