"""Start-up: the caches that spare later processes work (verified model hashes, ONNX Runtime's
optimised graph) are used when they match, rebuilt when they do not, and never trusted when
damaged; the kernel loads at its first frame (not in ``Scanner()``) without SciPy; the command
line's parent process leaves the model runtime to its worker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from tolerances import KERNEL_ATOL

from framescan import models as models_mod
from framescan.cache import CACHE_ENV, FileStamp, cache_dir
from framescan.infer import OnnxModel, optimized_entry
from framescan.models import DEFAULT_MODEL, file_sha256, load_manifest

HEAVY = ("numpy", "numba", "onnxruntime", "av")


@pytest.fixture()
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache directory and an empty in-process hash cache."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(models_mod, "_sha_cache", {})
    return tmp_path / "cache"


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "framescan"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "own"))
    assert cache_dir() == tmp_path / "own"


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "hashes").glob("*.json"))


def test_a_verified_hash_is_kept_on_disk_for_the_next_process(own_cache: Path, tmp_path: Path) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 1000)
    real = file_sha256(f)
    (entry,) = _entries(own_cache)
    assert json.loads(entry.read_text())["stamp"] == FileStamp.of(f).to_dict()
    # A new process (an empty in-process cache) takes the entry's word while the stamp matches:
    # a made-up digest under the right stamp is what comes back (the file is not read again).
    made_up = "ab" * 32
    entry.write_text(json.dumps({"stamp": FileStamp.of(f).to_dict(), "sha256": made_up}))
    models_mod._sha_cache.clear()
    assert file_sha256(f) == made_up
    # The file rewritten (new size and mtime): the entry no longer matches and is replaced.
    f.write_bytes(b"other weights" * 1000)
    os.utime(f, ns=(1, 1))
    models_mod._sha_cache.clear()
    assert file_sha256(f) != real
    assert json.loads(entry.read_text())["stamp"] == FileStamp.of(f).to_dict()


@pytest.mark.parametrize(
    "damage",
    [b"\x00\xffnot json", b"[]", b'{"stamp": 1}', None],
    ids=["garbage", "not-an-object", "no-digest", "not-hex"],
)
def test_a_damaged_hash_entry_is_ignored_and_rewritten(own_cache: Path, tmp_path: Path, damage: bytes | None) -> None:
    f = tmp_path / "model.bin"
    f.write_bytes(b"weights" * 1000)
    real = file_sha256(f)
    (entry,) = _entries(own_cache)
    if damage is None:  # the right stamp, a digest that is not one
        damage = json.dumps({"stamp": FileStamp.of(f).to_dict(), "sha256": "zz" * 32}).encode()
    entry.write_bytes(damage)
    models_mod._sha_cache.clear()
    assert file_sha256(f) == real
    assert json.loads(entry.read_text())["sha256"] == real


def test_a_wrong_model_file_fails_verification_through_the_cache(own_cache: Path, tmp_path: Path) -> None:
    """The cache keeps a digest per file version: a model file replaced by another is hashed
    again and rejected, whatever was cached for the old one."""
    from framescan.errors import ModelError

    m = load_manifest(DEFAULT_MODEL)
    copy = tmp_path / "model.onnx"
    copy.write_bytes(m.resolve_file().read_bytes())
    fake = models_mod.ModelManifest(**{**m.__dict__, "file": {"path": str(copy)}})
    assert fake.verified_file() == copy
    copy.write_bytes(copy.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelError, match="sha256"):
        fake.verified_file()


@pytest.fixture(scope="module")
def random_batch() -> np.ndarray:
    m = load_manifest(DEFAULT_MODEL)
    shape = m.input.shape_for(96, 160)
    return np.random.default_rng(3).random((2, *shape), dtype=np.float32)


def test_the_optimised_graph_is_saved_once_and_gives_the_same_outputs(
    own_cache: Path, random_batch: np.ndarray
) -> None:
    m = load_manifest(DEFAULT_MODEL)
    first = OnnxModel(m, threads=1)
    assert not first.optimized_from_cache
    entry = optimized_entry(__import__("onnxruntime"), m)
    assert entry.is_file() and entry.with_suffix(".json").is_file()
    assert not [p for p in entry.parent.iterdir() if p.name.endswith(".tmp")]
    second = OnnxModel(m, threads=1)
    assert second.optimized_from_cache
    assert second.path == first.path  # reports name the model file, not the cache entry
    np.testing.assert_array_equal(second.raw(random_batch), first.raw(random_batch))


@pytest.mark.parametrize("part", ["graph", "record"])
def test_a_damaged_optimised_graph_is_rebuilt(own_cache: Path, random_batch: np.ndarray, part: str) -> None:
    m = load_manifest(DEFAULT_MODEL)
    want = OnnxModel(m, threads=1).raw(random_batch)
    entry = optimized_entry(__import__("onnxruntime"), m)
    if part == "graph":  # bytes flipped in place, size kept (a stale stamp is not relied on)
        data = bytearray(entry.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\x5a" * 64
        entry.write_bytes(bytes(data))
    else:
        entry.with_suffix(".json").write_text("{not json")
    again = OnnxModel(m, threads=1)
    assert not again.optimized_from_cache  # not trusted: optimised again from the model file
    np.testing.assert_array_equal(again.raw(random_batch), want)
    assert OnnxModel(m, threads=1).optimized_from_cache  # and the rebuilt entry is good


def test_an_unwritable_cache_only_costs_speed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    monkeypatch.setattr(models_mod, "_sha_cache", {})
    model = OnnxModel(load_manifest(DEFAULT_MODEL), threads=1)
    assert not model.optimized_from_cache


def _python(code: str, tmp_path: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


@pytest.mark.integration
def test_cli_parent_stays_light_and_the_kernel_loads_at_its_first_frame_without_scipy(
    tmp_path: Path, make_clip: Callable[..., Path]
) -> None:
    """One fresh interpreter: ``framescan scan`` (isolated) leaves NumPy, Numba, ONNX Runtime and
    PyAV to its worker; then, in the same process, ``Scanner()`` loads no kernel, and the first
    frame loads it without importing SciPy, with the reference's result."""
    clip = make_clip(width=96, height=160, seconds=1, fps=5)
    code = f"""
import importlib.util, sys
from framescan.cli.main import main
rc = main(["scan", {str(clip)!r}, "-q"])
print(rc, *sorted(m for m in {HEAVY!r} if m in sys.modules))

import numpy as np
import framescan
from framescan import preprocess
from framescan.frames import YuvFrame

s = framescan.Scanner()
assert not preprocess._preprocess_kernel.overloads, "Scanner() loaded the kernel"
rng = np.random.default_rng(1)
f = YuvFrame(rng.integers(0, 256, (37, 23), np.uint8), rng.integers(0, 256, (19, 12), np.uint8),
             rng.integers(0, 256, (19, 12), np.uint8), 0, 0.0)
spec = s.models[0].manifest.input
out = np.empty(spec.shape_for(*f.upright_size), np.float32)
preprocess.preprocess_into(f, spec, out)
ref, _ = preprocess.preprocess_reference(f, spec)
print(float(np.abs(out - ref).max()), "scipy.linalg" in sys.modules)
if importlib.util.find_spec("scipy") is not None:
    import scipy.linalg.cython_blas  # still importable by anyone after the kernel's first call
"""
    parent, kernel = _python(code, tmp_path).splitlines()
    assert parent.split() == ["0"], f"exit code and heavy modules in the parent: {parent}"
    err, scipy_loaded = kernel.split()
    assert float(err) <= KERNEL_ATOL
    assert scipy_loaded == "False"
