"""A short, reproducible fuzz run: mutated clips through the in-process ``Scanner`` and ``probe``.

The embedding contract: whatever bytes come in, ``Scanner.scan`` returns a report or raises a
``FramescanError`` subclass, and ``probe`` does the same. The seeds are the harness' own (small
``write_clip`` clips in every container/codec plus a few hostile-corpus files); the mutator is the
pure-Python one of ``fuzz/fuzz_scan.py`` (no atheris needed) driven by a fixed RNG, so a failure
here reproduces exactly. Warnings are errors (pytest.ini) and ERROR logs fail (conftest), as in
the rest of the suite. The long, coverage-guided run is ``python fuzz/fuzz_scan.py``.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_harness import load_harness

from framescan.errors import FramescanError
from framescan.pipeline import Scanner
from framescan.probe import probe
from framescan.report import Report

ROOT = Path(__file__).resolve().parents[1]
#: Mutated inputs per run, and the RNG seed they come from.
INPUTS = 200
RNG_SEED = 20240611


_load_harness = load_harness


harness = _load_harness()


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    paths = harness.make_seeds(tmp_path_factory.mktemp("fuzz-seeds"), smoke=True)
    return {p.name: p.read_bytes() for p in paths}


@pytest.fixture(scope="module")
def fuzz_scanner(scanner_for: Callable[..., Scanner]) -> Scanner:
    return scanner_for(**harness.SCANNER_OPTIONS, limits=harness.fuzz_limits())


def test_seeds_scan_cleanly(seeds: dict[str, bytes], fuzz_scanner: Scanner) -> None:
    """The seeds themselves are valid clips (so the mutants start from real structure)."""
    assert len(seeds) >= 10
    for name, data in seeds.items():
        report = fuzz_scanner.scan(data, name=name)
        assert report.status in ("complete", "partial"), name


def test_mutated_inputs_raise_only_framescan_errors(
    seeds: dict[str, bytes], fuzz_scanner: Scanner, tmp_path: Path
) -> None:
    names = sorted(seeds)
    blobs = [seeds[n] for n in names]
    inputs = harness.mutated_inputs(blobs, INPUTS, RNG_SEED)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    t0 = time.monotonic()
    for i, data in enumerate(inputs):
        for stage in ("scan", "probe"):
            try:
                if stage == "scan":
                    result = fuzz_scanner.scan(data, name=f"mutant-{i}")
                    assert isinstance(result, Report)
                    outcomes[harness.outcome_of_report(result)] += 1
                else:
                    probe(data)
                    outcomes["probe-ok"] += 1
            except FramescanError as ex:
                outcomes[ex.code.value] += 1
            except Exception as ex:  # the contract broken: keep the input for the failure message
                saved = tmp_path / f"mutant-{i:03d}.bin"
                saved.write_bytes(data)
                tb = "".join(traceback.format_exception(type(ex), ex, ex.__traceback__)[-3:])
                failures.append(
                    f"input {i} (mutant of {names[i % len(names)]}, saved as {saved}) {stage}: "
                    f"{type(ex).__module__}.{type(ex).__qualname__}: {ex}\n{tb}"
                )
    seconds = time.monotonic() - t0
    print(f"\nfuzz smoke: {INPUTS} inputs in {seconds:.1f} s; outcomes {dict(outcomes.most_common())}")
    assert not failures, f"{len(failures)} input(s) broke the contract:\n" + "\n".join(failures)
    # the mutants reach past the container parser: real results and several error kinds
    assert outcomes["OK"] + outcomes["PARTIAL"] >= INPUTS // 10, outcomes
    assert len(set(outcomes) - {"OK", "PARTIAL", "probe-ok"}) >= 3, outcomes


def test_mutator_is_reproducible(seeds: dict[str, bytes]) -> None:
    blobs = [seeds[n] for n in sorted(seeds)]
    a = harness.mutated_inputs(blobs, 20, RNG_SEED)
    assert a == harness.mutated_inputs(blobs, 20, RNG_SEED)
    assert a != harness.mutated_inputs(blobs, 20, RNG_SEED + 1)
    assert all(0 < len(x) <= harness.MAX_LEN for x in a)


#: Reproducers of fixed fuzz findings (fuzz/FINDINGS.md): regression tests.
FINDINGS_DIR = ROOT / "fuzz" / "findings"
FIXED_FINDINGS = {
    "bottomup_yuv420p.nut": "F1: a bottom-up plane (negative line_size) is read upside-up",
    "rawvideo_bgr4.nut": "F2: a pixel format FFmpeg cannot convert is UNSUPPORTED_FORMAT",
}


@pytest.mark.parametrize("name", list(FIXED_FINDINGS))
def test_finding_reproducers_raise_only_framescan_errors(name: str, fuzz_scanner: Scanner) -> None:
    data = (FINDINGS_DIR / name).read_bytes()
    with contextlib.suppress(FramescanError):
        fuzz_scanner.scan(data, name=name)
    with contextlib.suppress(FramescanError):
        probe(data)


def test_degenerate_display_matrix_is_no_rotation(fuzz_scanner: Scanner) -> None:
    """An all-zero tkhd matrix: FFmpeg's rotation is NaN (PyAV: INT_MIN); players do not rotate."""
    data = (FINDINGS_DIR / "display_matrix_zero.mp4").read_bytes()
    assert fuzz_scanner.scan(data).to_dict()["clip"]["rotation"] == 0
    assert probe(data).rotation == 0
