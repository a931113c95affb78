"""Every case of the generated hostile corpus (tests/corpus/hostile.py) gives its expected
outcome: an error code with a message, or a (partial) result with honest coverage. The parent
survives every case; the isolated path is what the CLI, archive scans and services use."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus.hostile import Case, build_corpus

from framescan.config import ScanConfig
from framescan.errors import FramescanError
from framescan.isolate import WorkerConfig, WorkerPool
from framescan.limits import DEFAULT_LIMITS
from framescan.pipeline import Scanner
from framescan.report import Report

#: Wall-clock budget of one corpus case (the files are small: a scan takes well under 2 s).
CASE_SECONDS = 60.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    cases = build_corpus(tmp_path_factory.mktemp("hostile"))
    assert len(cases) >= 25
    return {c.name: c for c in cases}


@pytest.fixture(scope="module")
def pool():
    with WorkerPool(1, WorkerConfig(scan=ScanConfig(threads=2))) as p:
        yield p


def outcome(report: Report) -> str:
    d = report.to_dict()
    if d["status"] == "error":
        return d["error"]["code"]
    return "OK" if d["status"] == "complete" else "PARTIAL"


def check_report(case: Case, report: Report) -> None:
    d = report.to_dict()
    got = outcome(report)
    assert got in case.accepted, f"{case.name}: got {got}, expected {case.accepted} ({case.note}) {d.get('error')}"
    if d["status"] == "error":
        msg = d["error"]["message"]
        assert msg and "Traceback" not in msg and d["decision"] is None
    else:
        cov = d["coverage"]
        assert cov["decoded_frames"] > 0 and cov["scored_frames"] > 0
        if d["status"] == "partial":
            assert d["decision"] != "allow" and d["warnings"]


def _ids() -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return [c.name for c in build_corpus(Path(tmp))]


CASE_NAMES = _ids()


@pytest.mark.integration  # each case in a worker process
@pytest.mark.parametrize("name", CASE_NAMES)
def test_isolated(name: str, corpus: dict[str, Case], pool: WorkerPool) -> None:
    case = corpus[name]
    limits = DEFAULT_LIMITS.updated(**(case.limits or {}))
    report = pool.scan(case.path, limits=limits, timeout=CASE_SECONDS)  # a hang is a TIMEOUT report
    check_report(case, report)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_in_process(name: str, corpus: dict[str, Case], scanner: Scanner) -> None:
    """The embedding path raises only named framescan errors (and gives the same outcomes)."""
    case = corpus[name]
    limits = DEFAULT_LIMITS.updated(**(case.limits or {}))
    try:
        report = scanner.scan(case.path, limits=limits)
    except FramescanError as ex:
        report = Report.from_error(str(case.path), ex)
    check_report(case, report)
