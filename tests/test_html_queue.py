"""The archive's review queue (framescan export --format html) and the store's evidence frames:
a folder with a blocked, a review, an allowed and an unreadable clip is listed in that order,
every link and image resolves, from the store alone, with the folder moved elsewhere."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from browser import Browser, find_chromium

from framescan.archive import ArchiveOptions, run_archive
from framescan.archive.fingerprint import Fingerprints
from framescan.archive.store import EVIDENCE_PER_ITEM, Outcome, Store
from framescan.cli.main import main
from framescan.config import ScanConfig


@pytest.fixture(scope="module")
def moved(make_clip: Callable[..., Path], short_flagged: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive folder (clips, store, queue) scanned, exported as HTML, then moved elsewhere."""
    root = tmp_path_factory.mktemp("queue")
    src = root / "archive" / "src"
    src.mkdir(parents=True)
    small = dict(width=360, height=640, seconds=4, fps=15)
    shutil.copy(short_flagged, src / "blocked.mp4")  # flagged 1-3 s: block
    shutil.copy(make_clip(**small, flagged=(1.0, 1.4)), src / "review.mp4")  # one frame over block: review
    shutil.copy(make_clip(**small), src / "allowed.mp4")
    (src / "unreadable.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    db = root / "archive" / "store.sqlite"
    summary = run_archive(
        ArchiveOptions(db=str(db), source=str(src), workers=1, scan=ScanConfig(banks=False), quiet=True)
    )
    assert summary.status == "complete"
    assert main(["export", "--db", str(db), "--format", "html", "-o", str(root / "archive" / "queue")]) == 0
    shutil.move(root / "archive", root / "elsewhere")
    return root / "elsewhere"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if find_chromium() is None:
        reason = "the review queue test needs chromium (apt-get install -y chromium; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: missing on CI", pytrace=False)
        pytest.skip(reason)
    b = Browser(width=1100, height=900)
    try:
        yield b
    finally:
        b.close()


def _local(url: str) -> Path:
    return Path(unquote(urlparse(url).path))


def test_queue_lists_by_risk_and_every_link_resolves(moved: Path, browser: Browser) -> None:
    page = browser.page()
    index = moved / "queue" / "index.html"
    page.goto(index.as_uri())
    rows: list[dict[str, Any]] = page.evaluate(
        """[...document.querySelectorAll('tr.item')].map(r => ({decision: r.dataset.decision,
        name: r.querySelector('td:nth-child(2)').innerText, link: r.querySelector('a') && r.querySelector('a').href,
        thumbs: [...r.querySelectorAll('img')].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))}))"""
    )
    assert [r["decision"] for r in rows] == ["block", "review", "allow", "failed"]
    assert [r["name"].split("\n")[0].rsplit("/", 1)[-1] for r in rows] == [
        "blocked.mp4",
        "review.mp4",
        "allowed.mp4",
        "unreadable.mp4",
    ]
    assert rows[0]["thumbs"] and rows[1]["thumbs"] and not rows[2]["thumbs"]
    for r in rows:
        assert all(t["ok"] and _local(t["src"]).is_relative_to(moved) for t in r["thumbs"]), r
    assert page.errors() == []
    assert all(u.startswith(("file:", "data:")) for u in page.requests())
    for r in rows:
        target = _local(r["link"])
        assert target.is_file() and target.is_relative_to(moved), r["link"]
        clip = browser.page()
        clip.goto(r["link"])
        info = clip.evaluate(
            """({decision: document.querySelector('[data-role=decision]').innerText,
            images: [...document.querySelectorAll('figure.evidence img')].map(i => i.complete && i.naturalWidth > 0),
            back: document.querySelector('a').href})"""
        )
        assert info["decision"].lower() == {"failed": "error"}.get(r["decision"], r["decision"])
        assert all(info["images"]) and (len(info["images"]) > 0) == (r["decision"] in ("block", "review"))
        assert _local(info["back"]) == index
        assert clip.errors() == [], r["link"]
        assert all(u.startswith(("file:", "data:")) for u in clip.requests())


def test_queue_without_an_output_folder_is_a_usage_error(moved: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as ex:
        main(["export", "--db", str(moved / "store.sqlite"), "--format", "html"])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "-o DIR" in err and len(err.strip().splitlines()) == 1, err


def test_store_keeps_bounded_evidence_replaced_with_the_item(tmp_path: Path) -> None:
    fp = Fingerprints("m" * 32, "c" * 32, [], {})
    out = Outcome("done", "block", "complete", report={"status": "complete"})
    with Store(tmp_path / "s.sqlite", evidence_bytes=5000) as store:
        store.record("a" * 64, fp, out, 1, "/a.mp4", 0, {i: bytes([i]) * 100 for i in range(20)})
        assert sorted(store.evidence("a" * 64, fp.models, fp.config)) == list(range(EVIDENCE_PER_ITEM))
        store.record("a" * 64, fp, out, 1, "/a.mp4", 0, {7: b"x" * 10})  # a rescan replaces them
        assert store.evidence("a" * 64, fp.models, fp.config) == {7: b"x" * 10}
        store.record("b" * 64, fp, out, 1, "/b.mp4", 0, {i: b"y" * 2000 for i in range(5)})  # over the total
        assert len(store.evidence("b" * 64, fp.models, fp.config)) == 2
        store.record("b" * 64, fp, out, 1, "/b.mp4", 0, None)  # e.g. failed on a rescan: none kept
        assert store.evidence("b" * 64, fp.models, fp.config) == {}
