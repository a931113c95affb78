"""The HTML report (framescan.htmlreport) of the Quick start clip, opened in a real headless
browser (Debian's chromium, driven over the DevTools protocol: tests/browser.py): no console
error, no network request, the decision visible, the timeline with the 6-8 s segment in place,
the evidence frames loaded, veiled until clicked. A screenshot is written as a test artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from browser import Browser, find_chromium

from framescan.htmlreport import timeline_svg
from framescan.report import Report

if find_chromium() is None:
    reason = "the HTML report tests need chromium (apt-get install -y chromium; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: missing on CI", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def framescan(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def scanned(flagged_clip: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``framescan scan`` of the Quick start clip with --json, --evidence and --html, as a user runs it."""
    out = tmp_path_factory.mktemp("html")
    p = framescan(
        "scan",
        str(flagged_clip),
        "--json",
        str(out / "report.json"),
        "--evidence",
        str(out / "evidence"),
        "--html",
        str(out / "report.html"),
    )
    assert p.returncode == 20, p.stderr
    return {"dir": out, "report": json.loads((out / "report.json").read_text()), "html": out / "report.html"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    b = Browser(width=1200, height=1400)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def page(browser: Browser, scanned: dict[str, Any]) -> Any:
    p = browser.page()
    p.goto(scanned["html"].as_uri())
    return p


def _lap(png: bytes) -> float:
    """Sharpness of a screenshot: the variance of its Laplacian."""
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    return float(cv2.Laplacian(img, cv2.CV_64F).var())


def test_page_opens_offline_without_errors(page: Any, scanned: dict[str, Any]) -> None:
    assert page.errors() == []
    requests = page.requests()
    assert requests and requests[0] == scanned["html"].as_uri()
    away = [u[:80] for u in requests if not u.startswith(("file:", "data:"))]
    assert away == [], "the page asked the network for something"
    text = scanned["html"].read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text


def test_decision_first_and_visible(page: Any) -> None:
    d = page.evaluate(
        """(() => { const e = document.querySelector('[data-role=decision]'); const r = e.getBoundingClientRect();
        const t = document.querySelector('svg.timeline').getBoundingClientRect();
        return {text: e.innerText, top: r.top, h: r.height, w: r.width, vis: getComputedStyle(e).visibility,
                timeline_top: t.top, reasons: document.querySelector('ul.reasons').innerText}; })()"""
    )
    assert d["text"] == "BLOCK" and d["vis"] == "visible" and d["h"] > 10 and d["w"] > 30
    assert 0 <= d["top"] < 200 and d["top"] < d["timeline_top"]
    assert "sexual" in d["reasons"] and "block" in d["reasons"]


def test_timeline_segment_where_it_should_be(page: Any, scanned: dict[str, Any]) -> None:
    g = page.evaluate(
        """(() => { const g = document.querySelector('svg.timeline g.category[data-category=sexual]');
        const plot = g.querySelector('rect').getBoundingClientRect();
        return {plot: [plot.left, plot.width], segments: [...g.querySelectorAll('rect.segment')].map(s => {
            const r = s.getBoundingClientRect(); return [r.left, r.width]; }),
            thresholds: g.querySelectorAll('line.threshold').length,
            points: g.querySelector('polyline.scores').points.length,
            duration: +document.querySelector('svg.timeline').dataset.duration}; })()"""
    )
    assert g["duration"] == pytest.approx(15.0, abs=0.1)
    assert g["thresholds"] == 2
    # --html keeps the timeline: the score of every scored frame is drawn
    assert g["points"] == len(scanned["report"]["timeline"]["time"]) == scanned["report"]["coverage"]["scored_frames"]
    assert len(g["segments"]) == 1
    (left, width), (x, w) = g["plot"], g["segments"][0]
    start, end = (x - left) / width * 15.0, (x + w - left) / width * 15.0
    assert start == pytest.approx(6.0, abs=0.1) and end == pytest.approx(8.0, abs=0.1), (start, end)


def test_evidence_frames_loaded_veiled_and_revealed_on_click(page: Any, scanned: dict[str, Any]) -> None:
    report = scanned["report"]
    with_image = {e["frame_index"] for e in report["evidence"] if "image" in e}
    assert len(with_image) >= 3  # the segment's frames at 6.0, 6.5, 7.0, 7.5 s
    for e in report["evidence"]:
        if "image" in e:
            assert (scanned["dir"] / e["image"]).is_file()
    imgs = page.evaluate(
        """[...document.querySelectorAll('figure.evidence')].map(f => { const i = f.querySelector('img');
        const r = f.querySelector('button').getBoundingClientRect(); window.scrollTo(0, 0);
        return {frame: +f.dataset.frame, ok: i.complete && i.naturalWidth > 0, veiled:
        f.querySelector('button').classList.contains('veiled'), x: r.left, y: r.top + window.scrollY, w: r.width, h: r.height}; })"""
    )
    assert {i["frame"] for i in imgs} == with_image
    assert all(i["ok"] for i in imgs), "an evidence image did not load"
    assert all(i["veiled"] for i in imgs)
    first = imgs[0]
    page.evaluate(f"window.scrollTo(0, {max(0, first['y'] - 100)})")
    y = first["y"] - page.evaluate("window.scrollY")
    clip = {"x": first["x"] + 4, "y": y + 4, "width": first["w"] - 8, "height": first["h"] - 30}
    veiled = _lap(page.screenshot(clip))
    page.click(first["x"] + first["w"] / 2, y + first["h"] / 2)
    assert page.evaluate("document.querySelector('figure.evidence button').classList.contains('veiled')") is False
    page.evaluate("new Promise(r => setTimeout(r, 300))")  # the CSS transition
    revealed = _lap(page.screenshot(clip))
    assert revealed > 5 * veiled, (veiled, revealed)
    page.click(first["x"] + first["w"] / 2, y + first["h"] / 2)  # and veiled again
    assert page.evaluate("document.querySelector('figure.evidence button').classList.contains('veiled')") is True


def test_screenshot_artifact(page: Any, scanned: dict[str, Any]) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    png = page.screenshot(full_page=True)
    path = scanned["dir"] / "report.png"
    path.write_bytes(png)
    print(f"screenshot of the HTML report: {path}")
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[0] > 600 and img.std() > 10
    assert page.errors() == []


def test_evidence_files_are_pixelated_by_default(scanned: dict[str, Any]) -> None:
    """The JPEGs on disk (not only the page) hide the sexual box: the inside of the box is made of
    uniform 12 px cells."""
    report = scanned["report"]
    e = next(e for e in report["evidence"] if "image" in e and e["category"] == "sexual" and e.get("box"))
    img = cv2.imread(str(scanned["dir"] / e["image"]), cv2.IMREAD_GRAYSCALE).astype(float)
    s = img.shape[1] / report["clip"]["display_width"]
    x1, y1, x2, y2 = (int(v * s) for v in e["box"])
    inner = img[y1 + 20 : y2 - 8, x1 + 8 : x2 - 8]
    rows = np.abs(np.diff(inner, axis=1))
    # inside a cell neighbouring pixels are equal up to JPEG noise; steps happen only at cell edges
    assert np.median(rows) <= 2.0, np.median(rows)


def test_timeline_svg_draws_scores_thresholds_and_marks() -> None:
    """The SVG from a report dict with a per-frame timeline, a known-content match and on-screen text."""
    d = {
        "categories": {
            "sexual": {"signals": ["m"], "segments": [{"start": 2.0, "end": 4.0, "peak": 0.8}]},
            "hate": {"signals": ["ocr+lexicon:x"], "segments": []},
            "violence": {"signals": []},
        },
        "coverage": {"claimed_seconds": 10.0, "decoded_seconds": 10.0},
        "policy": {"categories": {"sexual": {"review": 0.4, "block": 0.6}, "hate": {"review": 0.4, "block": 0.6}}},
        "timeline": {"time": [0.0, 5.0, 10.0], "scores": {"sexual": [0.1, 0.9, 0.0], "hate": [0, 0, 0]}},
        "evidence": [
            {"time": 5.0, "category": "hate", "label": "x:bad <word>", "weighted": 0.5, "text": "a <bad> word"}
        ],
        "known_content": {
            "matches": [{"category": "sexual", "bank": "b", "item": "i", "segments": [{"start": 1, "end": 2}]}]
        },
    }
    svg = timeline_svg(d)
    assert svg.count('class="category"') == 2 and "violence" not in svg
    assert svg.count('class="threshold"') == 4
    assert 'class="scores" data-category="sexual" points="96.0,' in svg
    assert 'class="known"' in svg and 'class="text-mark"' in svg
    assert "<bad>" not in svg and "&lt;bad&gt;" in svg  # text from the clip is escaped


def test_error_report_page(tmp_path: Path) -> None:
    from framescan.errors import NoFrames
    from framescan.htmlreport import run_page

    page = run_page([Report.from_error("x<y>.mp4", NoFrames("x<y>.mp4: no frames"))])
    assert "ERROR" in page and "NO_FRAMES" in page and "x&lt;y&gt;.mp4" in page and "<y>" not in page


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--no-blur",), "--no-blur applies to evidence frames"),
        (("--evidence", "{file}"), "is a file; give a folder"),
        (("--html", "{dir}"), "is a directory"),
    ],
)
def test_usage_errors(
    args: tuple[str, ...], says: str, short_flagged: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Checked before anything is scanned: exit 2 and one line that says what to do."""
    from framescan.cli.main import main

    (tmp_path / "f").write_text("")
    args = tuple(a.format(file=tmp_path / "f", dir=tmp_path) for a in args)
    with pytest.raises(SystemExit) as ex:
        main(["scan", str(short_flagged), *args])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and says in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_on_screen_text_marks_the_term_and_known_content_lists_matches() -> None:
    from framescan.htmlreport import _known, _texts

    d = {
        "evidence": [
            {"time": 1.0, "category": "bullying", "label": "bullying.id:dasar goblok", "text": "kamu DASAR goblok <b>"},
            {"time": 1.5, "category": "bullying", "label": "bullying.id:dasar goblok", "text": "kamu DASAR goblok <b>"},
        ],
        "known_content": {
            "matches": [
                {"bank": "terror", "item": "clip-7", "category": "extremism", "decision": "block",
                 "query_match_percent": 100.0, "segments": [{"start": 0.0, "end": 4.0}]}
            ]
        },
    }  # fmt: skip
    text = _texts(d)
    assert text.count("<tr>") == 2  # the header and one line: the same text and term once
    assert "kamu <mark>DASAR goblok</mark> &lt;b&gt;" in text
    known = _known(d)
    assert "terror" in known and "clip-7" in known and "0.00-4.00 s" in known and "100%" in known
