"""Exporting an archive store: one row per path (``iter_export``) as JSON lines, CSV or Parquet,
or as an HTML review queue (``write_html``)."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from ..errors import ConfigError
from .store import Store, unpack_report

EXPORT_FORMATS = ("jsonl", "csv", "parquet", "html")
#: Clips per page of the HTML review queue.
QUEUE_PAGE_SIZE = 50
#: The queue's order: most severe first, then the clips that could not be scanned.
_RISK = {"block": 0, "review": 1, "allow": 2, "failed": 3, "quarantined": 4, "pending": 5, "skipped": 6}
EXPORT_COLUMNS = (
    "path",
    "sha256",
    "size",
    "state",
    "skip_reason",
    "decision",
    "status",
    "max_score",
    "max_category",
    "reasons",
    "known_content",
    "error_code",
    "error_message",
    "tries",
    "segments",
    "evidence",
    "models_fp",
    "config_fp",
    "scanned_at",
)


def _why(report: dict[str, Any] | None) -> tuple[list[str], list[dict[str, Any]]]:
    """The report's ``reasons`` and its ``known_content`` matches, as the report has them."""
    if not report:
        return [], []
    return list(report.get("reasons") or []), list((report.get("known_content") or {}).get("matches") or [])


def _evidence(report: dict[str, Any] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not report:
        return [], []
    segs = [
        {"category": s.get("category"), "start": s.get("start"), "end": s.get("end"), "peak": s.get("peak")}
        for s in report.get("segments") or []
    ]
    ev = sorted(
        (
            {"time": e.get("time"), "category": e.get("category"), "label": e.get("label"), "score": e.get("score")}
            for e in report.get("evidence") or []
        ),
        key=lambda e: (e["time"] is None, e["time"] or 0.0),
    )
    return segs, ev


def iter_export(
    store: Store,
    *,
    flagged: bool = False,
    all_fingerprints: bool = False,
    reports: bool = False,
) -> Iterator[dict[str, Any]]:
    """One row per path: the path's content result under the latest run's fingerprints (or
    all of them), or why it was skipped. ``flagged``: only ``block``/``review``, block first,
    then highest score."""
    fps = store.latest_fingerprints()
    if fps is None and not all_fingerprints:
        return
    where = ["1=1"]
    params: list[Any] = []
    join_fp = ""
    if not all_fingerprints and fps is not None:
        join_fp = " AND r.models_fp = ? AND r.config_fp = ?"
        params += list(fps)
    if flagged:
        where.append("r.state = 'done' AND r.decision IN ('block', 'review')")
        order = "CASE r.decision WHEN 'block' THEN 0 ELSE 1 END, r.max_score DESC, p.path"
    else:
        order = "p.path, r.models_fp, r.config_fp"
    sql = (
        "SELECT p.path, p.sha256, coalesce(r.size, p.size), r.state, r.decision, r.status, r.max_score, "
        "r.max_category, coalesce(r.error_code, p.error_code), coalesce(r.error_message, p.error_message), "
        "r.tries, r.report, r.models_fp, r.config_fp, coalesce(r.updated, p.updated), p.skipped "
        f"FROM paths p LEFT JOIN results r ON r.sha256 = p.sha256{join_fp} "
        f"WHERE {' AND '.join(where)} ORDER BY {order}"
    )
    for row_values in store.cursor(sql, params):
        path, sha, size, state, decision, status, score, cat, code, msg, tries, blob, mfp, cfp, ts, skipped = row_values
        if skipped:
            state = "skipped"
        elif state is None:
            state = "failed" if code else "pending"
        report = unpack_report(blob)
        segs, ev = _evidence(report if state == "done" else None)
        reasons, known = _why(report if state == "done" else None)
        row: dict[str, Any] = {
            "path": path,
            "sha256": sha,
            "size": size,
            "state": state,
            "skip_reason": skipped,
            "decision": decision,
            "status": status,
            "max_score": score,
            "max_category": cat,
            "reasons": reasons,
            "known_content": known,
            "error_code": code,
            "error_message": msg,
            "tries": tries or None,  # worker crashes/timeouts on the item; none: null
            "segments": segs,
            "evidence": ev,
            "models_fp": mfp,
            "config_fp": cfp,
            "scanned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)) if ts else None,
        }
        if reports:
            row["report"] = report
        yield row


def write_export(rows: Iterable[dict[str, Any]], fmt: str, out: str | None) -> int:
    """Write rows as ``jsonl``, ``csv`` (nested fields as JSON text) or ``parquet`` (needs
    pyarrow); ``out`` None or ``-`` is stdout (not for parquet). Returns the row count."""
    if fmt not in EXPORT_FORMATS or fmt == "html":  # html: write_html, which reads the store's evidence frames
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS[:3])}")
    if fmt == "parquet":
        return _write_parquet(rows, out)
    n = 0
    f: TextIO = sys.stdout if out in (None, "-") else open(out, "w", newline="", encoding="utf-8")  # noqa: SIM115
    try:
        if fmt == "jsonl":
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
        else:
            writer: csv.DictWriter | None = None
            for row in rows:
                flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in row.items()}
                if writer is None:
                    writer = csv.DictWriter(f, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
                n += 1
            if writer is None:
                csv.writer(f).writerow(EXPORT_COLUMNS)
    finally:
        if f is not sys.stdout:
            f.close()
        else:
            f.flush()
    return n


def _risk(row: dict[str, Any]) -> tuple[Any, ...]:
    rank = _RISK.get(row["decision"], 2) if row["state"] == "done" else _RISK.get(row["state"], 5)
    return (rank, -(row["max_score"] or 0.0), row["path"])


def write_html(store: Store, rows: Iterable[dict[str, Any]], out: str, page_size: int = QUEUE_PAGE_SIZE) -> int:
    """The review queue: ``out/index.html`` (and ``page-N.html``) lists the clips by risk (block,
    review, allow, then failed, quarantined, pending and skipped files; highest score first), one
    row per path with its decision, top reasons and evidence thumbnails, linking to the clip's
    page ``out/clips/<sha256>.html`` (decision, timeline, evidence frames from the store). Every
    link is relative, so the folder can be moved or copied. Returns the row count."""
    from ..evidence import image_name
    from ..htmlreport import clip_page, queue_page
    from ..report import Report

    root = Path(out)
    clips = root / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    queue: list[dict[str, Any]] = []
    written: set[str] = set()
    for row in rows:
        report, sha = row.pop("report", None), row["sha256"]
        entry = {k: row[k] for k in ("path", "state", "decision", "max_score", "max_category", "reasons")}
        entry["error"] = f"[{row['error_code']}] {row['error_message']}" if row.get("error_code") else None
        entry["thumbs"], entry["link"] = [], None
        if report is not None and sha:
            page = f"{sha[:32]}.html"
            folder = f"evidence/{sha[:32]}"
            images = store.evidence(sha, row["models_fp"], row["config_fp"]) if row["state"] == "done" else {}
            srcs = {i: f"{folder}/{image_name(i)}" for i in images}
            if page not in written:
                written.add(page)
                if images:
                    (clips / folder).mkdir(parents=True, exist_ok=True)
                    for i, jpeg in images.items():
                        (clips / srcs[i]).write_bytes(jpeg)
                r = Report.from_dict(report)
                (clips / page).write_text(clip_page(r, srcs.get, back="../index.html"), encoding="utf-8")
            ranked = sorted(
                {
                    e["frame_index"]: e["weighted"] for e in report.get("evidence") or [] if e["frame_index"] in srcs
                }.items(),
                key=lambda kv: -kv[1],
            )
            entry["thumbs"] = [f"clips/{srcs[i]}" for i, _ in ranked[:3]]
            entry["link"] = f"clips/{page}"
        queue.append(entry)
    queue.sort(key=_risk)
    pages = max(1, -(-len(queue) // page_size))

    def name(i: int) -> str:
        return "index.html" if i == 0 else f"page-{i + 1}.html"

    for i in range(pages):
        html = queue_page(
            queue[i * page_size : (i + 1) * page_size], i, pages, len(queue), name, "framescan review queue"
        )
        (root / name(i)).write_text(html, encoding="utf-8")
    return len(queue)


def _require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as ex:
        raise ConfigError(
            "parquet export needs pyarrow, which is not installed: pip install pyarrow "
            "(or pip install 'framescan[parquet]'); jsonl and csv need nothing extra"
        ) from ex
    return pyarrow


def _write_parquet(rows: Iterable[dict[str, Any]], out: str | None) -> int:
    pa = _require_pyarrow()
    import pyarrow.parquet as pq

    if out in (None, "-"):
        raise ConfigError("parquet export needs an output file: -o OUT.parquet")
    seg = pa.struct([("category", pa.string()), ("start", pa.float64()), ("end", pa.float64()), ("peak", pa.float64())])
    evs = pa.struct(
        [("time", pa.float64()), ("category", pa.string()), ("label", pa.string()), ("score", pa.float64())]
    )
    match_frame = pa.struct([("query_time", pa.float64()), ("item_time", pa.float64()), ("distance", pa.int64())])
    match = pa.struct(
        [
            ("bank", pa.string()),
            ("category", pa.string()),
            ("action", pa.string()),
            ("item", pa.string()),
            ("kind", pa.string()),
            ("video_match", pa.bool_()),
            ("decision", pa.string()),
            ("query_match_percent", pa.float64()),
            ("matched_seconds", pa.float64()),
            ("query_seconds", pa.float64()),
            ("segments", pa.list_(pa.struct([("start", pa.float64()), ("end", pa.float64())]))),
            ("item_match_percent", pa.float64()),
            ("min_distance", pa.int64()),
            ("frames", pa.list_(match_frame)),
        ]
    )
    schema = pa.schema(
        [
            ("path", pa.string()),
            ("sha256", pa.string()),
            ("size", pa.int64()),
            ("state", pa.string()),
            ("skip_reason", pa.string()),
            ("decision", pa.string()),
            ("status", pa.string()),
            ("max_score", pa.float64()),
            ("max_category", pa.string()),
            ("reasons", pa.list_(pa.string())),
            ("known_content", pa.list_(match)),
            ("error_code", pa.string()),
            ("error_message", pa.string()),
            ("tries", pa.int64()),
            ("segments", pa.list_(seg)),
            ("evidence", pa.list_(evs)),
            ("models_fp", pa.string()),
            ("config_fp", pa.string()),
            ("scanned_at", pa.string()),
        ]
    )
    n = 0
    batch: list[dict[str, Any]] = []
    with pq.ParquetWriter(str(out), schema) as writer:
        for row in rows:
            row = {k: row.get(k) for k in EXPORT_COLUMNS}
            batch.append(row)
            if len(batch) >= 10_000:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                n += len(batch)
                batch = []
        if batch or not n:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            n += len(batch)
    return n


def export(
    db: str,
    fmt: str = "jsonl",
    out: str | None = None,
    *,
    flagged: bool = False,
    all_fingerprints: bool = False,
    reports: bool = False,
) -> int:
    """Export the store at ``db`` (see ``iter_export`` and ``write_export``); returns the row count."""
    if fmt == "parquet":
        _require_pyarrow()
    if fmt == "html" and out in (None, "-"):
        raise ConfigError("html export writes a folder of pages: give it with -o DIR")
    with Store(db, create=False) as store:
        if fmt == "html":
            rows = iter_export(store, flagged=flagged, all_fingerprints=all_fingerprints, reports=True)
            return write_html(store, rows, str(out))
        return write_export(
            iter_export(store, flagged=flagged, all_fingerprints=all_fingerprints, reports=reports), fmt, out
        )
