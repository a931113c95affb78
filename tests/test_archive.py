"""Archive scanning (``framescan archive`` / ``framescan export``): resumable after any kill,
content-hash deduplication, fingerprints, quarantine, a full disk, exports, Ray.

The clips are tiny (160x120 to 320x240, 1-2 s at 10 fps) so that runs are short; the worker
start-up (about 2-3 s per run on 2 cores) is what most of these tests pay for.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from terminal import run_on_terminal
from waiting import wait_until

from framescan.archive import (
    DEFAULT_EXTENSIONS,
    ArchiveOptions,
    Job,
    Skipped,
    Store,
    StoreError,
    export,
    iter_export,
    run_archive,
    sniff_video,
    walk_folder,
)
from framescan.archive.store import STORE_SCHEMA_VERSION, unpack_report
from framescan.cli.archive import summary_from_stderr
from framescan.config import ScanConfig
from framescan.limits import DEFAULT_LIMITS
from framescan.synth import write_clip

ARCHIVE = [sys.executable, "-m", "framescan", "archive"]
EXPORT = [sys.executable, "-m", "framescan", "export"]
#: Sampling for the kill test: 4 fps makes a clip cost a few tenths of a second, so a kill
#: 0.1-1.5 s after the workers are ready (sized from the measured rate) lands mid-run and 10
#: kills leave work for the final run.
KILL_SAMPLING = ["--fps", "4"]
N_CLEAN, N_FLAGGED = 50, 8


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _archive(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ARCHIVE, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=_env(), check=False
    )


def _results(db: Path) -> dict[str, tuple[str, str | None, str | None]]:
    """{sha256: (state, decision, error_code)} under the latest run's fingerprints."""
    con = sqlite3.connect(db)
    try:
        mfp, cfp = con.execute("SELECT models_fp, config_fp FROM runs ORDER BY id DESC LIMIT 1").fetchone()
        rows = con.execute(
            "SELECT sha256, state, decision, error_code FROM results WHERE models_fp = ? AND config_fp = ?", (mfp, cfp)
        ).fetchall()
    finally:
        con.close()
    return {sha: (state, dec, code) for sha, state, dec, code in rows}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 distinct contents under 62 names: 50 ordinary clips, 8 flagged (colorwheel), a
    truncated MP4 and an MP4 header followed by garbage; two exact copies in a sub-folder, and
    files the walk must skip (a text file, a non-video .mp4, a symlink out of the folder)."""
    root = tmp_path_factory.mktemp("archive") / "corpus"
    (root / "a" / "b").mkdir(parents=True)
    for i in range(N_CLEAN):
        write_clip(
            root / "a" / f"clip{i:02d}.mp4",
            width=160 + 16 * (i % 5),
            height=120,
            seconds=1.0 + 0.1 * (i // 5),
            fps=10,
        )
    for i in range(N_FLAGGED):
        write_clip(
            root / "a" / "b" / f"flag{i}.mp4",
            width=320 + 16 * (i % 4),
            height=240,
            seconds=1.6 + 0.2 * (i // 4),
            fps=10,
            flagged=(0.2, 1.6),  # three frames at 2 fps (0.5, 1.0, 1.5): block needs two >= 0.6
        )
    whole = (root / "a" / "clip00.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(whole[: len(whole) // 3])
    (root / "garbage.mov").write_bytes(b"\x00\x00\x00\x18ftypqt  " + bytes(range(256)) * 8)
    shutil.copy(root / "a" / "clip07.mp4", root / "a" / "b" / "copy_of_clip07.mp4")
    shutil.copy(root / "a" / "b" / "flag3.mp4", root / "flag3_copy.MP4")
    (root / "notes.txt").write_text("not a clip")
    (root / "fake.mp4").write_text("an .mp4 name, but text inside")
    os.symlink("/etc/hostname", root / "outside.mp4")
    return root


@pytest.fixture(scope="module")
def clean_db(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one uninterrupted run over the corpus."""
    db = tmp_path_factory.mktemp("clean") / "clean.sqlite"
    r = _archive(corpus, "--db", db, "--workers", "2", *KILL_SAMPLING, "--progress-interval", "1")
    assert r.returncode == 3, r.stderr  # the two broken files fail, everything else is scanned
    summary = summary_from_stderr(r.stderr)
    assert summary is not None and summary["status"] == "complete"
    c = summary["counts"]
    assert c["found"] == 65 and c["processed"] == 65  # 62 candidates and the 3 files the walk skips
    assert c["scanned"] + c["duplicates"] + c["already_in_store"].get("done", 0) == 62
    assert c["skipped"] == {"extension": 1, "not_video": 1, "symlink_outside": 1}
    files = c["files"]  # every file once: the copies count under their own names
    assert files["total"] == 65 and files["done"] == {"allow": N_CLEAN + 1, "block": N_FLAGGED + 1}, files
    assert (
        sum(files["failed"].values()) == 2
        and files["skipped"] == c["skipped"]
        and set(files)
        == {
            "total",
            "done",
            "failed",
            "skipped",
        }
    )
    return db


def test_clean_run_results(corpus: Path, clean_db: Path) -> None:
    res = _results(clean_db)
    assert len(res) == 60, "one result per distinct content"
    decisions = [r[1] for r in res.values() if r[0] == "done"]
    assert decisions.count("block") == N_FLAGGED and decisions.count("allow") == N_CLEAN
    failed = sorted(r[2] for r in res.values() if r[0] == "failed")
    assert len(failed) == 2 and all(failed), failed
    assert res[_sha(corpus / "a" / "clip07.mp4")] == ("done", "allow", None)
    # the store keeps every scanned report's timeline (framescan eval --rescore reads it)
    con = sqlite3.connect(clean_db)
    try:
        blobs = con.execute("SELECT report FROM results WHERE state = 'done'").fetchall()
    finally:
        con.close()
    reports = [unpack_report(b) for (b,) in blobs]
    assert reports and all(len(r["timeline"]["time"]) == r["coverage"]["scored_frames"] > 0 for r in reports)


# ---------------------------------------------------------------------------- (a) kill test


@pytest.mark.integration
def test_kill_at_random_moments_then_resume(corpus: Path, clean_db: Path, tmp_path: Path) -> None:
    """SIGKILL the whole process group of ``framescan archive`` at 10 seeded random moments
    (8 of them 0.1-1.5 s after the workers are ready, 2 during start-up), restarting each
    time; then let it finish. Every clip must end with exactly one result, equal to the clean
    run's, in a store whose integrity check is ok."""
    rng = random.Random(20240611)
    db = tmp_path / "killed.sqlite"
    cmd = [*ARCHIVE, str(corpus), "--db", str(db), "--workers", "2", *KILL_SAMPLING, "--progress-interval", "0.5"]
    startup_cycles = {3, 7}
    moments: list[tuple[str, float, int]] = []
    rate = 8.0  # clips/s once ready, updated from what the runs achieve
    busy_seconds = 0.0
    for cycle in range(1, 11):
        err = tmp_path / f"stderr{cycle}.txt"
        done_before = sum(1 for r in _results(db).values() if r[0] != "pending") if db.exists() else 0
        with open(err, "w") as ferr:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=ferr, start_new_session=True, env=_env(), text=True
            )
        try:
            if cycle in startup_cycles:
                kind, delay = "start-up", rng.uniform(0.5, 1.5)
            else:
                wait_until(
                    lambda err=err, proc=proc: '"event": "ready"' in err.read_text() or proc.poll() is not None,
                    90,
                    f"run {cycle}'s workers to get ready",
                )
                ready = '"event": "ready"' in err.read_text()
                assert ready, f"run {cycle}: workers never got ready (rc {proc.poll()}): {err.read_text()[-2000:]}"
                # spend about half the remaining work on the kills still to come, whatever the speed
                left = sum(1 for c in range(cycle, 11) if c not in startup_cycles)
                hi = min(1.5, max(0.2, 0.1 + (60 - done_before) / (2 * left * rate)))
                kind, delay = "mid-run", rng.uniform(min(0.5, hi / 2), hi)
                busy_seconds += delay
            time.sleep(delay)  # the random kill moment itself: what this test varies
            assert proc.poll() is None, f"run {cycle} finished (rc {proc.returncode}) before its kill: {moments}"
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            moments.append((kind, round(delay, 2), done_before))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if kind == "mid-run" and db.exists():
            done_now = sum(1 for r in _results(db).values() if r[0] != "pending")
            rate = max(1.0, done_now / busy_seconds) if done_now else rate
    print(f"kill moments (kind, seconds after launch/ready, results done before): {moments}")
    assert len(moments) == 10 and sum(m[0] == "mid-run" for m in moments) == 8
    progress = [m[2] for m in moments]
    assert progress[-1] > progress[0], f"no progress across kills: {moments}"
    assert progress[-1] < 60, f"every clip was done before the last kill: {moments}"
    final = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env(), check=False)
    assert final.returncode == 3, final.stderr  # complete; the two broken files failed
    summary = summary_from_stderr(final.stderr)
    assert summary is not None and summary["status"] == "complete"

    got, want = _results(db), _results(clean_db)
    assert got == want, {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)}
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        per_sha = con.execute("SELECT sha256, count(*) FROM results GROUP BY sha256").fetchall()
        assert len(per_sha) == 60 and {n for _, n in per_sha} == {1}, "exactly one result per clip"
        assert con.execute("SELECT count(*) FROM results WHERE state = 'pending'").fetchone()[0] == 0
        paths = dict(con.execute("SELECT path, sha256 FROM paths").fetchall())
    finally:
        con.close()
    for p in corpus.rglob("*"):
        if p.is_file() and not p.is_symlink() and p.suffix.lower() in (".mp4", ".mov") and p.name != "fake.mp4":
            assert paths[str(p)] == _sha(p), p


# ---------------------------------------------------------------------------- (b) disk full


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
    return r.returncode == 0


@pytest.mark.integration
def test_disk_full_stops_cleanly_and_resumes(corpus: Path, tmp_path: Path) -> None:
    """The store lives on a 192 KiB tmpfs (``mount -t tmpfs``; we are root): the WAL fills it
    after a few results. The run must stop with exit code 4 and a clear ``database or disk is
    full`` message, keep every result it reported as committed, and a rerun after the file
    system is remounted bigger must finish the job without rescanning those results.

    Where mounting is not permitted the test falls back to SQLite's ``PRAGMA max_page_count``
    (``--max-store-mb``), which fails the same way (``SQLITE_FULL``); raising the cap is then
    "space coming back"."""
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted((corpus / "a").glob("clip*.mp4"))[:14]:
        shutil.copy(p, src / p.name)
    mnt = tmp_path / "mnt"
    mounted = _mount_tmpfs(mnt, "192k")
    db = mnt / "r.sqlite"
    limit = [] if mounted else ["--max-store-mb", "0.09"]
    try:
        r = _archive(src, "--db", db, "--workers", "2", "--progress-interval", "0.5", *limit)
        assert r.returncode == 4, (r.returncode, r.stderr)
        assert "[STORE_FULL]" in r.stderr and "database or disk is full" in r.stderr, r.stderr
        assert "run the same command again to resume" in r.stderr
        err = [json.loads(x) for x in r.stderr.splitlines() if x.startswith('{"event": "error"')]
        committed = err[-1]["committed"]
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        con = sqlite3.connect(db)
        try:
            assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            before = dict(
                con.execute("SELECT sha256, updated FROM results WHERE state IN ('done', 'failed')").fetchall()
            )
        finally:
            con.close()
        assert len(before) == committed, "every committed result is in the store, nothing else is final"
        assert committed < 14, "the store should have filled up before the end"

        r2 = _archive(src, "--db", db, "--workers", "2", "--progress-interval", "0.5")
        assert r2.returncode == 0, r2.stderr
        after = _results(db)
        assert len(after) == 14 and all(v[:2] == ("done", "allow") for v in after.values())
        con = sqlite3.connect(db)
        try:
            kept = dict(con.execute("SELECT sha256, updated FROM results").fetchall())
        finally:
            con.close()
        assert all(kept[sha] == ts for sha, ts in before.items()), "results committed before the failure were redone"
        summary = summary_from_stderr(r2.stderr)
        assert summary is not None and summary["counts"]["scanned"] == 14 - committed
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---------------------------------------------------------------------------- (c) dedup, fingerprints


@pytest.mark.integration
def test_duplicates_scanned_once_and_fingerprints_rescan(corpus: Path, tmp_path: Path) -> None:
    """Two names for one content are scanned once; a copy or a rename later is not scanned
    again (list input, no worker even starts); another model manifest name rescans."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus / "a" / "clip01.mp4", src / "one.mp4")
    shutil.copy(corpus / "a" / "clip01.mp4", src / "one_again.mp4")
    shutil.copy(corpus / "a" / "b" / "flag0.mp4", src / "flag.mp4")
    db = tmp_path / "r.sqlite"
    s1 = run_archive(ArchiveOptions(db=str(db), source=str(src), workers=2, quiet=True))  # the API under the CLI
    assert s1.status == "complete" and s1.counts["scanned"] == 2 and s1.counts["processed"] == 3
    # the second name is either found done in the store or met while its twin is in flight
    # the second name is settled with its twin's outcome either way
    assert s1.counts["decisions"] == {"allow": 2, "block": 1} and s1.counts["files"]["done"] == {"allow": 2, "block": 1}

    # copy and rename, read through a list file that also names a missing file
    shutil.copy(src / "one.mp4", tmp_path / "copied.mp4")
    (src / "flag.mp4").rename(src / "renamed_flag.mp4")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# a list\n{tmp_path / 'copied.mp4'}\n{src / 'renamed_flag.mp4'}\n\n{tmp_path / 'gone.mp4'}\n")
    r2 = _archive(f"@{listing}", "--db", db, "--workers", "2", "--progress-interval", "0.5")
    assert r2.returncode == 3, r2.stderr  # the missing file
    s2 = summary_from_stderr(r2.stderr)
    assert s2 is not None
    assert s2["counts"]["scanned"] == 0 and s2["counts"]["already_in_store"] == {"done": 2}
    assert s2["counts"]["path_errors"] == {"NOT_FOUND": 1}
    assert '"event": "ready"' not in r2.stderr, "nothing to scan: no worker should start"
    with Store(db, create=False) as store:
        rows = {Path(r["path"]).name: r for r in iter_export(store)}
    assert rows["copied.mp4"]["decision"] == "allow" and rows["renamed_flag.mp4"]["decision"] == "block"
    assert rows["gone.mp4"]["state"] == "failed" and rows["gone.mp4"]["error_code"] == "NOT_FOUND"

    # the same model under another manifest name: a new models fingerprint, so a rescan
    from framescan.models import DEFAULT_MODEL, load_manifest

    base = json.loads(Path(load_manifest(DEFAULT_MODEL).source).read_text())
    base["name"] = "default-model-copy"
    manifest = tmp_path / "default-model-copy.json"
    manifest.write_text(json.dumps(base))
    s3 = run_archive(
        ArchiveOptions(db=str(db), source=str(src), workers=2, scan=ScanConfig(models=[str(manifest)]), quiet=True)
    )
    assert s3.counts["scanned"] == 2
    assert s3.fingerprints["models_fp"] != s1.fingerprints["models_fp"]
    assert s3.fingerprints["config_fp"] == s1.fingerprints["config_fp"]
    assert len(_results(db)) == 2
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*) FROM results").fetchone()[0] == 4, "old results are kept"
    finally:
        con.close()


def test_config_fingerprint_follows_policy_sampling_limits(tmp_path: Path) -> None:
    base = ScanConfig().fingerprint()
    assert base == ScanConfig(threads=1, batch_size=4).fingerprint(), "speed settings do not count"
    policy = tmp_path / "strict.json"
    policy.write_text(json.dumps({"name": "strict", "categories": {"sexual": {"review": 0.3, "block": 0.5}}}))
    other = [
        ScanConfig(policy=str(policy)).fingerprint(),
        ScanConfig(fps=1).fingerprint(),
        ScanConfig(limits=DEFAULT_LIMITS.updated(max_seconds_per_clip=30)).fingerprint(),
        ScanConfig(early_exit=True).fingerprint(),
    ]
    for fp in other:
        assert fp.models == base.models and fp.config != base.config
    assert len({fp.config for fp in other}) == len(other)


# ---------------------------------------------------------------------------- (d) quarantine, export


def test_quarantine_after_repeated_timeouts(corpus: Path, tmp_path: Path) -> None:
    """A per-clip time limit no scan can meet: every try is a TIMEOUT (the worker is killed and
    replaced); after 3 tries the item is quarantined, and a rerun leaves it alone."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(corpus / "a" / "clip02.mp4", src / "slow.mp4")
    db = tmp_path / "r.sqlite"
    opts = ArchiveOptions(
        db=str(db),
        source=str(src),
        workers=2,
        scan=ScanConfig(limits=DEFAULT_LIMITS.updated(max_seconds_per_clip=0.001)),
        quiet=True,
    )
    summary = run_archive(opts)
    assert summary.counts["quarantined"] == 1 and summary.counts["retried"] == 2
    assert summary.counts["errors"] == {"TIMEOUT": 1} and summary.counts["final_failures"] == 1
    con = sqlite3.connect(db)
    try:
        rows = con.execute("SELECT state, tries, error_code FROM results").fetchall()
    finally:
        con.close()
    assert rows == [("quarantined", 3, "TIMEOUT")]
    again = run_archive(opts)
    assert again.counts["scanned"] == 0 and again.counts["already_in_store"] == {"quarantined": 1}
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT state, tries FROM results").fetchall() == [("quarantined", 3)]
    finally:
        con.close()


@pytest.mark.integration
def test_export_formats_and_flagged(clean_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "all.jsonl"
    assert export(str(clean_db), "jsonl", str(out)) == 65
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert {r["state"] for r in rows} == {"done", "failed", "skipped"}
    by_name = {Path(r["path"]).name: r for r in rows}
    assert by_name["copy_of_clip07.mp4"]["sha256"] == by_name["clip07.mp4"]["sha256"]
    assert by_name["truncated.mp4"]["state"] == "failed" and by_name["truncated.mp4"]["error_code"]

    assert by_name["fake.mp4"]["state"] == "skipped" and by_name["fake.mp4"]["skip_reason"] == "not_video"
    assert by_name["outside.mp4"]["skip_reason"] == "symlink_outside"

    assert export(str(clean_db), "csv", str(tmp_path / "all.csv")) == 65
    with open(tmp_path / "all.csv", newline="") as f:
        crows = list(csv.DictReader(f))
    assert len(crows) == 65 and {r["path"] for r in crows} == {r["path"] for r in rows}

    with Store(clean_db, create=False) as store:
        flagged = list(iter_export(store, flagged=True))
    assert len(flagged) == N_FLAGGED + 1  # the flagged copy is listed under its own name too
    assert all(r["decision"] == "block" for r in flagged)
    scores = [r["max_score"] for r in flagged]
    assert scores == sorted(scores, reverse=True)
    for r in flagged:
        times = [e["time"] for e in r["evidence"]]
        assert times and all(0.0 <= t <= 2.0 for t in times) and times == sorted(times)
        assert r["segments"] and r["segments"][0]["category"] == "sexual"

    cli = subprocess.run(
        [*EXPORT, "--db", str(clean_db), "--flagged", "--format", "csv"], capture_output=True, text=True, check=False
    )
    assert cli.returncode == 0, cli.stderr
    assert len(list(csv.DictReader(cli.stdout.splitlines()))) == N_FLAGGED + 1

    try:
        import pyarrow.parquet as pq
    except ImportError:
        pq = None
    if pq is not None:
        assert export(str(clean_db), "parquet", str(tmp_path / "all.parquet")) == 65
        table = pq.read_table(tmp_path / "all.parquet")
        assert table.num_rows == 65 and "evidence" in table.schema.names


def test_parquet_without_pyarrow_is_a_clear_error(
    clean_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from framescan.errors import ConfigError

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ConfigError, match="parquet export needs pyarrow"):
        export(str(clean_db), "parquet", str(tmp_path / "x.parquet"))


# ---------------------------------------------------------------------------- discovery, store


def test_sniff_and_walk(tmp_path: Path) -> None:
    assert sniff_video(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 20)
    assert sniff_video(b"\x1a\x45\xdf\xa3" + b"\x00" * 20)
    assert sniff_video(b"RIFF\x00\x00\x00\x00AVI LIST")
    assert not sniff_video(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not sniff_video(b"hello world, not a video")
    assert not sniff_video(b"G" + b"x" * 300)  # a lone TS sync byte is not enough
    ts = bytearray(400)
    ts[0] = ts[188] = ts[376] = 0x47
    assert sniff_video(bytes(ts))

    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.MP4").write_bytes(b"x")
    (root / "b.txt").write_bytes(b"x")
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    os.symlink(outside, root / "out.mp4")
    os.symlink(root / "sub" / "a.MP4", root / "in.mp4")
    os.symlink(tmp_path, root / "dirlink")
    got = list(walk_folder(str(root), frozenset(DEFAULT_EXTENSIONS)))
    jobs = sorted(Path(j.path).name for j in got if isinstance(j, Job))
    skipped = sorted((s.reason, Path(s.path).name) for s in got if isinstance(s, Skipped))
    assert jobs == ["a.MP4", "in.mp4"]
    assert skipped == [("extension", "b.txt"), ("symlink_dir", "dirlink"), ("symlink_outside", "out.mp4")]


def test_store_full_raises_store_error(tmp_path: Path) -> None:
    """``PRAGMA max_page_count`` makes SQLite report SQLITE_FULL: ``StoreError(full=True)``,
    the failed transaction rolls back and earlier commits stay."""
    from framescan.archive import Outcome

    fp = ScanConfig().fingerprint()
    with Store(tmp_path / "s.sqlite") as store:
        store._db.execute(f"PRAGMA max_page_count={store._db.execute('PRAGMA page_count').fetchone()[0] + 8}")
        big = {"status": "complete", "blob": os.urandom(3000).hex()}
        n = 0
        with pytest.raises(StoreError) as info:
            for i in range(100):
                store.record(f"{i:064x}", fp, Outcome("done", "allow", "complete", report=big), 1, f"/x/{i}", 0)
                n += 1
        assert info.value.full and "database or disk is full" in info.value.message
        assert 0 < n < 100
        assert store.execute("SELECT count(*) FROM results")[0][0] == n


# ---------------------------------------------------------------------------- Ray


@pytest.mark.filterwarnings("ignore")
def test_ray_path_matches_local(corpus: Path, clean_db: Path, tmp_path: Path) -> None:
    """The same scans as Ray actors on a local Ray instance started here: same results."""
    ray = pytest.importorskip("ray", reason="ray is not installed (optional extra 'ray')")
    src = tmp_path / "src"
    src.mkdir()
    names = ["a/clip04.mp4", "a/clip33.mp4", "a/b/flag5.mp4", "truncated.mp4"]
    for n in names:
        shutil.copy(corpus / n, src / Path(n).name)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        opts = ArchiveOptions(
            db=str(tmp_path / "ray.sqlite"),
            source=str(src),
            workers=2,
            scan=ScanConfig(fps=4),
            ray=True,
            quiet=True,
        )
        summary = run_archive(opts)
    finally:
        ray.shutdown()
    assert summary.status == "complete" and summary.counts["scanned"] == 4
    got = _results(tmp_path / "ray.sqlite")
    want = _results(clean_db)
    assert got == {_sha(corpus / n): want[_sha(corpus / n)] for n in names}


def test_ray_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from framescan.archive import RayEngine
    from framescan.errors import ConfigError

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r"--ray needs the ray package.*pip install 'ray\[default\]'"):
        RayEngine(None, 2, ScanConfig()).connect()


def test_progress_bar_on_a_terminal_and_json_lines_otherwise() -> None:
    import io

    from framescan.archive import Progress

    snap = {
        "found": 10,
        "skipped": 2,
        "discovery_done": False,
        "processed": 4,
        "rate_clips_per_min": 120.0,
        "eta_s": 3.0,
        "decisions": {"block": 1, "allow": 3},
        "errors": {"TRUNCATED": 1},
    }
    tty = io.StringIO()
    bar = Progress(tty, tty=True)
    bar.update(snap, force=True)
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\r[#########") and "4/10+" in text and "120.0 clips/min" in text and "ETA 0:03" in text
    assert "block 1" in text and "failed 1" in text and text.endswith("\r")
    pipe = io.StringIO()
    lines = Progress(pipe, tty=False, interval=5.0)
    lines.update(snap, force=True)
    lines.update(snap)  # within the interval: nothing
    rows = [json.loads(x) for x in pipe.getvalue().splitlines()]
    assert len(rows) == 1 and rows[0]["event"] == "progress" and rows[0]["processed"] == 4


# ---------------------------------------------------------------------------- accounting, export columns, help


def _archive_on_tty(*args: str | Path, timeout: float = 240) -> tuple[int, str, str]:
    """Run ``framescan archive`` with stderr on a pseudo-terminal (the live bar): (rc, stdout, bar text)."""
    proc, bar = run_on_terminal([*ARCHIVE, *map(str, args)], timeout=timeout, env=_env())
    return proc.returncode, proc.stdout, bar


def _export_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([*EXPORT, "--db", str(db), *args], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.integration
def test_every_file_ends_in_one_named_state(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    """A folder (a clip, a fake .mp4, a text file) plus a list (a missing file, a listed text
    file): the summary is one line over the 5 files, the bar's total never shrinks, the store
    and the export name each file's state with its error code or skip reason; a rerun says the same."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(make_clip(width=160, height=120, seconds=1.0, fps=10), src / "real.mp4")
    (src / "fake.mp4").write_text("an .mp4 name, but text inside")
    (src / "notes.txt").write_text("not a clip")
    (tmp_path / "listed.mp4").write_text("listed: scanned, and fails")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{tmp_path / 'gone.mp4'}\n{tmp_path / 'listed.mp4'}\n")
    db = tmp_path / "r.sqlite"
    line = (
        "5 files: done 1 (allow 1), failed 2 (NOT_FOUND 1, UNSUPPORTED_FORMAT 1), "
        "skipped 2 (extension not selected 1, not a video 1)"
    )

    rc, out, bar = _archive_on_tty(src, "--list", listing, "--db", db, "--workers", "1")
    assert rc == 3, out + bar
    assert line in out.splitlines()[0], out
    shown = [(int(a), int(b), plus) for a, b, plus in re.findall(r"\] (\d+)/(\d+)(\+?) ", bar)]
    assert shown, bar
    totals = [b for _, b, _ in shown]
    assert totals == sorted(totals), f"the bar's total went backwards: {shown}"
    assert all(a <= b for a, b, _ in shown) and shown[-1] == (5, 5, ""), shown

    states = {
        Path(p).name: (skipped, code)
        for p, skipped, code in sqlite3.connect(db).execute("SELECT path, skipped, error_code FROM paths")
    }
    assert states == {
        "real.mp4": (None, None),
        "fake.mp4": ("not_video", None),
        "notes.txt": ("extension", None),
        "gone.mp4": (None, "NOT_FOUND"),
        "listed.mp4": (None, None),  # its content failed: the result says why
    }

    rows = {Path(r["path"]).name: r for r in map(json.loads, _export_cli(db).stdout.splitlines())}
    got = {n: (r["state"], r["decision"] or r["error_code"] or r["skip_reason"], r["tries"]) for n, r in rows.items()}
    assert got == {
        "real.mp4": ("done", "allow", None),
        "fake.mp4": ("skipped", "not_video", None),
        "notes.txt": ("skipped", "extension", None),
        "gone.mp4": ("failed", "NOT_FOUND", None),
        "listed.mp4": ("failed", "UNSUPPORTED_FORMAT", None),
    }
    crows = list(csv.DictReader(_export_cli(db, "--format", "csv").stdout.splitlines()))
    assert {Path(r["path"]).name: (r["state"], r["skip_reason"]) for r in crows} == {
        n: (r["state"], r["skip_reason"] or "") for n, r in rows.items()
    }
    assert _export_cli(db, "--flagged").stdout == "", "--flagged lists only block/review items"

    again = _archive(src, "--list", listing, "--db", db, "--workers", "1")
    assert again.returncode == 3 and line in again.stdout.splitlines()[0], again.stdout
    summary = summary_from_stderr(again.stderr)
    assert summary is not None and summary["counts"]["found"] == summary["counts"]["processed"] == 5
    assert summary["counts"]["files"] == {
        "total": 5,
        "done": {"allow": 1},
        "failed": {"NOT_FOUND": 1, "UNSUPPORTED_FORMAT": 1},
        "skipped": {"extension": 1, "not_video": 1},
    }


@pytest.mark.integration
def test_export_says_why_a_bank_match_flags(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    """A bank of a generated clip (``framescan hash`` + ``framescan bank add``) and an archive scan
    of the same clip: the export's ``reasons`` and ``known_content`` are the report's, and
    ``max_category`` is the bank's category (the one that decided), not the model's 0.0."""
    src = tmp_path / "src"
    src.mkdir()
    clip = src / "known.mp4"
    shutil.copy(make_clip(width=320, height=240, seconds=2, fps=10), clip)
    hashes = tmp_path / "known.vpdq.txt"
    banks = tmp_path / "banks.sqlite"
    for cmd in (
        ["hash", str(clip), "-o", str(hashes)],
        ["bank", "add", "terror", str(hashes), "--category", "extremism", "--action", "block", "--db", str(banks)],
    ):
        r = subprocess.run([sys.executable, "-m", "framescan", *cmd], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
    db = tmp_path / "r.sqlite"
    r = _archive(src, "--db", db, "--banks", banks, "--workers", "1", "-q")
    assert r.returncode == 0, r.stderr

    [row] = [json.loads(x) for x in _export_cli(db, "--reports").stdout.splitlines()]
    report = row["report"]
    assert row["decision"] == report["decision"] and row["decision"] in ("review", "block")
    assert row["reasons"] == report["reasons"] and any("'terror'" in x for x in row["reasons"]), row["reasons"]
    assert row["known_content"] == report["known_content"]["matches"]
    [match] = row["known_content"]
    assert match["bank"] == "terror" and match["item"] == "known.vpdq" and match["frames"]
    assert row["max_category"] == "extremism" == match["category"]
    assert report["categories"]["extremism"]["decision"] == row["decision"]

    [flagged] = [json.loads(x) for x in _export_cli(db, "--flagged").stdout.splitlines()]
    assert flagged["known_content"] == row["known_content"] and flagged["reasons"] == row["reasons"]
    [crow] = list(csv.DictReader(_export_cli(db, "--format", "csv").stdout.splitlines()))
    assert json.loads(crow["reasons"]) == row["reasons"] and json.loads(crow["known_content"]) == row["known_content"]
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (optional extra 'parquet')")
    _export_cli(db, "--format", "parquet", "-o", str(tmp_path / "x.parquet"))
    [prow] = pq.read_table(tmp_path / "x.parquet").to_pylist()
    assert prow["reasons"] == row["reasons"] and prow["known_content"] == row["known_content"]
    assert prow["max_category"] == "extremism" and prow["skip_reason"] is None


#: The store's first schema (user_version 1), as framescan wrote it before skipped files were stored.
_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE fingerprints (fp TEXT PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL, first_used REAL NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, started REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    models_fp TEXT NOT NULL, config_fp TEXT NOT NULL, source TEXT, engine TEXT, summary TEXT
);
CREATE TABLE paths (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, sha256 TEXT,
    error_code TEXT, error_message TEXT, updated REAL NOT NULL
);
CREATE TABLE results (
    sha256 TEXT NOT NULL, models_fp TEXT NOT NULL, config_fp TEXT NOT NULL, state TEXT NOT NULL,
    tries INTEGER NOT NULL DEFAULT 0, decision TEXT, status TEXT, error_code TEXT, error_message TEXT,
    max_score REAL, max_category TEXT, size INTEGER, source TEXT, report BLOB, seconds REAL, updated REAL NOT NULL,
    PRIMARY KEY (sha256, models_fp, config_fp)
) WITHOUT ROWID;
PRAGMA user_version=1;
"""


@pytest.mark.integration
def test_store_of_schema_1_is_upgraded(tmp_path: Path) -> None:
    """A store written by the previous schema opens for export and for a new run: ``skipped`` is
    added, and a bank-blocked result's ``max_category`` becomes the category that decided."""
    import zlib

    db = tmp_path / "old.sqlite"
    sha = "ab" * 32
    report = {
        "status": "complete",
        "decision": "block",
        "reasons": ["extremism: known content 'x' in bank 'terror' (block): 100% of hashed frames match"],
        "categories": {
            "sexual": {"signals": ["nudenet"], "score": 0.0, "decision": "allow"},
            "extremism": {"signals": ["bank:terror"], "score": 0.0, "decision": "block"},
        },
        "known_content": {"hashed_frames": 2, "bank_hashes": 2, "matches": [{"bank": "terror", "item": "x"}]},
    }
    con = sqlite3.connect(db)
    con.executescript(_SCHEMA_V1)
    con.execute("INSERT INTO runs VALUES (1, 0, 1, 'complete', 'm', 'c', '/src', 'local', NULL)")
    con.execute("INSERT INTO paths VALUES ('/src/a.mp4', 10, 1, ?, NULL, NULL, 1)", (sha,))
    con.execute(
        "INSERT INTO results VALUES (?, 'm', 'c', 'done', 0, 'block', 'complete', NULL, NULL, 0.0, 'sexual', 10, "
        "'/src/a.mp4', ?, 0.1, 1)",
        (sha, zlib.compress(json.dumps(report).encode())),
    )
    con.commit()
    con.close()

    [row] = [json.loads(x) for x in _export_cli(db).stdout.splitlines()]
    assert (row["state"], row["decision"], row["max_category"]) == ("done", "block", "extremism")
    assert row["reasons"] == report["reasons"] and row["known_content"] == [{"bank": "terror", "item": "x"}]
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
        assert con.execute("SELECT path, skipped FROM paths").fetchall() == [("/src/a.mp4", None)]
    finally:
        con.close()
    listing = tmp_path / "list.txt"
    listing.write_text(str(tmp_path / "gone.mp4") + "\n")
    r = _archive(f"@{listing}", "--db", db)
    assert r.returncode == 3 and "1 file: failed 1 (NOT_FOUND 1)" in r.stdout, r.stdout + r.stderr


ARCHIVE_OPTIONS = "--db --list --workers --ext --max-tries --retry-failed --rehash --progress-interval --max-store-mb"
EXPORT_OPTIONS = "--db --format --output --flagged --all-fingerprints --reports"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("command", "options"),
    [("archive", f"{ARCHIVE_OPTIONS} --ray --ray-ship-bytes --quiet".split()), ("export", EXPORT_OPTIONS.split())],
)
def test_help_is_plain_and_gives_every_default(command: str, options: list[str]) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "framescan", command, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 0, r.stderr
    assert "``" not in r.stdout, "raw reST markup in the help"
    entries: dict[str, str] = {}
    current = None
    for line in r.stdout.splitlines():
        stripped = line.strip()
        if line.startswith("  -"):
            current = stripped
            entries[current] = ""
            continue
        if current is not None and line.startswith(" " * 6) and stripped:
            entries[current] += " " + stripped
        else:
            current = None
    for opt in options:
        [entry] = [k + v for k, v in entries.items() if re.search(rf"(^|, ){re.escape(opt)}(?=[ ,]|$)", k)]
        assert "default" in entry or "required" in entry, f"{command} {opt}: {entry}"
