"""framescan eval on a tiny labelled set (3 positives, 3 negatives) scanned for real through the
archive: every figure against values worked out by hand; --rescore against a full rerun of the
scan under the same policy; --suggest-policy applied with --policy meets its target."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framescan.cli.main import main
from framescan.eval.manifest import load_set
from framescan.eval.metrics import Row, category_figures
from framescan.eval.rescore import Rescorer, of_report
from framescan.eval.run import evaluate
from framescan.policy import parse_policy

SIZE = {"width": 320, "height": 480, "fps": 10}
#: name -> (label, seconds, colorwheel shown, labelled segment). A: segment starts off the 2 fps
#: grid (1.2 s: first sampled frame in it at 1.5 s, a 0.3 s delay); C: labelled positive with
#: nothing to see (a miss); D: labelled negative showing the stand-in (a false flag).
CLIPS = {
    "A": (True, 3.0, (1.2, 2.6), [[1.2, 2.6]]),
    "B": (True, 3.0, (0.5, 2.0), [[0.5, 2.0]]),
    "C": (True, 2.5, None, None),
    "D": (False, 3.5, (1.0, 2.5), None),
    "E": (False, 3.0, None, None),
    "F": (False, 4.0, None, None),
}
#: every hit reviews, none blocks (the default policy blocks the stand-in)
POLICY_P = {"name": "p", "categories": {"sexual": {"review": 0.3, "block": 0.9, "min_block_frames": 1}}}


@pytest.fixture(scope="module")
def tiny(make_clip: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("evalset")
    lines = []
    paths = {}
    for name, (label, seconds, flagged, segs) in CLIPS.items():
        kw = {"flagged": flagged} if flagged else {}
        path = make_clip(seconds=seconds, **SIZE, **kw)
        paths[name] = str(path)
        row: dict[str, Any] = {"path": str(path), "sexual": label}
        if segs:
            row["sexual_segments"] = segs
        lines.append(json.dumps(row))
    manifest = root / "set.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    (root / "p.json").write_text(json.dumps(POLICY_P))
    out = root / "full.json"
    code = main(["eval", str(manifest), "--no-banks", "--workers", "1", "-q", "--json", str(out)])
    return {"root": root, "manifest": manifest, "paths": paths, "code": code, "full": json.loads(out.read_text())}


def _eval(tiny: dict[str, Any], *args: str) -> tuple[int, dict[str, Any]]:
    out = tiny["root"] / "out.json"
    code = main(["eval", str(tiny["manifest"]), "--no-banks", "-q", "--json", str(out), *args])
    return code, json.loads(out.read_text())


def test_every_figure_by_hand(tiny: dict[str, Any]) -> None:
    assert tiny["code"] == 0
    r = tiny["full"]
    assert r["errors"] == {} and r["clips"] == 6 and r["scanned_now"] == 6
    f = r["categories"]["sexual"]
    name = {v: k for k, v in tiny["paths"].items()}
    score = {name[c["path"]]: c["score"] for c in f["clips"]}
    decision = {name[c["path"]]: c["decision"] for c in f["clips"]}
    # the stand-in scores clear of the block threshold on every frame; clean clips score nothing
    assert all(score[n] >= 0.6 for n in "ABD") and all(score[n] < 0.4 for n in "CEF")
    assert decision == {"A": "block", "B": "block", "C": "allow", "D": "block", "E": "allow", "F": "allow"}
    # A, B found; C missed; D falsely flagged (blocked); E, F clean
    assert (f["tp"], f["fn"], f["fp"], f["tn"]) == (2, 1, 1, 2)
    assert (f["positives"], f["negatives"], f["false_reviews"], f["false_blocks"]) == (3, 3, 0, 1)
    assert f["precision"] == f["recall"] == f["f1"] == round(2 / 3, 4)
    assert f["false_flag_rate"] == f["false_block_rate"] == round(1 / 3, 4)
    assert f["false_review_rate"] == 0.0
    assert f["false_flags_per_100_clean"] == pytest.approx(100 / 3, abs=1e-3)
    assert f["clean_hours"] == round((3.5 + 3.0 + 4.0) / 3600, 4)
    assert f["false_flags_per_clean_hour"] == pytest.approx(3600 / 10.5, rel=1e-3)
    # segments: both labelled segments found; A's detection 0.3 s late (2 fps grid), B's at once
    assert (f["labelled_segments"], f["segments_found"], f["segment_recall"]) == (2, 2, 1.0)
    assert f["detection_delay_s"]["values"] == [0.0, 0.3]
    assert f["detection_delay_s"]["median"] == 0.15 and f["detection_delay_s"]["max"] == 0.3
    # ROC AUC by pairs: A and B beat E, F (4); C ties E, F (2 x 0.5) and loses to D; A, B vs D by score
    pairs = 4 + 1 + sum(1.0 if score[p] > score["D"] else 0.5 if score[p] == score["D"] else 0.0 for p in "AB")
    assert f["roc_auc"] == round(pairs / 9, 4)
    # average precision: walk the distinct scores down, recall gained x precision there
    ranked = sorted({score[n] for n in score}, reverse=True)
    ap, last = 0.0, 0.0
    for t in ranked:
        flagged = [n for n in score if score[n] >= t]
        tp = sum(n in "ABC" for n in flagged)
        ap += (tp / 3 - last) * tp / len(flagged)
        last = tp / 3
    assert f["average_precision"] == round(ap, 4)
    # the signal behind the false flag (while the stand-in shows) and the miss (nothing scored)
    why = {(a["kind"], name[a["path"]]): a for a in r["attribution"]}
    assert set(why) == {("false_flag", "D"), ("miss", "C")}
    fp = why[("false_flag", "D")]
    assert fp["signal"].startswith("nudenet-320n-trim:") and fp["score"] == score["D"] and 1.0 <= fp["time"] < 2.5
    assert why[("miss", "C")]["signal"] is None and why[("miss", "C")]["decision"] == "allow"
    # intervals: seeded, inside [0, 1], around the figure
    for rate, ci in f["ci95"].items():
        assert 0.0 <= ci[0] <= f[rate] <= ci[1] <= 1.0, rate


def test_rerun_scans_nothing_and_rescore_equals_a_full_rerun(tiny: dict[str, Any], scanner_for) -> None:
    code, again = _eval(tiny)
    assert code == 0 and again["scanned_now"] == 0 and again["categories"] == tiny["full"]["categories"]
    md, charts = tiny["root"] / "p.md", tiny["root"] / "charts"
    code, res = _eval(
        tiny, "--rescore", "--policy", str(tiny["root"] / "p.json"), "--markdown", str(md), "--charts", str(charts)
    )
    assert code == 0 and res["mode"] == "rescore" and res["scanned_now"] == 0
    assert "| sexual | 3 | 3 | 2 | 1 | 1 |" in md.read_text() and "## False flags and misses" in md.read_text()
    assert all((charts / n).read_bytes().startswith(b"\x89PNG") for n in ("pr.png", "scores.png"))
    f = res["categories"]["sexual"]
    assert (f["false_reviews"], f["false_blocks"], f["tp"], f["fp"]) == (1, 0, 2, 1)  # P reviews, never blocks
    # the full rerun: every clip scanned again by a scanner under P, decided by the scan itself
    policy = parse_policy(POLICY_P)
    scanner = scanner_for(policy=policy, timeline=True, banks=False, threads=2)
    ls = load_set(tiny["manifest"])
    reports = {it.path: scanner.scan(it.path).to_dict() for it in ls.items}
    index = scanner.signal_index
    full = evaluate(ls, reports, {p: of_report(r, index) for p, r in reports.items()}, Rescorer(policy))
    assert res["categories"] == full["categories"]
    assert res["attribution"] == full["attribution"]
    rescored = {p: Rescorer(policy).rescore(r) for p, r in reports.items()}
    assert rescored == {p: of_report(r, index) for p, r in reports.items()}  # segments and scores too
    for p, r in reports.items():  # the scan's own peaks, to the timeline's precision
        assert of_report(r).categories["sexual"].score == pytest.approx(
            rescored[p].categories["sexual"].score, abs=0.011
        )


def test_suggested_policy_meets_its_target(tiny: dict[str, Any]) -> None:
    out = tiny["root"] / "suggested.json"
    for target in ("precision=0.6", "recall=0.6"):
        code, _ = _eval(tiny, "--rescore", "--suggest-policy", str(out), "--target", target)
        assert code == 0
        metric, value = target.split("=")
        code, res = _eval(tiny, "--rescore", "--policy", str(out))
        assert code == 0 and res["categories"]["sexual"][metric] >= float(value)
    out.unlink()
    # C scores nothing: no threshold finds all three; nothing is written
    code, _ = _eval(tiny, "--rescore", "--suggest-policy", str(out), "--target", "recall=1")
    assert code == 1 and not out.exists()


def test_figures_of_an_exact_case() -> None:
    rows = [Row("p", True, 0.9, "block", 2.0, [(0.0, 1.0)], [(0.5, 1.5)]), Row("n", False, 0.1, "allow", 7200.0)]
    f = category_figures(rows, seed=3, n_boot=50)
    assert f["precision"] == f["recall"] == f["roc_auc"] == f["average_precision"] == 1.0
    assert f["false_flags_per_clean_hour"] == 0.0 and f["clean_hours"] == 2.0
    assert f["detection_delay_s"]["values"] == [0.5]
    assert f["ci95"]["false_flag_rate"] == [0.0, 0.0]
    assert f["ci95"] == category_figures(rows, seed=3, n_boot=50)["ci95"]  # seeded


def test_manifest_forms_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "positive" / "sexual").mkdir(parents=True)
    (tmp_path / "negative").mkdir()
    (tmp_path / "positive" / "sexual" / "a.mp4").write_bytes(b"x")
    (tmp_path / "negative" / "b.mp4").write_bytes(b"x")
    ls = load_set(tmp_path)
    assert [(Path(i.path).name, i.labels) for i in ls.items] == [
        ("a.mp4", {"sexual": True}),
        ("b.mp4", {"sexual": False}),
    ]
    csv = tmp_path / "m.csv"
    csv.write_text('path,sexual,hate,sexual_segments,split\na.mp4,true,,"[[1, 2]]",test\nb.mp4,false,false,,train\n')
    ls = load_set(csv)
    assert ls.items[0].labels == {"sexual": True} and ls.items[0].segments == {"sexual": [(1.0, 2.0)]}
    assert ls.items[1].labels == {"sexual": False, "hate": False} and ls.categories() == ["sexual", "hate"]
    assert [i.split for i in ls.only_split("test").items] == ["test"]
    bad = {
        "m1.jsonl": ('{"path": "a.mp4", "sexual": "maybe"}\n', "a label must be true, false or empty"),
        "m2.jsonl": ('{"path": "a.mp4", "sexy": true}\n', "unknown keys ['sexy']"),
        "m3.jsonl": ('{"path": "a.mp4", "sexual": false, "sexual_segments": [[1, 2]]}\n', "is not labelled true"),
        "m4.jsonl": ('{"path": "a.mp4", "sexual": true, "sexual_segments": [[2, 1]]}\n', "0 <= start <= end"),
        "m5.jsonl": ("[1]\n", "expected a JSON object"),
        "m6.txt": ("a.mp4\n", "a .jsonl or .csv manifest"),
    }
    for fname, (text, message) in bad.items():
        (tmp_path / fname).write_text(text)
        assert main(["eval", str(tmp_path / fname)]) == 4
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert main(["eval", str(tmp_path / "nothere.jsonl")]) == 4
    assert "no such manifest or folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as ex:
        main(["eval", str(csv), "--suggest-policy", "x.json"])
    assert ex.value.code == 2 and "go together" in capsys.readouterr().err
    assert main(["eval", str(csv), "--rescore", "--db", str(tmp_path / "none.sqlite")]) == 4
    assert "run 'framescan eval' without --rescore first" in capsys.readouterr().err


def test_project_set_recipe_is_consistent() -> None:
    """The --build-set recipe (building it takes minutes: benchmarks/ACCURACY.md runs it): every
    stand-in shows 0.5-3 s inside its clip, every caption positive carries a lexicon term of its
    category and every harmless caption none, and the known-content copies copy banked items."""
    from framescan.eval.build import BANKED, CAPTIONS, COPIES, SET_CATEGORIES, STANDIN
    from framescan.lexicon import Lexicon

    for name, _size, seconds, _codec, _suffix, ranges, scale, _photo in STANDIN:
        assert all(0 <= a < b <= seconds and 0.5 <= b - a <= 3.0 for a, b in ranges), name
        assert 0 < scale <= 1.0
    lexicon = Lexicon.load(env=False)
    for name, cat, _size, seconds, caps in CAPTIONS:
        found = {m.category for _a, _b, text in caps for m in lexicon.match(text)}
        assert found == ({cat} if cat else set()), name
        assert cat is None or cat in SET_CATEGORIES
        assert all(0 <= a < b <= seconds for a, b, _t in caps)
    assert {item for _n, item, _how in COPIES} == {name for name, *_ in BANKED}


def test_rescore_takes_a_store_scanned_under_other_calibration_rules(tiny: dict[str, Any], tmp_path: Path) -> None:
    """A fusion rule is re-evaluated offline: reports scanned under a manifest with another
    calibration rule are rescored under the current one, not refused as other settings."""
    manifest = json.loads((Path(__file__).resolve().parents[1] / "models" / "nudenet-320n-trim.json").read_text())
    manifest["calibration"]["labels"]["BUTTOCKS_EXPOSED"] = {"min_score": 0.99}  # mutes the stand-in
    ruled = tmp_path / "nudenet-320n-trim.json"
    ruled.write_text(json.dumps(manifest))
    db, out = tmp_path / "ruled.sqlite", tmp_path / "out.json"
    base = ["eval", str(tiny["manifest"]), "--no-banks", "--workers", "1", "-q", "--db", str(db), "--json", str(out)]
    assert main([*base, "--model", str(ruled)]) == 0
    muted = json.loads(out.read_text())["categories"]["sexual"]
    assert (
        muted["tp"] + muted["fp"]
        < tiny["full"]["categories"]["sexual"]["tp"] + tiny["full"]["categories"]["sexual"]["fp"]
    )
    # the shipped manifest (no such rule) decides the stored timelines again: the full run's figures
    assert main([*base, "--rescore"]) == 0
    res = json.loads(out.read_text())
    assert res["scanned_now"] == 0 and res["categories"] == tiny["full"]["categories"]
