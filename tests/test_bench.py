"""``framescan bench``: the quick configuration runs end to end and its report has every
field with sane values. Never asserts on speed (the machine is shared and noisy)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from framescan import bench
from framescan.cli import bench as cli_bench
from framescan.config import ScanConfig
from framescan.models import DEFAULT_MODEL, load_manifest
from framescan.sample import FpsSampler

if TYPE_CHECKING:
    from framescan.pipeline import Scanner

pytest.importorskip("cv2")
pytest.importorskip("nudenet")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="framescan")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_bench.add_parser(sub)
    args = parser.parse_args(["bench", *argv])
    args.command_line = "framescan bench " + " ".join(argv)
    return args


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Path, str]:
    """One quick run through the real entry point (tiny clip, fps1 and all, 1 repeat), shared by the
    tests below: the report, its path, the chart's path and what the command printed."""
    tmp = tmp_path_factory.mktemp("bench")
    out, chart = tmp / "bench.json", tmp / "bench.png"
    argv = ["--quick", "-q", "--clip-dir", str(tmp / "clips"), "--json", str(out), "--chart", str(chart)]
    p = subprocess.run([sys.executable, "-m", "framescan", "bench", *argv], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    return json.loads(out.read_text()), out, chart, p.stdout


def test_quick_report_fields(quick: tuple[dict, Path, Path, str]) -> None:
    report, _, _, _ = quick
    assert report["schema"] == bench.SCHEMA
    assert report["command"].startswith("framescan bench")
    dev = report["device"]
    assert dev["cpu"] and dev["cores"] >= 1 and dev["cores_available"] >= 1
    for pkg in ("av", "numba", "onnxruntime", "numpy"):
        assert dev["versions"][pkg], pkg
    assert "CPUExecutionProvider" in dev["ort_providers_used"]
    assert report["settings"]["repeats"] == 1
    assert not report["warnings"] or all("failed" not in w for w in report["warnings"])
    assert all(r["ok"] for r in report["runs"])
    names = [c["name"] for c in report["configs"]]
    assert names == ["240x426 fps1", "240x426 all"]
    for cfg in report["configs"]:
        for impl in bench.IMPLS:
            s = cfg[impl]
            assert s["ok_runs"] == 1
            assert set(s["stages_s"]) == set(bench.STAGES)
            assert all(s["stages_s"][k]["median"] >= 0 for k in bench.STAGES)
            assert s["stages_s"]["infer"]["median"] > 0
            assert s["total_s"]["median"] > 0 and s["total_s"]["min"] <= s["total_s"]["max"]
            assert s["per_frame_ms"]["median"] > 0 and s["scored_fps"]["median"] > 0
            assert s["latency_ms"]["n"] == s["scored_frames"]
            assert 0 < s["latency_ms"]["p50"] <= s["latency_ms"]["p95"]
            assert s["cold_start_s"]["median"] > 0 and s["peak_rss_mb"]["median"] > 50
            assert s["efficiency"]["median"] > 0 and s["cpu_s"]["median"] > 0
        # the same sampling on both sides: 2 s at 10 fps -> 2 frames at 1 fps, 20 at all
        expected = 2 if cfg["mode"] == "fps1" else 20
        assert cfg["framescan"]["scored_frames"] == cfg["naive"]["scored_frames"] == expected
        assert cfg["naive"]["decoded_frames"] == 20  # cv2 reads every frame
        # framescan decodes only what the samples need (at 1 fps: up to the last sample, 1.0 s)
        assert cfg["framescan"]["decoded_frames"] == (11 if cfg["mode"] == "fps1" else 20)
        ratio = cfg["ratio"]
        for key in ("speedup", "per_frame", "peak_rss", "cold_start"):
            assert ratio[key] > 0, key
        ag = cfg["agreement"]
        assert ag["checked"] and isinstance(ag["agree"], bool) and ag["same_sampled_count"]
        assert 0.0 <= ag["jaccard"] <= 1.0
    assert report["configs"][0]["framescan"]["threads"]["batch_size"] >= 1
    assert report["configs"][0]["framescan"]["models"] == [DEFAULT_MODEL]  # recorded, also for the default
    # a smoke run's tiny clips say nothing about the targets: none is judged
    assert report["settings"]["quick"] is True and report["targets"] == []


def test_quick_prints_no_target_verdict_and_no_none(quick: tuple[dict, Path, Path, str]) -> None:
    """``bench --quick`` is a smoke run: it says the targets are not judged, gives no MET/MISS
    verdict and never prints a Python ``None``."""
    report, _, _, printed = quick
    assert "240x426 fps1" in printed and "targets: not judged" in printed
    assert "[MISS]" not in printed and "[MET" not in printed and "[n/a" not in printed
    assert "None" not in printed
    # the same runs judged as a full run: the 720x1280 targets were not run, said so without a None
    full = {**report, "settings": {**report["settings"], "quick": False}}
    full["targets"] = bench.evaluate_targets(report["configs"])
    by_id = {t["id"]: t for t in full["targets"]}
    assert by_id["speedup_720_fps1"]["value"] is None and by_id["speedup_720_fps1"]["met"] is None
    assert by_id["speedup_720_fps1"]["note"] == bench.NOT_RUN
    text = bench.render_table(full)
    assert "None" not in text
    not_run = [ln for ln in text.split("\ntargets:\n")[1].splitlines() if ln.startswith("  [n/a ] 720x1280")]
    assert not_run and all(ln.endswith(bench.NOT_RUN) and ": - (target" in ln for ln in not_run), not_run


def test_quick_outputs(quick: tuple[dict, Path, Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    report, out, chart, _ = quick
    try:
        import matplotlib  # noqa: F401

        assert chart.stat().st_size > 1000
    except ImportError:
        assert not chart.exists()
    text = bench.render_table(report)
    assert "240x426 fps1" in text and "naive/framescan" in text and "targets: not judged" in text
    assert cli_bench.run(_parse(["--compare", str(out), str(out)])) == 0
    cmp = capsys.readouterr().out
    assert "240x426 all" in cmp and "framescan total s" in cmp and "1.00x" in cmp


def test_sexual_labels_match_the_manifest() -> None:
    for name in (DEFAULT_MODEL, "nudenet-320n", "nudenet-320n-int8", "nudenet-320n-int8-trim"):
        m = load_manifest(name)
        assert {lab.name for lab in m.labels if lab.category == "sexual"} == bench.SEXUAL_LABELS, name


def test_naive_sampler_matches_framescan() -> None:
    """The naive child's copy of the fps rule keeps exactly the frames framescan keeps
    (constant and variable frame rate)."""
    cfr = [i / 30 for i in range(300)]
    vfr = [0.0, 0.04, 0.5, 0.99, 1.0, 1.7, 3.2, 3.21, 4.0, 4.5, 6.9, 7.0001]
    for fps in (1.0, 2.0, 0.5):
        for times in (cfr, vfr):
            ours = bench.NaiveSampler(bench.Mode.parse(f"fps{fps:g}"))
            theirs = FpsSampler(fps)
            kept = [ours.keep(i, t) for i, t in enumerate(times)]
            assert kept == [theirs.keep(i, t, False) for i, t in enumerate(times)], (fps, times)


def test_modes_sizes_and_stats() -> None:
    assert bench.Mode.parse("fps1").scan_config() == ScanConfig(fps=1.0)
    assert bench.Mode.parse("all").scan_config() == ScanConfig(all_frames=True)
    assert bench.Mode.parse("every5").scan_config() == ScanConfig(every=5)
    with pytest.raises(bench.BenchError):
        bench.Mode.parse("fast")
    # the model suffixes: neither is the default model (trimmed canvas)
    models = {m: bench.Mode.parse(m).model for m in ("all", "all+int8", "all+square", "all+int8+square")}
    assert models == {
        "all": None,
        "all+int8": "nudenet-320n-int8-trim",
        "all+square": "nudenet-320n",
        "all+int8+square": "nudenet-320n-int8",
    }
    for name in filter(None, models.values()):
        assert load_manifest(name).input.trim_multiple == (32 if name.endswith("-trim") else 0), name
    early = bench.Mode.parse("fps2+square+early")
    assert early.early_exit and early.model == "nudenet-320n" and early.without_early == "fps2+square"
    with pytest.raises(bench.BenchError):
        bench.Mode.parse("fps1+trim")  # the trimmed canvas is the default: no suffix for it
    assert bench.parse_size("720x1280") == (720, 1280)
    with pytest.raises(bench.BenchError):
        bench.parse_size("720")
    assert bench.stat([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "n": 3}
    assert bench.stat([]) is None
    assert bench.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert bench.percentile([5.0], 95) == 5.0
    busy, waited = bench.wait_for_idle(0.0, window=0.05)
    assert waited >= 0.05 and (busy is None or busy >= 0)


def test_compare_detections() -> None:
    fs = {"detections": [{"time": 6.0, "labels": ["BUTTOCKS_EXPOSED"]}, {"time": 7.0, "labels": ["ANUS_EXPOSED"]}],
          "scored_frames": 15}  # fmt: skip
    nv = {"detections": [{"time": 6.0001, "labels": ["BUTTOCKS_EXPOSED"]}, {"time": 9.0, "labels": ["ANUS_EXPOSED"]}],
          "scored_frames": 15}  # fmt: skip
    ag = bench.compare_detections(fs, nv, 1 / 30)
    assert not ag["agree"] and ag["both"] == [6.0] and ag["only_framescan"] == [7.0] and ag["only_naive"] == [9.0]
    assert ag["jaccard"] == pytest.approx(1 / 3)
    assert bench.compare_detections(fs, fs, 1 / 30)["agree"]
    assert not bench.compare_detections({**fs, "evidence_truncated": True}, nv, 1 / 30)["checked"]


def test_clean_mode_runs_on_a_clip_without_flagged_content(tmp_path: Path, scanner_for: Callable[..., Scanner]) -> None:
    """``+clean``: the same sampling on a generated clip with no flagged shot (the standard
    matrix has ``720x1280 adaptive+clean``), judged against the same target as the flagged clip."""
    clean = bench.Mode.parse("adaptive+clean")
    assert clean.clean and clean.adaptive and clean.scan_config() == ScanConfig(adaptive=True)
    assert ("720x1280", "adaptive+clean") in bench.DEFAULT_MATRIX
    with pytest.raises(bench.BenchError):
        bench.Mode.parse("fps2+early+clean")  # early exit needs a flagged clip
    opts = bench.BenchOptions(quick=True, modes=["adaptive", "adaptive+clean"], clip_dir=str(tmp_path))
    flagged, plain = bench.build_configs(opts)
    assert flagged.flagged and plain.flagged is None and flagged.clip != plain.clip
    assert plain.clip.endswith("-clean.mp4") and plain.name.endswith("adaptive+clean")
    s = scanner_for(fps=2, banks=False)
    assert s.scan(plain.clip).decision == "allow"
    assert s.scan(flagged.clip).decision != "allow"
    with pytest.raises(bench.BenchError):  # --clips: the given clip is used as it is
        bench.build_configs(bench.BenchOptions(clips=[plain.clip], modes=["fps1+clean"]))

    def cfg(mode: str, speedup: float) -> dict:
        quiet = {"median": speedup, "min": speedup, "max": speedup, "n": 3}
        return {
            "name": mode,
            "width": 720,
            "height": 1280,
            "mode": mode,
            "seconds": 15.0,
            "ratio": {"speedup_quiet": quiet},
        }

    rows = {r["id"]: r for r in bench.evaluate_targets([cfg("adaptive", 4.0), cfg("adaptive+clean", 8.5)])}
    assert rows["speedup_720_adaptive"]["met"] is False
    assert rows["speedup_720_adaptive+clean"]["met"] is True
    assert "without flagged content" in rows["speedup_720_adaptive+clean"]["description"]


def test_upload_clips_are_the_configurations(tmp_path: Path) -> None:
    """``--upload``: one configuration per upload-like clip and mode, reusing clips already made
    (stand-ins here: encoding the set takes minutes; ``ensure_upload_clip`` only checks the name)."""
    from framescan.bench.clips import UPLOAD_CLIPS

    for spec in UPLOAD_CLIPS:
        (tmp_path / spec.filename).write_bytes(b"stand-in")
    opts = bench.BenchOptions(upload=True, modes=["fps1", "fps2"], clip_dir=str(tmp_path))
    configs = bench.build_configs(opts)
    assert len(configs) == 2 * len(UPLOAD_CLIPS)
    assert {Path(c.clip).name for c in configs} == {s.filename for s in UPLOAD_CLIPS}
    assert {c.mode.name for c in configs} == {"fps1", "fps2"}
    assert any(s.codec == "libx265" for s in UPLOAD_CLIPS) and any(s.gop >= 240 for s in UPLOAD_CLIPS)
    with pytest.raises(bench.BenchError, match="give one of them"):
        bench.BenchOptions(upload=True, clips=["a.mp4"])
    with pytest.raises(bench.BenchError, match="unknown profile"):
        bench.BenchOptions(profile="desktop")


def test_mobile_profile_restricts_both_sides() -> None:
    from framescan.bench.options import PROFILES
    from framescan.bench.run import cpu_prefix

    mobile = PROFILES["mobile"]
    assert mobile["threads"] == mobile["decode_threads"] == mobile["cores"] == 1 and mobile["int8"]
    prefix = cpu_prefix(1)
    if prefix:  # taskset is there: the child really runs on one CPU
        out = subprocess.run([*prefix, sys.executable, "-c", "import os; print(len(os.sched_getaffinity(0)))"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert out.strip() == "1"
    assert cpu_prefix(None) == []
