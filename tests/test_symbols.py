"""Symbol banks: reference images found inside frames with local features (``framescan.symbols``),
stored in the bank database, matched in the scan's own pass, reported as evidence.

framescan ships no extremist imagery: the references are ``skimage.data.logo()`` and generated
emblems (``framescan.synth_symbols``)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from framescan import banks, symbols
from framescan.cli.main import main as cli_main
from framescan.decide import symbol_weight
from framescan.policy import CategoryRule
from framescan.synth_symbols import (
    SCENES,
    Placement,
    render_symbol_frame,
    stand_in_symbols,
    symbol_quad,
    write_symbol_clip,
)

REAL = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "real"
if not REAL.is_dir():
    REAL = Path("/work/shared/testdata/real")
#: Real clips with logos burnt in and a clean HD one: the likeliest false matches of the set
#: (benchmarks/bench_symbols.py checks all of them).
REAL_CLIPS = ("pattern-sd-with-large-logo-bar.mp4", "chair-22-with-small-logo-bar.mp4", "doorknob-hd-no-bar.mp4")
W, H = 854, 480


@pytest.fixture(scope="module")
def references() -> list[tuple[str, np.ndarray]]:
    return stand_in_symbols(8, seed=3)


@pytest.fixture(scope="module")
def matcher(references: list[tuple[str, np.ndarray]]) -> symbols.SymbolMatcher:
    items = [symbols.SymbolItem("b", "hate", "review", n, symbols.reference_features(img)) for n, img in references]
    return symbols.SymbolMatcher(items)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


# ------------------------------------------------------------------ features and matching


def test_reference_features_are_resized_and_counted(references: list[tuple[str, np.ndarray]]) -> None:
    f = symbols.reference_features(references[0][1])
    assert max(f.width, f.height) == symbols.REFERENCE_SIDE
    assert f.image.shape == (f.height, f.width)
    assert len(f) == len(f.descriptors) > symbols.MIN_RELIABLE_KEYPOINTS
    assert f.descriptors.dtype == np.uint8 and f.descriptors.shape[1] == 32
    assert (f.points >= 0).all() and (f.points[:, 0] <= f.width).all() and (f.points[:, 1] <= f.height).all()
    assert f.current
    flat = symbols.reference_features(np.full((100, 120, 3), 90, np.uint8))
    assert len(flat) == 0  # nothing to match: ``bank show`` warns
    with pytest.raises(symbols.ConfigError, match="at least 16x16"):
        symbols.reference_features(np.zeros((8, 40), np.uint8))


@pytest.mark.parametrize(
    ("placement", "min_iou", "max_corner_error"),
    [
        (Placement(0.45), 0.85, 0.1),
        (
            Placement(0.3, angle=28, tilt=0.3, occlusion=0.25, gain=(1.15, 0.8, 0.9), offset=(20, -15, 5), side=1),
            0.8,
            0.1,
        ),
        # small and partly covered: fewer inliers, so the homography extrapolates the covered part roughly
        (Placement(0.2, angle=-20, tilt=0.1, occlusion=0.1, side=2), 0.65, 0.2),
    ],
    ids=["plain", "rotated-warped-covered-shifted", "small"],
)
def test_a_placed_symbol_is_found_with_its_quadrilateral(
    matcher: symbols.SymbolMatcher,
    references: list[tuple[str, np.ndarray]],
    placement: Placement,
    min_iou: float,
    max_corner_error: float,
) -> None:
    name, img = references[1]
    t = 1.3
    frame = render_symbol_frame("coffee", img, placement, W, H, t, {})
    hits = matcher.match(_grey(frame))
    assert [matcher.items[h.item].name for h in hits] == [name]
    hit = hits[0]
    assert hit.inliers >= symbols.DEFAULT_MATCH.min_inliers
    true = symbol_quad(placement, img.shape[1], img.shape[0], W, H, t)
    true_box = (true[:, 0].min(), true[:, 1].min(), true[:, 0].max(), true[:, 1].max())
    assert _iou(hit.box, true_box) > min_iou, (hit.box, true_box)
    quad = np.array(hit.quad)
    assert np.abs(quad - true).max() < max_corner_error * (true_box[2] - true_box[0])


def test_a_mirrored_symbol_is_not_that_symbol(
    matcher: symbols.SymbolMatcher, references: list[tuple[str, np.ndarray]]
) -> None:
    name, img = references[0]  # the logo: lettering, not symmetric (a symmetric emblem is its own mirror image)
    frame = render_symbol_frame("chelsea", img[:, ::-1].copy(), Placement(0.5), W, H, 0.5, {})
    assert matcher.match(_grey(frame)) == []
    frame = render_symbol_frame("chelsea", img, Placement(0.5), W, H, 0.5, {})
    assert [matcher.items[h.item].name for h in matcher.match(_grey(frame))] == [name]


def test_no_reference_matches_another_or_a_clean_frame(
    matcher: symbols.SymbolMatcher, references: list[tuple[str, np.ndarray]]
) -> None:
    # every reference against every other reference, as a whole frame and placed in a scene
    for name, img in references:
        hits = matcher.match(_grey(img))
        assert [matcher.items[h.item].name for h in hits] == [name]
    others = stand_in_symbols(6, seed=99)[1:]  # unrelated emblems, not in the bank
    for _, img in others:
        assert matcher.match(_grey(img)) == []
        assert matcher.match(_grey(render_symbol_frame("rocket", img, Placement(0.5), W, H, 0.0, {}))) == []
    # clean frames of every scene, at several times
    for scene in SCENES:
        for t in (1.1,):
            assert matcher.match(_grey(render_symbol_frame(scene, None, None, W, H, t, {}))) == []


def test_no_match_on_real_clips(matcher: symbols.SymbolMatcher) -> None:
    clips = [REAL / c for c in REAL_CLIPS if (REAL / c).is_file()]
    if not clips:
        pytest.skip(f"no real clips at {REAL}")
    frames = 0
    for clip in clips:
        with av.open(str(clip)) as c:
            stream = c.streams.video[0]
            stream.codec_context.skip_frame = "NONKEY"  # the keyframes (the benchmark checks every sampled frame)
            for f in c.decode(stream):
                frames += 1
                assert matcher.match(f.to_ndarray(format="gray")) == [], (clip.name, f.time)
    assert frames >= 5


def test_upright_follows_the_display_matrix() -> None:
    y = np.arange(6, dtype=np.uint8).reshape(2, 3)
    np.testing.assert_array_equal(symbols.upright(y, 0, False), y)
    np.testing.assert_array_equal(symbols.upright(y, 90, False), np.rot90(y))
    np.testing.assert_array_equal(symbols.upright(y, -90, False), np.rot90(y, -1))
    np.testing.assert_array_equal(symbols.upright(y, 180, True), np.rot90(y, 2)[:, ::-1])


def test_geometric_checks_refuse_twisted_and_mirrored_quads() -> None:
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], np.float32)
    assert symbols._convex_same_orientation(square)
    assert not symbols._convex_same_orientation(square[::-1])  # mirrored
    assert not symbols._convex_same_orientation(square[[0, 2, 1, 3]])  # twisted (bow tie)
    assert not symbols._convex_same_orientation(np.array([[0, 0], [10, 0], [2, 2], [0, 10]], np.float32))


def test_where_two_items_fit_one_place_the_better_fit_is_kept() -> None:
    a = symbols.SymbolHit(0, ((0, 0), (10, 0), (10, 10), (0, 10)), (0.0, 0.0, 10.0, 10.0), 40, 60)
    b = symbols.SymbolHit(1, ((1, 1), (11, 1), (11, 11), (1, 11)), (1.0, 1.0, 11.0, 11.0), 19, 50)
    c = symbols.SymbolHit(2, ((50, 50), (60, 50), (60, 60), (50, 60)), (50.0, 50.0, 60.0, 60.0), 15, 30)
    assert symbols._one_per_place([b, c, a]) == [a, c]


def test_symbol_weight_is_the_banks_action() -> None:
    rule = CategoryRule(review=0.4, block=0.6)
    assert symbol_weight("block", rule) == 1.0
    assert symbol_weight("review", rule) == 0.4  # reaches review, never block


# ------------------------------------------------------------------ the bank database


def test_symbols_are_stored_with_their_extractor_and_read_back(tmp_path: Path, references) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "banks.sqlite"
    f = symbols.reference_features(references[0][1])
    with banks.BankStore(db) as store:
        store.create_bank("flags", "extremism", "block", kind="symbol", settings={"min_inliers": 20})
        store.create_bank("videos", "extremism", "block")
        store.add_symbol("flags", "logo", f, source="logo.png")
        with pytest.raises(banks.ItemExists):
            store.add_symbol("flags", "logo", f)
        with pytest.raises(banks.ConfigError, match="is a hash bank"):
            store.add_symbol("videos", "logo", f)
        with pytest.raises(banks.ConfigError, match="is a symbol bank"):
            store.add_image("flags", "x", np.zeros(4, np.uint64), 100)
        with pytest.raises(banks.ConfigError, match="unknown symbol-bank setting"):
            store.create_bank("bad", "hate", "review", kind="symbol", settings={"ratoi": 0.7})
        bank = store.get_bank("flags")
        assert (bank.kind, bank.item_count, bank.hash_count, bank.overrides) == (
            "symbol",
            1,
            len(f),
            {"min_inliers": 20},
        )
        [item] = store.list_items("flags")
        assert (item.kind, item.name, item.hash_count, item.source) == ("symbol", "logo", len(f), "logo.png")
        [(b, name, g)] = list(store.iter_symbols())
        assert (b.name, name, g.extractor, g.width, g.height) == ("flags", "logo", "orb/2", f.width, f.height)
        np.testing.assert_array_equal(g.descriptors, f.descriptors)
        np.testing.assert_array_equal(g.points, f.points)
        np.testing.assert_array_equal(g.angles, f.angles)
        np.testing.assert_array_equal(g.sizes, f.sizes)
        assert g.current
        np.testing.assert_array_equal(g.image, f.image)
        assert json.loads(g.params)["reference_features"] == symbols.DEFAULT_EXTRACTOR.reference_features
    matcher = banks.open_symbol_matcher(db)
    assert matcher is not None and len(matcher) == 1
    assert matcher.items[0].params.min_inliers == 20  # the bank's override
    assert matcher.categories == {"extremism": ["flags"]}
    assert (
        0 < matcher.nbytes <= len(f) * symbols.BYTES_PER_DESCRIPTOR + matcher.index.offsets.nbytes
    )  # bounded per item
    assert banks.open_matcher(db) is None  # no hash: the PDQ matcher stays off
    with banks.BankStore(db) as store:
        store.delete_item("flags", "logo")
        assert store.list_items("flags") == []
    assert banks.open_symbol_matcher(db) is None


def test_features_from_another_extractor_are_extracted_again(tmp_path: Path, references) -> None:  # type: ignore[no-untyped-def]
    f = symbols.reference_features(references[1][1])
    old = symbols.SymbolFeatures(
        f.width, f.height, f.points[:5], f.descriptors[:5], f.image, "orb/0", json.dumps({"old": True})
    )
    assert not old.current
    again = symbols.current_features(old)
    assert again.current and len(again) == len(f)
    np.testing.assert_array_equal(again.descriptors, f.descriptors)


# ------------------------------------------------------------------ the command line and a scan


@pytest.fixture(scope="module")
def symbol_db(tmp_path_factory: pytest.TempPathFactory, references) -> Path:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("symbols")
    for name, img in references[:3]:
        cv2.imwrite(str(root / f"{name}.png"), img[:, :, ::-1])
    db = root / "banks.sqlite"
    names = [n for n, _ in references[:3]]
    assert (
        cli_main(
            [
                "bank",
                "add",
                "hateflags",
                str(root / f"{names[0]}.png"),
                str(root / f"{names[1]}.png"),
                "--kind",
                "symbol",
                "--category",
                "hate",
                "--action",
                "review",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    assert (
        cli_main(
            [
                "bank",
                "add",
                "groups",
                str(root / f"{names[2]}.png"),
                "--kind",
                "symbol",
                "--category",
                "extremism",
                "--action",
                "block",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    return db


def test_bank_cli_for_symbols(symbol_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert cli_main(["bank", "show", "hateflags", "--db", str(symbol_db)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("symbol bank hateflags: hate, review, 2 items, ")
    assert "KEYPOINTS" in out and "orb/2" in out
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((64, 64, 3), 200, np.uint8))
    db = tmp_path / "b.sqlite"
    assert (
        cli_main(
            [
                "bank",
                "add",
                "s",
                str(flat),
                "--kind",
                "symbol",
                "--category",
                "hate",
                "--action",
                "review",
                "--min-inliers",
                "15",
                "--db",
                str(db),
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "symbol 'flat' has 0 keypoints" in err and "may not be found reliably" in err
    assert cli_main(["bank", "show", "s", "--db", str(db)]) == 0
    shown = capsys.readouterr()
    assert "min_inliers 15" in shown.out and "has 0 keypoints" in shown.err
    clip = tmp_path / "c.mp4"
    clip.write_bytes(b"not an image")
    assert cli_main(["bank", "add", "s", str(clip), "--db", str(db)]) == 3
    assert capsys.readouterr().err.strip().splitlines() == [
        f"framescan: error [UNSUPPORTED_FORMAT]: {clip}: bank 's' is a symbol bank: it takes images "
        "(.bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)"
    ]
    assert (
        cli_main(
            [
                "bank",
                "add",
                "h",
                str(flat),
                "--category",
                "hate",
                "--action",
                "review",
                "--ratio",
                "0.7",
                "--db",
                str(db),
            ]
        )
        == 4
    )
    assert "--kind symbol" in capsys.readouterr().err
    assert cli_main(["bank", "add", "s", str(flat), "--kind", "hash", "--db", str(db)]) == 4
    assert "has kind 'symbol', not 'hash'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def shown_clips(tmp_path_factory: pytest.TempPathFactory, references) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("symbol-clips")
    return {
        "review": write_symbol_clip(
            root / "a.mp4",
            references[0][1],
            Placement(0.35, angle=12, tilt=0.15, occlusion=0.15),
            shown=(1.0, 2.5),
            seconds=3.0,
            scene="astronaut",
        ),
        "block": write_symbol_clip(
            root / "b.mp4",
            references[2][1],
            Placement(0.3, angle=-20, tilt=0.2),
            shown=(0.5, 2.5),
            seconds=3.0,
            scene="chelsea",
        ),
        "clean": write_symbol_clip(root / "c.mp4", None, None, seconds=3.0, scene="coffee"),
    }


def test_scan_reports_symbol_matches_as_evidence(symbol_db: Path, shown_clips: dict[str, Path], references) -> None:  # type: ignore[no-untyped-def]
    from framescan import Scanner

    scanner = Scanner(banks=symbol_db, threads=2)
    assert scanner.signals["hate"][-1] == "bank:hateflags" and "bank:groups" in scanner.signals["extremism"]

    r = scanner.scan(shown_clips["review"]).to_dict()
    assert r["decision"] == "review"
    hate = r["categories"]["hate"]
    assert hate["decision"] == "review" and r["categories"]["extremism"]["decision"] == "allow"
    [seg] = hate["segments"]
    assert 1.0 <= seg["start"] <= 1.5 and 2.0 <= seg["last_hit"] < 2.5  # within one sampling interval (2 fps)
    ev = [r["evidence"][i] for i in seg["evidence"]]
    assert {(e["model"], e["label"]) for e in ev} == {("bank:hateflags", references[0][0])}
    for e in ev:
        assert len(e["quad"]) == 4 and e["inliers"] >= symbols.DEFAULT_MATCH.min_inliers
        xs, ys = [p[0] for p in e["quad"]], [p[1] for p in e["quad"]]
        assert e["box"] == [round(min(xs), 1), round(min(ys), 1), round(max(xs), 1), round(max(ys), 1)]
        assert e["weighted"] == 0.4  # the review bank's weight: the policy's review threshold
    assert r["timings"]["symbols"] > 0

    b = scanner.scan(shown_clips["block"]).to_dict()
    assert b["decision"] == "block" and b["categories"]["extremism"]["decision"] == "block"
    assert b["categories"]["hate"]["segments"] == []
    c = scanner.scan(shown_clips["clean"]).to_dict()
    assert c["decision"] == "allow" and all(not x.get("segments") for x in c["categories"].values())


def test_scan_without_symbol_banks_is_unchanged(tmp_path: Path) -> None:
    with banks.BankStore(tmp_path / "empty.sqlite") as store:
        store.create_bank("flags", "hate", "review", kind="symbol")
    assert banks.open_symbol_matcher(tmp_path / "empty.sqlite") is None
    con = sqlite3.connect(tmp_path / "empty.sqlite")
    assert con.execute("PRAGMA user_version").fetchone()[0] == banks.SCHEMA_VERSION
    con.close()


@pytest.mark.parametrize(("n", "m"), [(1, 1), (7, 1), (33, 65), (250, 3)])
def test_knn2_kernel_matches_numpy_and_opencv(n: int, m: int) -> None:
    rng = np.random.default_rng(n * 100 + m)
    q = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    t = rng.integers(0, 256, size=(m, 32), dtype=np.uint8)
    t[: m // 2] = q[: m // 2] ^ (rng.random((m // 2, 32)) < 0.05).astype(np.uint8)  # near neighbours
    idx, d1, d2 = symbols.knn2(symbols.as_words(q), symbols.as_words(t))
    ref = symbols.knn2_reference(symbols.as_words(q), symbols.as_words(t))
    np.testing.assert_array_equal(d1, ref[1])
    np.testing.assert_array_equal(d2, ref[2])
    np.testing.assert_array_equal(idx, ref[0])
    for i, pair in enumerate(cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(q, t, k=2)):
        assert pair[0].distance == d1[i]
        assert (pair[1].distance if len(pair) > 1 else 257) == d2[i]
    empty = symbols.knn2(symbols.as_words(q), np.empty((0, 4), np.uint64))
    assert (empty[0] == -1).all() and (empty[1] == 257).all()


@pytest.mark.parametrize(
    ("n", "m", "bits", "cap"),
    [(1, 1, 12, 16), (9, 37, 5, 16), (300, 1000, 12, 16), (77, 4097, 14, 16), (61, 3001, 6, 48)],
)
def test_lsh_kernels_match_numpy(n: int, m: int, bits: int, cap: int) -> None:
    rng = np.random.default_rng(n + m + bits)
    t = rng.integers(0, 256, size=(m, 32), dtype=np.uint8)
    q = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    k = min(n, m) // 2
    q[:k] = t[:k] ^ (rng.random((k, 32, 8)) < 0.08).astype(np.uint8).dot(1 << np.arange(8)).astype(np.uint8)
    index = symbols.LshIndex(symbols.as_words(t), tables=6, bits=bits, seed=n, max_bucket=cap)
    np.testing.assert_array_equal(
        index.keys(symbols.as_words(q)), symbols.lsh_keys_reference(symbols.as_words(q), index.bits)
    )
    idx, d1, d2 = index.knn2(symbols.as_words(q))
    ref = index.knn2_reference(symbols.as_words(q))
    np.testing.assert_array_equal(d1, ref[1])
    np.testing.assert_array_equal(d2, ref[2])
    found = idx >= 0
    np.testing.assert_array_equal(found, ref[0] >= 0)
    exact = np.bitwise_count(symbols.as_words(q)[found] ^ index.words[idx[found]]).sum(-1)
    np.testing.assert_array_equal(exact, d1[found])  # the index names a row at that distance
    sizes = np.diff(index.offsets, axis=1)
    if (sizes > cap).any():  # buckets over the cap are skipped: fewer candidates, never nearer ones
        whole = symbols.LshIndex(symbols.as_words(t), tables=6, bits=bits, seed=n, max_bucket=m).knn2(
            symbols.as_words(q)
        )
        assert (whole[1] <= d1).all() and (whole[2] <= d2).all() and (whole[2] < d2).any()
    else:  # near neighbours (about 20 bits away) share a key in some table
        assert k == 0 or (ref[0][:k] == np.arange(k)).mean() > 0.9
    empty = symbols.LshIndex(np.empty((0, 4), np.uint64)).knn2(symbols.as_words(q))
    assert (empty[0] == -1).all() and (empty[1] == 257).all() and (empty[2] == 257).all()


def test_hough_votes_gather_one_symbols_matches_and_scatter_chance_ones() -> None:
    rng = np.random.default_rng(3)
    n = 40
    # 40 matches of item 2 that agree (rotation 20 degrees, scale 0.5, centre near (300, 200)),
    # 40 of item 1 that do not
    item = np.r_[np.full(n, 2), np.full(n, 1)]
    rotation = np.r_[20 + rng.normal(0, 4, n), rng.uniform(0, 360, n)]
    log_scale = np.r_[-1 + rng.normal(0, 0.1, n), rng.uniform(-3, 1, n)]
    cx = np.r_[300 + rng.normal(0, 5, n), rng.uniform(0, 900, n)]
    cy = np.r_[200 + rng.normal(0, 5, n), rng.uniform(0, 500, n)]
    size = np.full(2 * n, 160.0)
    votes = symbols.hough_votes(item, rotation, log_scale, cx, cy, size)
    assert votes[:n].min() >= 30 and votes[n:].max() <= 3
    assert symbols.hough_votes(*(np.empty(0),) * 6).shape == (0,)
    # rotations either side of 0/360 degrees fall in one bin
    wrap = symbols.hough_votes(np.zeros(2), np.array([2.0, 358.0]), np.zeros(2), np.zeros(2), np.zeros(2), np.ones(2))
    assert wrap.tolist() == [2, 2]
