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

``numba_start`` wraps a process's first kernel call: Numba then fills its compiler's tables
(imports its NumPy implementations: 0.5-1 s), and one of them probes SciPy's BLAS, which imports
``scipy.linalg`` (0.25-0.35 s here) for functions framescan's kernels never use.

``stale_kernels`` tells, before a kernel's first call, whether that call will compile it (no
code in the on-disk cache for its current source and this Numba version: the first run after
an install or an upgrade), so a front end can say why the first scan is slow.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import pickle
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numba

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

_cache_checked = False
_started = False
_start_lock = threading.Lock()
#: The module Numba's BLAS probe imports (``numba.np.linalg.ensure_blas``, called once as
#: ``numba.np.arraymath`` is imported; linear algebra inside a kernel imports it again when compiled).
_BLAS_PROBE = "scipy.linalg.cython_blas"
#: Every kernel made by ``kernel`` except the inlined ones (compiled into their callers, never cached alone).
_KERNELS: list[Any] = []


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
        disp = numba.jit(**opts)(func) if signature is None else numba.jit(signature, **opts)(func)
        if opts.get("inline") != "always":
            _KERNELS.append(disp)
        return disp  # type: ignore[no-any-return]

    return wrap


def stale_kernels(module: str) -> list[str]:
    """Names of the kernels defined in ``module`` (e.g. ``"framescan.preprocess"``) that their first
    call in this process will compile, because Numba's on-disk cache holds no code for them from
    their current source and this Numba version. Numba's own index check decides (the ``.nbi``
    file exists, was written by this Numba version and carries the source file's stamp); a Numba
    whose cache works differently, or ``NUMBA_DISABLE_JIT=1``, gives an empty list.
    """
    importlib.import_module(module)  # its kernels register as it is imported (framescan imports lazily)
    stale = []
    for disp in _KERNELS:
        if getattr(disp, "py_func", disp).__module__ != module:
            continue
        try:
            index = disp._cache._cache_file._load_index()
        except AttributeError:  # not a caching dispatcher (JIT disabled) or another cache layout
            continue
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):  # an unreadable index: Numba recompiles
            index = {}
        if not index:
            stale.append(disp.py_func.__qualname__)
    return stale


@contextlib.contextmanager
def numba_start() -> Iterator[None]:
    """Around a kernel call: the first in the process runs with SciPy's BLAS hidden from Numba's
    import-time probe, when neither SciPy's linear algebra nor Numba's NumPy implementations are
    imported yet. The probe then finds no BLAS (``numba.np.arraymath._HAVE_BLAS``), which only
    makes Numba's ``np.trapezoid``-style inner products use a plain loop; ``np.dot`` and friends
    in kernels still import SciPy when compiled. Saves 0.25-0.35 s of every scan process's start.
    Later calls: nothing but a flag check."""
    global _started
    if _started:
        yield
        return
    with _start_lock:
        hide = _BLAS_PROBE not in sys.modules and "scipy.linalg" not in sys.modules
        hide = hide and "numba.np.arraymath" not in sys.modules
        if hide:
            sys.modules[_BLAS_PROBE] = None  # type: ignore[assignment]  # "import" raises ImportError
        try:
            yield
        finally:
            if hide and sys.modules.get(_BLAS_PROBE, 0) is None:
                del sys.modules[_BLAS_PROBE]
            _started = True
