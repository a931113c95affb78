"""The command line, run as a real subprocess: verdicts, JSON, exit codes, clean errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framescan.cli.main import EXIT_ALLOW, EXIT_BLOCK, EXIT_CONFIG, EXIT_ERROR, EXIT_REVIEW
from framescan.cli.scan import exit_code


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "framescan", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_scan_prints_verdict_and_writes_json(short_flagged: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    p = run("scan", str(short_flagged), "--json", str(out))
    assert p.returncode == EXIT_BLOCK, p.stderr
    assert "BLOCK" in p.stdout and "sexual" in p.stdout and "segments:" in p.stdout
    assert "no signal configured" in p.stdout
    assert "\r" not in p.stderr, "progress bar drawn although stderr is not a terminal"
    report = json.loads(out.read_text())
    assert report["schema"] == "framescan.report/1" and report["decision"] == "block"
    assert report["models"][0]["sha256"] and report["timings"]["total"] > 0


def test_clean_clip_exits_0_and_json_to_stdout(tmp_path: Path) -> None:
    from framescan.samples import write_clip

    clip = write_clip(tmp_path / "clean.mp4", width=320, height=240, seconds=2, fps=10)
    p = run("scan", str(clip), "--json", "-", "--every", "5")
    assert p.returncode == EXIT_ALLOW, p.stderr
    assert json.loads(p.stdout)["decision"] == "allow"


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


def test_bad_model_and_policy_are_config_errors(short_flagged: Path, tmp_path: Path) -> None:
    p = run("scan", str(short_flagged), "--model", "no-such-model")
    assert p.returncode == EXIT_CONFIG and "no model named" in p.stderr and "Traceback" not in p.stderr
    bad = tmp_path / "policy.json"
    bad.write_text('{"categories": {"sexual": {"review": 0.9, "block": 0.1}}}')
    p = run("scan", str(short_flagged), "--policy", str(bad))
    assert p.returncode == EXIT_CONFIG and f"{bad}: category 'sexual': " in p.stderr and "review <= block" in p.stderr
    assert "CategoryRule(" not in p.stderr and "Traceback" not in p.stderr


def test_policy_file_changes_the_decision(short_flagged: Path, tmp_path: Path) -> None:
    lenient = tmp_path / "lenient.json"
    lenient.write_text('{"name": "lenient", "categories": {"sexual": {"review": 0.5, "block": 0.99}}}')
    p = run("scan", str(short_flagged), "--policy", str(lenient), "--json", "-")
    assert p.returncode == EXIT_REVIEW, p.stderr
    assert json.loads(p.stdout)["policy"]["name"] == "lenient"


def test_models_lists_path_sha_and_both_licences() -> None:
    p = run("models")
    assert p.returncode == 0
    assert "nudenet-320n  (yolov8; feeds: sexual)" in p.stdout and "320n.onnx" in p.stdout
    assert "nudenet-320n-trim  (yolov8; feeds: sexual, the default)" in p.stdout
    assert "c15d8273adad2d0a92f014cc69ab2d6c311a06777a55545f2c4eb46f51911f0f" in p.stdout
    assert "AGPL-3.0" in p.stdout and "MIT" in p.stdout


def test_sample_then_scan(tmp_path: Path) -> None:
    clip = tmp_path / "s.mp4"
    p = run("sample", str(clip), "--flagged", "1", "2", "--seconds", "3", "--size", "320x568")
    assert p.returncode == 0 and clip.stat().st_size > 0
    p = run("scan", str(clip))
    assert p.returncode in (EXIT_BLOCK, EXIT_REVIEW), p.stdout + p.stderr


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


@pytest.mark.parametrize(
    "args,says",
    [
        (["--codec", "nosuchcodec"], "no such encoder"),
        (["--codec", "aac"], "not a video encoder"),
        (["--codec", "libvpx-vp9", "--preset", "ultrafast"], "--preset applies to libx264 and libx265"),
        (["--size", "0x0"], "--size must be even"),
        (["--size", "161x285"], "--size must be even"),
        (["--fps", "0"], "must be > 0"),
        (["--codec", "mpeg2video", "--fps", "7"], "cannot write"),  # MPEG-2 refuses 7 fps when it opens
    ],
)
def test_sample_refuses_what_it_cannot_write(tmp_path: Path, args: list[str], says: str) -> None:
    """A clear CONFIG error, no traceback, and a file of that name already there is left as it was
    (nothing else is left in the directory)."""
    clip = tmp_path / "x.mkv"
    clip.write_bytes(b"keep me")
    p = run("sample", str(clip), "--seconds", "1", "--size", "160x284", *args)
    assert p.returncode == EXIT_CONFIG and says in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert clip.read_bytes() == b"keep me" and list(tmp_path.iterdir()) == [clip]


def test_sample_into_a_missing_directory(tmp_path: Path) -> None:
    p = run("sample", str(tmp_path / "nope" / "x.mp4"), "--seconds", "1", "--size", "160x284")
    assert p.returncode == EXIT_CONFIG and "does not exist" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_sample_writes_mjpeg(tmp_path: Path) -> None:
    clip = tmp_path / "m.mkv"
    p = run("sample", str(clip), "--seconds", "1", "--size", "160x284", "--codec", "mjpeg")
    assert p.returncode == 0, p.stderr
    assert json.loads(run("probe", str(clip)).stdout)["codec"] == "mjpeg"


def test_probe_command(short_flagged: Path) -> None:
    p = run("probe", str(short_flagged))
    assert p.returncode == 0 and json.loads(p.stdout)["codec"] == "h264"
