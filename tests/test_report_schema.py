"""The shipped JSON Schema of ``framescan.report/1``: it is a valid schema, real reports
(complete, error) match it, broken ones do not, and docs/report.md names the same fields.

Every report the suite builds is validated where it is built (conftest's
``_validate_every_report``); these tests check the schema and the checker themselves."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from framescan.report import SCHEMA_PATH, ReportSchemaError, segment_evidence, validate

DOCS = Path(__file__).resolve().parent.parent / "docs" / "report.md"


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


@pytest.fixture(scope="module")
def flagged_report(scanner, short_flagged: Path) -> dict:
    return scanner.scan(short_flagged).to_dict()


def test_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_the_suite_validates_reports_in_every_process(tmp_path: Path):
    """A process the tests start inherits the check: a report that breaks the schema (a partial
    clip allowed) raises where it is built, in the child."""
    code = (
        "from framescan.report import Report, ReportSchemaError\n"
        "try:\n"
        "    Report(source='x', status='partial', decision='allow').to_dict()\n"
        "except ReportSchemaError as ex:\n"
        "    print('rejected:', str(ex).splitlines()[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("rejected:"), (out.stdout, out.stderr)


def test_a_real_report_matches_and_broken_copies_do_not(flagged_report: dict):
    validate(flagged_report)
    assert flagged_report["segments"], "the flagged clip must have a segment for this test to mean anything"
    broken = {
        "a category left out": lambda d: d["categories"].pop("hate"),
        "an undocumented field": lambda d: d.update(surprise=1),
        "a partial clip allowed": lambda d: d.update(status="partial", decision="allow"),
        "an evidence item without time": lambda d: d["evidence"][0].pop("time"),
        "a segment field misspelt": lambda d: d["segments"][0].update(ends=d["segments"][0].pop("end")),
        "an error report with a decision": lambda d: d.update(status="error"),
    }
    for why, change in broken.items():
        d = copy.deepcopy(flagged_report)
        change(d)
        with pytest.raises(ReportSchemaError):
            validate(d)
        assert why  # each case names what it breaks


@pytest.mark.integration
def test_an_error_report_from_the_cli_matches(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "framescan", "scan", str(tmp_path / "missing.mp4"), "--json", "-", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 3, out.stderr
    (report,) = json.loads(out.stdout) if out.stdout.lstrip().startswith("[") else [json.loads(out.stdout)]
    validate(report)
    assert report["status"] == "error" and report["decision"] is None
    assert set(report["categories"]) == {"sexual", "violence", "hate", "bullying", "extremism"}
    assert all(c["decision"] is None and "not scanned" in c["note"] for c in report["categories"].values())


def _doc_table_fields(heading: str | None) -> set[str]:
    """Field names in the first column of the first table after ``heading`` (None: the page's
    first table); a cell may name several fields (`a`, `b`)."""
    text = DOCS.read_text()
    if heading is not None:
        text = text.split(f"\n## {heading}\n", 1)[1]
    rows, started = [], False
    for line in text.splitlines():
        if line.startswith("|"):
            started = True
            rows.append(line)
        elif started:
            break
    return {name for row in rows[2:] for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])}


def test_docs_name_every_top_level_field_of_the_schema():
    assert _doc_table_fields(None) == set(_schema()["properties"])


def test_docs_name_every_coverage_field_of_the_schema():
    assert _doc_table_fields("`coverage`") == set(_schema()["$defs"]["coverage"]["properties"])


def test_docs_name_every_evidence_and_segment_field():
    text = DOCS.read_text()
    evidence = re.search(r"\*\*Evidence\*\* is `\{([^}]*)\}`", text)
    segment = re.search(r"A \*\*segment\*\* is `\{([^}]*)\}`", text)
    assert evidence and segment, "docs/report.md must spell out the evidence and segment objects"

    def names(m: re.Match) -> set[str]:
        return {n.strip().rstrip("?") for n in m.group(1).split(",")}

    assert names(evidence) == set(_schema()["$defs"]["evidence"]["properties"])
    assert names(segment) == set(_schema()["$defs"]["segment"]["properties"])


def test_each_evidence_item_is_written_once(flagged_report: dict):
    """Segments refer to the report's evidence list by index instead of copying the items."""
    items = [json.dumps(e, sort_keys=True) for e in flagged_report["evidence"]]
    assert len(items) == len(set(items)), "an evidence item is written twice"
    refs = [i for s in flagged_report["segments"] for i in s["evidence"]]
    assert refs and all(isinstance(i, int) and 0 <= i < len(items) for i in refs)
    seg = flagged_report["segments"][0]
    assert segment_evidence(flagged_report, seg)[0]["category"] == seg["category"]
