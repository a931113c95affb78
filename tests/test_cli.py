"""The command line, run as a real subprocess: verdicts, JSON, exit codes, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from terminal import run_on_terminal

from framescan.cli.main import EXIT_ALLOW, EXIT_BLOCK, EXIT_CONFIG, EXIT_ERROR, EXIT_REVIEW, EXIT_USAGE
from framescan.cli.scan import exit_code
from framescan.models import CATEGORIES
from framescan.report import Report


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framescan", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env=None if env is None else {**os.environ, **env},
    )


def one_line_usage_error(p: subprocess.CompletedProcess, says: str) -> None:
    """Exit 2, one line on stderr that says what is wrong, nothing scanned or printed on stdout."""
    assert p.returncode == EXIT_USAGE, (p.returncode, p.stdout, p.stderr)
    assert says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stdout == "", (p.stdout, p.stderr)


@pytest.mark.integration
def test_scan_prints_verdict_and_writes_json(short_flagged: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    p = run("scan", str(short_flagged), "--json", str(out))
    assert p.returncode == EXIT_BLOCK, p.stderr
    assert "BLOCK" in p.stdout and "sexual" in p.stdout and "segments:" in p.stdout
    assert "no signal configured" in p.stdout
    assert "\r" not in p.stderr, "progress bar drawn although stderr is not a terminal"
    assert "hint" not in p.stderr, "the signal hint is for a terminal, not for a pipe"
    report = json.loads(out.read_text())
    assert report["schema"] == "framescan.report/1" and report["decision"] == "block"
    assert report["models"][0]["sha256"] and report["timings"]["total"] > 0


@pytest.mark.integration
def test_clean_clip_exits_0_and_json_to_stdout(make_clip: Callable[..., Path]) -> None:
    clip = make_clip(width=320, height=240, seconds=2, fps=10)
    p = run("scan", str(clip), "--json", "-", "--every", "5")
    assert p.returncode == EXIT_ALLOW, p.stderr
    assert json.loads(p.stdout)["decision"] == "allow"


@pytest.mark.integration
@pytest.mark.parametrize(
    "content,code",
    [
        (None, "NOT_FOUND"),
        (b"", "EMPTY"),
        (b"<html>hello</html>", "UNSUPPORTED_FORMAT"),
        (b"\x00" * 5000, "UNSUPPORTED_FORMAT"),
    ],
    ids=["missing", "empty", "html", "zeros"],
)
def test_bad_input_is_a_clear_error_without_traceback(tmp_path: Path, content: bytes | None, code: str) -> None:
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    p = run("scan", str(path), "--json", str(tmp_path / "r.json"))
    assert p.returncode == EXIT_ERROR
    assert "Traceback" not in p.stderr + p.stdout
    assert f"[{code}]" in p.stdout + p.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["status"] == "error" and report["decision"] is None and report["error"]["code"] == code


@pytest.mark.integration
def test_several_clips_and_severity(short_flagged: Path, tmp_path: Path) -> None:
    p = run("scan", str(short_flagged), str(tmp_path / "missing.mp4"), "--json", str(tmp_path / "r.json"), "-q")
    assert p.returncode == EXIT_BLOCK  # block outranks an error
    assert p.stdout == ""
    reports = json.loads((tmp_path / "r.json").read_text())
    assert [r["status"] for r in reports] == ["complete", "error"]


def test_exit_code_order() -> None:
    assert exit_code(["allow", "allow"]) == EXIT_ALLOW
    assert exit_code(["allow", "review"]) == EXIT_REVIEW
    assert exit_code(["review", "error"]) == EXIT_ERROR
    assert exit_code(["error", "block", "allow"]) == EXIT_BLOCK


@pytest.mark.integration
def test_bad_model_and_policy_are_config_errors(short_flagged: Path, tmp_path: Path) -> None:
    p = run("scan", str(short_flagged), "--model", "no-such-model")
    assert p.returncode == EXIT_CONFIG and "no model named" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "policy.json"
    bad.write_text('{"categories": {"sexual": {"review": 0.9, "block": 0.1}}}')
    p = run("scan", str(short_flagged), "--policy", str(bad))
    assert p.returncode == EXIT_CONFIG and f"{bad}: category 'sexual': " in p.stderr and "review <= block" in p.stderr
    assert "CategoryRule(" not in p.stderr and "Traceback" not in p.stderr


@pytest.mark.integration
def test_policy_file_changes_the_decision(short_flagged: Path, tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.json"
    lenient.write_text('{"name": "lenient", "categories": {"sexual": {"review": 0.5, "block": 0.99}}}')
    p = run("scan", str(short_flagged), "--policy", str(lenient), "--json", "-")
    assert p.returncode == EXIT_REVIEW, p.stderr
    assert json.loads(p.stdout)["policy"]["name"] == "lenient"


@pytest.mark.integration
def test_models_lists_path_sha_and_both_licences() -> None:
    p = run("models")
    assert p.returncode == 0
    assert "nudenet-320n  (yolov8; feeds: sexual)" in p.stdout and "320n.onnx" in p.stdout
    assert "nudenet-320n-trim  (yolov8; feeds: sexual, the default)" in p.stdout
    assert "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f" in p.stdout
    assert "AGPL-3.0" in p.stdout and "MIT" in p.stdout


@pytest.mark.integration
def test_sample_then_scan(tmp_path: Path) -> None:
    clip = tmp_path / "s.mp4"
    p = run("sample", str(clip), "--flagged", "1", "2", "--seconds", "3", "--size", "320x568")
    assert p.returncode == 0 and clip.stat().st_size > 0
    p = run("scan", str(clip))
    assert p.returncode in (EXIT_BLOCK, EXIT_REVIEW), p.stdout + p.stderr


@pytest.mark.integration
def test_sample_preset_reaches_the_encoder(tmp_path: Path) -> None:
    """``--preset medium`` is x264's default: B-frames (decode order differs from presentation
    order), which ultrafast never writes."""
    import av

    def reordered(preset: str) -> bool:
        clip = tmp_path / f"{preset}.mp4"
        p = run("sample", str(clip), "--seconds", "1", "--size", "160x284", "--preset", preset)
        assert p.returncode == 0 and preset in p.stdout, p.stdout + p.stderr
        with av.open(str(clip)) as c:
            pts = [pk.pts for pk in c.demux(video=0) if pk.size]
        return pts != sorted(pts)

    assert reordered("medium") and not reordered("ultrafast")


@pytest.mark.integration
@pytest.mark.parametrize(
    "args,says",
    [
        (["--codec", "nosuchcodec"], "no such encoder"),
        (["--codec", "aac"], "not a video encoder"),
        (["--codec", "libvpx-vp9", "--preset", "ultrafast"], "--preset applies to libx264 and libx265"),
        (["--size", "0x0"], "--size must be even"),
        (["--size", "161x285"], "--size must be even"),
        (["--size", "720x"], "--size must be WIDTHxHEIGHT"),
        (["--codec", "h265"], "no such encoder"),
        (["--fps", "0"], "must be > 0"),
        (["--codec", "mpeg2video", "--fps", "7"], "cannot write"),  # MPEG-2 refuses 7 fps when it opens
    ],
)
def test_sample_refuses_what_it_cannot_write(tmp_path: Path, args: list[str], says: str) -> None:
    """Option values it cannot write are a usage error (exit 2, one line), and a file of that
    name already there is left as it was (nothing else is left in the directory)."""
    clip = tmp_path / "x.mkv"
    clip.write_bytes(b"keep me")
    p = run("sample", str(clip), "--seconds", "1", "--size", "160x284", *args)
    assert p.returncode == EXIT_USAGE and says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert clip.read_bytes() == b"keep me" and list(tmp_path.iterdir()) == [clip]


@pytest.mark.integration
def test_sample_into_a_missing_directory_creates_it(tmp_path: Path) -> None:
    out = tmp_path / "new" / "dir" / "x.mp4"
    p = run("sample", str(out), "--seconds", "1", "--size", "160x284")
    assert p.returncode == 0 and out.stat().st_size > 0, p.stderr


@pytest.mark.integration
def test_sample_writes_mjpeg(tmp_path: Path) -> None:
    clip = tmp_path / "m.mkv"
    p = run("sample", str(clip), "--seconds", "1", "--size", "160x284", "--codec", "mjpeg")
    assert p.returncode == 0, p.stderr
    assert json.loads(run("probe", str(clip)).stdout)["codec"] == "mjpeg"


@pytest.mark.integration
def test_probe_command(short_flagged: Path) -> None:
    p = run("probe", str(short_flagged))
    assert p.returncode == 0 and json.loads(p.stdout)["codec"] == "h264"


TOKENS = {"FRAMESCAN_TOKENS": "a-long-random-test-token:tenant"}


@pytest.mark.integration
@pytest.mark.parametrize(
    "args,says",
    [
        (["scan", "x.mp4", "--fps", "0"], "argument --fps: sampling fps must be > 0"),
        (["scan", "x.mp4", "--every", "0"], "argument --every:"),
        (["scan", "x.mp4", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
        (["scan", "x.mp4", "--limit", "max_pixels=0"], "limit max_pixels must be > 0"),
        (["scan", "x.mp4", "--limit", "max_pixel=10"], "unknown limits ['max_pixel']"),
        (["scan", "x.mp4", "--timeout", "0"], "argument --timeout:"),
        (["archive", "x", "--db", "r.sqlite", "--fps", "-1"], "argument --fps:"),
        (["submit", "x.mp4", "--fps", "0"], "argument --fps:"),
        (["serve", "--workers", "0"], "workers must be >= 1"),
        (["serve", "--fps", "99"], "fps must be in (0, 30"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_option_values_are_usage_errors(tmp_path: Path, args: list[str], says: str) -> None:
    """Exit 2 (not 4, which is for broken model, manifest, policy or token *files*), one line,
    before anything is loaded or scanned (x.mp4 does not exist: a scan would report it)."""
    p = run(*args, cwd=tmp_path, env=TOKENS)
    one_line_usage_error(p, says)
    assert list(tmp_path.iterdir()) == [], "nothing is written for a refused command line"


@pytest.mark.integration
@pytest.mark.parametrize("command", [["scan", "x.mp4"], ["archive", "src", "--db", "r.sqlite"], ["serve"]])
def test_lexicon_without_ocr_is_refused(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "src").mkdir()
    p = run(*command, "--lexicon", "words.txt", cwd=tmp_path, env=TOKENS)
    one_line_usage_error(p, "--lexicon is used only with --ocr")


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [
        ["scan", "missing.mp4", "--json", "out"],
        ["submit", "missing.mp4", "--json", "out", "--token", "t", "--url", "http://127.0.0.1:9"],
        ["export", "--db", "r.sqlite", "-o", "out"],
        ["hash", "missing.mp4", "-o", "out"],
        ["archive", "src", "--db", "out"],
        ["bank", "add", "b", "missing.mp4", "--category", "hate", "--action", "block", "--db", "out"],
        ["sample", "out", "--seconds", "1"],
    ],
    ids=lambda v: v[0],
)
def test_output_path_that_is_a_directory_is_refused_before_any_work(tmp_path: Path, args: list[str]) -> None:
    """Checked first: had the command run, missing.mp4 would be reported (exit 3) or the archive
    scanned before the write failed with a traceback."""
    (tmp_path / "out").mkdir()
    (tmp_path / "src").mkdir()
    p = run(*args, cwd=tmp_path)
    one_line_usage_error(p, "out: is a directory; give a file name")


@pytest.mark.integration
def test_output_path_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    p = run("scan", "missing.mp4", "--json", "notes.txt/r.json", cwd=tmp_path)
    one_line_usage_error(p, "--json notes.txt/r.json: cannot create the folder notes.txt")


@pytest.mark.integration
def test_output_paths_get_their_missing_folders(tmp_path: Path, make_clip: Callable[..., Path]) -> None:
    """scan --json, archive --db, export -o, hash -o and bank add --db all create missing parent
    folders (as archive --db and bank add --db always did)."""
    p = run("scan", "missing.mp4", "--json", "a/b/r.json", cwd=tmp_path)
    assert p.returncode == EXIT_ERROR, p.stderr
    assert json.loads((tmp_path / "a/b/r.json").read_text())["error"]["code"] == "NOT_FOUND"
    (tmp_path / "src").mkdir()
    p = run("archive", "src", "--db", "c/r.sqlite", "-q", cwd=tmp_path)
    assert p.returncode == EXIT_ALLOW and (tmp_path / "c/r.sqlite").is_file(), p.stderr
    p = run("export", "--db", "c/r.sqlite", "-o", "d/e/x.jsonl", cwd=tmp_path)
    assert p.returncode == 0 and (tmp_path / "d/e/x.jsonl").is_file(), p.stderr
    clip = make_clip(width=64, height=64, seconds=1, fps=4)
    p = run("hash", str(clip), "-o", "g/h/x.txt", cwd=tmp_path)
    assert p.returncode == 0 and (tmp_path / "g/h/x.txt").read_text().strip(), p.stderr
    # bank add writes the database (list/show/remove only read it: a mistyped --db creates nothing)
    p = run(
        "bank",
        "add",
        "b",
        "g/h/x.txt",
        "--category",
        "hate",
        "--action",
        "review",
        "--db",
        "f/banks.sqlite",
        cwd=tmp_path,
    )
    assert p.returncode == 0 and (tmp_path / "f/banks.sqlite").is_file(), p.stderr


@pytest.mark.integration
def test_scanning_a_directory_points_to_archive(tmp_path: Path) -> None:
    p = run("scan", str(tmp_path), "-q")
    assert p.returncode == EXIT_ERROR and "Traceback" not in p.stderr
    assert f"{tmp_path}: is a directory" in p.stderr and "framescan archive" in p.stderr, p.stderr


def _report(signals: dict[str, list[str]]) -> Report:
    from framescan.report import CategoryResult

    cats = {c: CategoryResult(c, signals.get(c, [])) for c in CATEGORIES}
    return Report(source="x", status="complete", decision="allow", categories=cats)


def test_signal_hint_names_what_is_missing_and_how_to_add_it() -> None:
    from framescan.cli.scan import signal_hint

    default = _report({"sexual": ["nudenet-320n-trim"]})
    hint = signal_hint([default])
    assert hint is not None and "\n" not in hint
    assert "no signal configured for violence, hate, bullying, extremism" in hint
    assert "--all-signals" in hint and "--ocr" in hint and "framescan bank add" in hint
    ocr = _report({"sexual": ["m"], "hate": ["ocr"], "bullying": ["ocr"], "extremism": ["ocr"]})
    hint = signal_hint([ocr])
    assert hint is not None and "for violence:" in hint and "--ocr" not in hint
    everything = _report({c: ["m"] for c in CATEGORIES})
    assert signal_hint([everything]) is None
    assert signal_hint([Report.from_error("x", {"code": "NOT_FOUND", "message": "x: no such file"})]) is None


@pytest.mark.integration
def test_signal_hint_on_a_terminal_only(make_clip: Callable[..., Path]) -> None:
    """Drawn on stderr when it is a terminal (a pseudo-terminal here); test_scan_prints_verdict_and_writes_json
    checks that it is absent when stderr is a pipe."""
    clip = make_clip(width=64, height=64, seconds=1, fps=4)
    proc, err = run_on_terminal([sys.executable, "-m", "framescan", "scan", str(clip), "--no-isolate"], timeout=300)
    assert proc.returncode == EXIT_ALLOW, err
    assert "no signal configured" in proc.stdout
    lines = [line for line in err.splitlines() if "hint:" in line]
    assert len(lines) == 1 and "--all-signals" in lines[0] and "--ocr" in lines[0], err


@pytest.mark.integration
@pytest.mark.parametrize("command", [[], ["scan"], ["probe"], ["models"], ["serve"], ["submit"]])
def test_help_is_plain_text(command: list[str]) -> None:
    p = run(*command, "--help")
    assert p.returncode == 0 and "``" not in p.stdout, p.stdout


@pytest.mark.integration
def test_help_tells_exit_codes_and_defaults() -> None:
    for command in ([], ["scan"], ["submit"]):
        text = run(*command, "--help").stdout
        assert "exit codes:" in text and "20   at least one clip is blocked" in text, text
    assert "(default: $FRAMESCAN_URL, else http://127.0.0.1:8080)" in " ".join(run("submit", "--help").stdout.split())
    serve = " ".join(run("serve", "--help").stdout.split())
    assert "default 512 MiB, where 'framescan scan' allows 2 GiB" in serve and "= max_file_bytes" not in serve
