"""framescan.pdq_search: radius search (brute force and multi-index) vs a reference;
framescan.banks: the SQLite store, matching a re-encoded cut of a known video, and the ``bank`` /
``hash`` CLI."""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import naive_pdq as naive
import numpy as np
import pytest

from framescan import banks, pdq, pdq_search, vpdq
from framescan.errors import ConfigError

DATA = Path(__file__).parent / "data" / "vpdq"
CHAIR = DATA / "chair-19-sd-bar.mp4"

#: The re-upload: chair with its first 5 s cut, 8 s kept, downscaled and re-encoded at a low rate.
CUT_START_S = 5.0
CUT_SECONDS = 8.0
REENCODE_SIZE = (360, 540)  # chair is 480x720 (portrait)
REENCODE_BIT_RATE = 250_000
#: The re-upload's frames should line up with the original 5 s later; frames of a slow camera
#: move may match a neighbour, so allow a few frames either way.
ALIGNMENT_TOLERANCE_S = 0.25


def _flip_bits(h: np.ndarray, bits: np.ndarray) -> np.ndarray:
    out = h.copy()
    for b in bits:
        out[pdq.HASH_WORDS - 1 - b // 64] ^= np.uint64(1) << np.uint64(b % 64)
    return out


def _bank_with_neighbours(seed: int = 0, size: int = 3000, n_queries: int = 12):
    """Random bank hashes plus, for each query, planted neighbours at distances 0..45."""
    rng = np.random.default_rng(seed)
    bank = rng.integers(0, 2**64, size=(size, pdq.HASH_WORDS), dtype=np.uint64)
    queries = rng.integers(0, 2**64, size=(n_queries, pdq.HASH_WORDS), dtype=np.uint64)
    for i, q in enumerate(queries):
        for k, d in enumerate(range(0, 46, 3)):
            bank[(i * 97 + k * 13) % size] = _flip_bits(q, rng.choice(pdq.HASH_BITS, size=d, replace=False))
    bank[-1] = queries[0]  # a duplicate of a planted hash
    return queries, bank


# -- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize("radius", [0, 15, 31, 40, 60])  # 40: two-bit probes; 60: beyond the index
def test_brute_force_and_multi_index_find_exactly_the_reference_pairs(radius):
    queries, bank = _bank_with_neighbours()
    expected = naive.radius_search(queries, bank, radius)
    brute = set(zip(*(a.tolist() for a in pdq_search.brute_force_search(queries, bank, radius)), strict=True))
    index = pdq_search.MultiIndex(bank)
    mih = set(zip(*(a.tolist() for a in index.search(queries, radius)), strict=True))
    assert brute == expected
    assert mih == expected
    # A second search reuses the index's scratch state and must give the same answer.
    assert set(zip(*(a.tolist() for a in index.search(queries, radius)), strict=True)) == expected
    assert any(d == radius or d == radius - 1 for _, _, d in expected) or radius in (0, 60)


def test_result_buffers_grow_when_there_are_many_pairs(monkeypatch):
    monkeypatch.setattr(pdq_search, "INITIAL_RESULT_CAPACITY", 1)
    queries, bank = _bank_with_neighbours(size=500, n_queries=3)
    bank = np.concatenate([bank, np.repeat(queries[:1], 50, axis=0)])
    expected = naive.radius_search(queries, bank, 31)
    for got in (pdq_search.brute_force_search(queries, bank), pdq_search.MultiIndex(bank).search(queries)):
        assert set(zip(*(a.tolist() for a in got), strict=True)) == expected


def test_chunks_match_hex_digits():
    _, bank = _bank_with_neighbours(size=50)
    out = np.empty((pdq_search.NUM_CHUNKS, len(bank)), dtype=np.int32)
    pdq_search._chunk_values(bank, out)
    np.testing.assert_array_equal(out, naive.chunk_values(bank))


def test_postings_are_a_stable_sort_by_chunk_value():
    _, bank = _bank_with_neighbours(size=400)
    bank[:50] = bank[0]  # repeated chunk values: stability matters
    index = pdq_search.MultiIndex(bank)
    chunks = naive.chunk_values(bank)
    for c in range(pdq_search.NUM_CHUNKS):
        np.testing.assert_array_equal(index.orders[c], np.argsort(chunks[c], kind="stable"))
        counts = np.bincount(chunks[c], minlength=pdq_search.CHUNK_VALUES)
        np.testing.assert_array_equal(index.starts[c], np.concatenate([[0], np.cumsum(counts)]))


def test_empty_inputs():
    empty = np.empty((0, pdq.HASH_WORDS), np.uint64)
    one = np.zeros((1, pdq.HASH_WORDS), np.uint64)
    for got in (pdq_search.brute_force_search(one, empty), pdq_search.MultiIndex(empty).search(one)):
        assert all(len(a) == 0 for a in got)


# -- store -------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    with banks.BankStore(tmp_path / "banks.sqlite") as s:
        yield s


def test_default_db_path_honours_framescan_home(monkeypatch, tmp_path):
    monkeypatch.setenv(banks.HOME_ENV, str(tmp_path))
    assert banks.default_db_path() == tmp_path / "banks.sqlite"
    monkeypatch.delenv(banks.HOME_ENV)
    assert banks.default_db_path() == Path.home() / ".framescan" / "banks.sqlite"


def test_store_banks_and_items(store):
    meta = vpdq.read_hashes(DATA / "chair-19-sd-bar.txt")
    store.create_bank("known", "extremism", "block")
    store.add_video("known", "chair", meta, source="chair-19-sd-bar.txt")
    store.add_image("known", "photo", meta.hashes[0], 90)
    assert store.list_banks() == [banks.Bank("known", "extremism", "block", store.get_bank("known").created_at, 2, 565)]
    assert [(i.name, i.kind, i.hash_count) for i in store.list_items("known")] == [
        ("chair", "video", 564),
        ("photo", "image", 1),
    ]
    back = store.item_hashes("known", "chair")
    for field in ("frame_numbers", "timestamps", "qualities", "hashes"):
        np.testing.assert_array_equal(getattr(back, field), getattr(meta, field))
    with pytest.raises(banks.ItemExists):
        store.add_video("known", "chair", meta)
    store.add_video("known", "chair", meta.select(slice(0, 10)), replace=True)
    assert store.get_bank("known").hash_count == 11
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.parametrize(
    ("name", "category", "action", "error"),
    [
        ("b", "spam", "block", ConfigError),  # unknown category
        ("b", "hate", "delete", ConfigError),  # unknown action
        ("", "hate", "block", ConfigError),  # empty name
    ],
)
def test_create_bank_validates(store, name, category, action, error):
    with pytest.raises(error):
        store.create_bank(name, category, action)


def test_missing_bank_and_duplicate_bank(store):
    with pytest.raises(banks.BankNotFound):
        store.get_bank("nope")
    with pytest.raises(banks.BankNotFound):
        store.add_image("nope", "x", np.zeros(4, np.uint64), 100)
    store.create_bank("dup", "hate", "review")
    with pytest.raises(ConfigError):
        store.create_bank("dup", "hate", "review")


# -- matching real video -----------------------------------------------------------------------


def _write_h264(frames, path: Path, width: int, height: int, fps: int = 30, bit_rate: int = 400_000) -> Path:
    """Encode ``av.VideoFrame``s (any size/format) as H.264 with PyAV (frames decoded from a real
    clip, re-encoded as a re-upload: not ``write_clip``'s rendered frames)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bit_rate
        stream.options = {"preset": "ultrafast"}
        for i, frame in enumerate(frames):
            f = frame.reformat(width=width, height=height, format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="module")
def reupload(tmp_path_factory) -> Path:
    """chair with the first 5 s cut, 8 s kept, at 360x540 and 250 kbit/s."""
    import av

    def frames():
        with av.open(str(CHAIR)) as src:
            for frame in src.decode(video=0):
                if frame.time >= CUT_START_S + CUT_SECONDS:
                    break
                if frame.time >= CUT_START_S:
                    yield frame

    path = tmp_path_factory.mktemp("clips") / "chair-cut.mp4"
    return _write_h264(frames(), path, *REENCODE_SIZE, bit_rate=REENCODE_BIT_RATE)


@pytest.fixture(scope="module")
def unrelated(tmp_path_factory) -> Path:
    """8 s of other photographs, panning and zooming (synthetic camera motion)."""
    import av
    from skimage import data

    photos = [data.coffee(), data.rocket(), data.chelsea(), data.astronaut()]
    width, height, fps = 320, 240, 30

    def frames():
        for i in range(8 * fps):
            img = photos[(i // (2 * fps)) % len(photos)]
            t = (i % (2 * fps)) / (2 * fps)
            zoom = 1.0 - 0.3 * t
            h, w = int(img.shape[0] * zoom), int(img.shape[1] * zoom)
            y0, x0 = int((img.shape[0] - h) * t), int((img.shape[1] - w) * (1 - t))
            crop = np.ascontiguousarray(img[y0 : y0 + h, x0 : x0 + w, :3])
            yield av.VideoFrame.from_ndarray(crop, format="rgb24")

    return _write_h264(frames(), tmp_path_factory.mktemp("clips") / "unrelated.mp4", width, height, fps)


@pytest.fixture(scope="module")
def known_store(tmp_path_factory):
    """A bank holding chair as Meta's vPDQ hashed it (every frame) and framescan at 1 fps."""
    path = tmp_path_factory.mktemp("db") / "banks.sqlite"
    with banks.BankStore(path) as s:
        s.create_bank("known-videos", "violence", "block")
        s.add_video("known-videos", "chair-meta", vpdq.read_hashes(DATA / "chair-19-sd-bar.txt"))
        s.add_video("known-videos", "chair-1fps", vpdq.hash_video(CHAIR, seconds_per_hash=1.0))
        s.create_bank("other", "hate", "review")
        s.add_video("other", "padded", vpdq.read_hashes(DATA / "test-padded-dimensions.txt"))
        yield s


def test_open_matcher(tmp_path, known_store, monkeypatch):
    monkeypatch.setenv(banks.HOME_ENV, str(tmp_path))
    assert banks.open_matcher() is None  # no default database: matching is off
    with pytest.raises(banks.DatabaseNotFound, match=r"missing\.sqlite does not exist"):  # a named one must exist
        banks.open_matcher(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
    matcher = banks.open_matcher(known_store.path, banks=["other"])
    assert len(matcher) > 0 and {item.bank.name for item in matcher.items} == {"other"}
    with pytest.raises(banks.BankNotFound):
        banks.open_matcher(known_store.path, banks=["nope"])


@pytest.mark.parametrize("use_index", [False, True])
def test_reencoded_cut_matches_the_original_in_the_bank(known_store, reupload, use_index, capsys):
    matcher = known_store.matcher(use_index=use_index)
    query = vpdq.hash_video(reupload, seconds_per_hash=1.0)
    results = matcher.match_video(query)
    by_item = {r.item: r for r in results}
    with capsys.disabled():
        for r in results:
            print(
                f"\nre-upload vs {r.bank}/{r.item}: query share {r.query_match_percent:.0f}%, "
                f"item share {r.item_match_percent:.0f}%, closest {r.min_distance} bits"
            )
    for item in ("chair-meta", "chair-1fps"):
        r = by_item[item]
        assert r.is_match(), r
        assert (r.bank, r.category, r.action) == ("known-videos", "violence", "block")
        offsets = [f.item_timestamp - f.query_timestamp for f in r.frames]
        assert abs(np.median(offsets) - CUT_START_S) <= ALIGNMENT_TOLERANCE_S
        assert all(f.distance <= vpdq.DISTANCE_THRESHOLD for f in r.frames)
    assert "padded" not in by_item
    frames = matcher.match_frames(query)
    assert {f.item for f in frames} == {"chair-meta", "chair-1fps"}
    assert frames == sorted(frames, key=lambda f: (f.query_timestamp, f.distance, f.bank, f.item))


def test_unrelated_clip_does_not_match(known_store, unrelated):
    query = vpdq.hash_video(unrelated, seconds_per_hash=0.5)
    assert len(query.quality_filtered()) >= len(query) // 2
    matcher = known_store.matcher()
    assert matcher.match_frames(query) == []
    assert not any(r.is_match() for r in matcher.match_video(query))


@pytest.fixture(scope="module")
def moving_clip(make_clip: Callable[..., Path]) -> Path:
    """6 s of photographs on a moving background (a new photograph at 3 s): frames 0.5 s apart
    are 48-160 bits apart, so a frame matches only the item frames of about its own time."""
    return make_clip(width=360, height=640, seconds=6, fps=10)


def _coverage_match(item: vpdq.VideoHash, query: vpdq.VideoHash) -> banks.ItemMatch:
    bank = banks.Bank("sparse", "extremism", "block", 0.0)
    [found] = banks.BankMatcher.from_items([(bank, "c1", "video", item)]).match_video(query)
    return found


#: The item hashed at 1 fps (vPDQ's default, ``framescan hash``) against queries at 2 fps (the
#: scan's default) and every frame, and the converse: frame counts would give the 2 fps query
#: half of a 1 fps item, time coverage gives all of it.
@pytest.mark.parametrize(("item_sph", "query_sph"), [(1.0, 0.5), (1.0, 0.0), (0.0, 1.0), (0.5, 1.0)])
def test_a_video_matches_its_own_hashes_whatever_the_two_sampling_rates(moving_clip, item_sph, query_sph):
    item = vpdq.hash_video(moving_clip, seconds_per_hash=item_sph)
    query = vpdq.hash_video(moving_clip, seconds_per_hash=query_sph)
    m = _coverage_match(item, query)
    assert m.is_match()
    assert m.query_match_percent == pytest.approx(100.0) and m.item_match_percent == pytest.approx(100.0)
    [segment] = m.query_coverage.segments
    assert segment == pytest.approx((0.0, 6.0)) and m.query_coverage.total_seconds == pytest.approx(6.0)
    assert vpdq.match_hashes(query, item) == vpdq.VpdqMatch(m.query_match_percent, m.item_match_percent)


@pytest.mark.parametrize("query_sph", [0.5, 0.0])  # 2 fps, every frame
def test_a_query_partly_made_of_the_item_gets_the_share_it_shows(moving_clip, query_sph):
    """The item is the clip's first 3 s hashed at 1 fps; the query is the whole 6 s clip."""
    full = vpdq.hash_video(moving_clip, seconds_per_hash=1.0)
    item = full.select(full.timestamps < 3.0)
    query = vpdq.hash_video(moving_clip, seconds_per_hash=query_sph)
    m = _coverage_match(item, query)
    assert m.query_match_percent == pytest.approx(50.0)
    [segment] = m.query_coverage.segments
    assert m.query_coverage.seconds == pytest.approx(3.0) and segment == pytest.approx((0.0, 3.0))
    assert m.item_match_percent == pytest.approx(100.0)
    assert not m.is_match()  # below the 80% of a video match


def test_time_coverage_by_rule():
    """Frames at 0-5 s (1 s apart, each standing for 1 s); the other video is hashed every 2 s."""
    times = np.arange(6.0)
    durations = vpdq.frame_durations(times)
    # frame 0 matches there-frame 0; frames 3 and 4 both match there-frame 1, frame 4 closer
    cov = vpdq.time_coverage(times, durations, np.array([0, 3, 4]), np.array([0, 1, 1]), np.array([5, 9, 2]), 2.0)
    # anchors 0 (covers 0-2) and 4 (covers 4-6); frame 3 matched directly
    assert cov.segments == ((0.0, 2.0), (3.0, 6.0))
    assert (cov.seconds, cov.total_seconds, cov.percent) == (5.0, 6.0, pytest.approx(500 / 6))
    nothing = vpdq.time_coverage(times, durations, np.array([], int), np.array([], int), np.array([], int), 2.0)
    assert (nothing.percent, nothing.segments) == (0.0, ())


def test_image_item_matches_a_video_frame(store):
    import av
    from skimage import data

    rgb = data.astronaut()
    h, q = pdq.pdq_hash(pdq.luma_from_rgb(rgb))
    store.create_bank("images", "sexual", "review")
    store.add_image("images", "astronaut", h, q)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width=256, height=256, format="yuv420p")
    y = np.frombuffer(frame.planes[0], np.uint8).reshape(-1, frame.planes[0].line_size)[:256, :256]
    query = vpdq.VideoHash.from_features([vpdq.hash_luma(42, 1.4, y)])
    [result] = store.matcher().match_video(query)
    assert result.kind == "image" and result.is_match()
    assert result.frames[0].query_timestamp == 1.4 and result.frames[0].query_frame_number == 42


# -- CLI ---------------------------------------------------------------------------------------


def _run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    return module.run(parser.parse_args(argv))


def test_cli_bank_add_and_list(tmp_path, reupload, capsys):
    import cv2
    from skimage import data

    from framescan.cli import bank as bank_cmd

    db = str(tmp_path / "cli.sqlite")
    image = tmp_path / "coffee.png"
    cv2.imwrite(str(image), data.coffee()[:, :, ::-1])
    hashes = DATA / "chair-19-sd-bar.txt"
    with pytest.raises(ConfigError):  # a new bank needs a category and an action
        _run(bank_cmd, ["bank", "add", "kv", str(hashes), "--db", db])
    argv = ["bank", "add", "kv", str(hashes), str(reupload), str(image), "--category", "violence"]
    assert _run(bank_cmd, [*argv, "--action", "block", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "created bank kv (violence, block)" in out
    assert "added video chair-19-sd-bar (564 hashes)" in out
    assert "added video chair-cut (240 hashes)" in out
    assert "added image coffee (1 hash)" in out
    with pytest.raises(ConfigError):  # the bank exists with another action
        _run(bank_cmd, ["bank", "add", "kv", str(hashes), "--action", "review", "--db", db])
    assert _run(bank_cmd, ["bank", "list", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "CATEGORY", "ACTION", "ITEMS", "HASHES"]
    assert lines[1].split()[:5] == ["kv", "violence", "block", "3", "805"]


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "1000"}  # help on one line per option: argparse wraps at hyphens
    return subprocess.run(
        [sys.executable, "-m", "framescan", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


def _one_error_line(p: subprocess.CompletedProcess) -> str:
    [line] = p.stderr.strip().splitlines()  # one line, no traceback
    return line


@pytest.mark.integration
def test_cli_bank_commands_on_a_mistyped_database_create_nothing(tmp_path):
    for argv in (["list"], ["remove", "sparse", "c1"]):  # reading and writing commands
        p = _cli("bank", *argv, "--db", "typo.sqlite", cwd=tmp_path)
        assert p.returncode == 4, (argv, p.stderr)
        assert _one_error_line(p) == (
            "framescan: error [CONFIG_ERROR]: bank database typo.sqlite does not exist: check the path, or create "
            "it with 'framescan bank add NAME FILE... --category C --action A --db typo.sqlite'"
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.integration
def test_cli_bank_show_and_remove(tmp_path):
    db = str(tmp_path / "b.sqlite")
    chair, padded = DATA / "chair-19-sd-bar.txt", DATA / "test-padded-dimensions.txt"
    p = _cli(
        "bank", "add", "sparse", str(chair), str(padded), "--category", "extremism", "--action", "block", "--db", db
    )
    assert p.returncode == 0, p.stderr
    p = _cli("bank", "show", "sparse", "--db", db)
    assert p.returncode == 0, p.stderr
    head, columns, *rows = p.stdout.splitlines()
    assert head.startswith("bank sparse: extremism, block, 2 items, 714 hashes, created ")
    assert columns.split() == ["ITEM", "KIND", "HASHES", "SECONDS", "EVERY", "ADDED", "SOURCE"]
    meta = vpdq.read_hashes(chair)  # Meta's hashes of every frame of a 30 fps clip
    assert rows[0].split()[:5] == ["chair-19-sd-bar", "video", "564", f"0.0-{meta.timestamps.max():.1f}", "0.033"]
    assert rows[0].split()[-1] == str(chair) and rows[1].split()[:3] == ["test-padded-dimensions", "video", "150"]

    # an unknown item or bank: a configuration error that names what there is
    p = _cli("bank", "remove", "sparse", "nope", "--db", db)
    assert p.returncode == 4
    assert _one_error_line(p).endswith(
        "no item 'nope' in bank 'sparse' (its items: 'chair-19-sd-bar', 'test-padded-dimensions')"
    )
    p = _cli("bank", "show", "nope", "--db", db)
    assert p.returncode == 4 and _one_error_line(p).endswith(f"no hash bank named 'nope' in {db} (its banks: 'sparse')")

    p = _cli("bank", "remove", "sparse", "chair-19-sd-bar", "--db", db)
    assert (p.returncode, p.stdout) == (0, "removed item chair-19-sd-bar from bank sparse\n")
    with banks.BankStore(db) as store:
        assert [i.name for i in store.list_items("sparse")] == ["test-padded-dimensions"]
    p = _cli("bank", "remove", "sparse", "--db", db)
    assert (p.returncode, p.stdout) == (0, "removed bank sparse (1 item, 150 hashes)\n")
    with banks.BankStore(db) as store:
        assert store.list_banks() == []
    p = _cli("bank", "remove", "sparse", "--db", db)
    assert p.returncode == 4 and _one_error_line(p).endswith("(its banks: none)")


@pytest.mark.integration
def test_cli_bank_add_refuses_a_duplicate_without_replace(tmp_path):
    db = str(tmp_path / "b.sqlite")
    padded = str(DATA / "test-padded-dimensions.txt")
    add = ("bank", "add", "sparse", padded, "--category", "extremism", "--action", "block", "--db", db)
    assert _cli(*add).returncode == 0
    p = _cli(*add)
    assert p.returncode == 4
    assert _one_error_line(p) == (
        "framescan: error [CONFIG_ERROR]: bank 'sparse' already has an item named 'test-padded-dimensions': "
        "add --replace to overwrite it, or rename the file"
    )
    p = _cli(*add, "--replace")
    assert p.returncode == 0 and "added video test-padded-dimensions (150 hashes) to sparse" in p.stdout


@pytest.mark.integration
@pytest.mark.parametrize("command", [(), ("add",), ("show",), ("remove",)])
def test_cli_bank_help_is_plain_and_shows_defaults(command):
    p = _cli("bank", *command, "--help")
    assert p.returncode == 0
    text = " ".join(p.stdout.split())
    assert "``" not in text and "`" not in text
    if command:
        assert f"bank database (default {banks.default_db_path()})" in text
    else:
        assert "add,list,show,remove" in text
    if command == ("add",):
        assert "(default 0: every frame" in text and "--replace replace items of the same name (default:" in text


@pytest.mark.integration
def test_cli_bank_add_rejects_bad_input_before_creating_anything(tmp_path):
    db = tmp_path / "b.sqlite"
    bad = tmp_path / "bad.txt"
    bad.write_text("garbage\n")
    new_bank = ("--category", "extremism", "--action", "block", "--db", str(db))
    p = _cli("bank", "add", "sparse", str(CHAIR), "--seconds-per-hash", "-1", *new_bank)
    assert p.returncode == 2  # a usage error, not a traceback
    assert "argument --seconds-per-hash: must be a number of seconds >= 0 (0 = every frame), got '-1'" in p.stderr
    p = _cli("bank", "add", "sparse", str(DATA / "chair-19-sd-bar.txt"), str(tmp_path / "missing.mp4"), *new_bank)
    assert p.returncode == 3 and _one_error_line(p).endswith(f"no such file: {tmp_path / 'missing.mp4'}")
    assert not db.exists()  # checked before the bank was created
    p = _cli("bank", "add", "sparse", str(bad), *new_bank)
    assert p.returncode == 3
    assert _one_error_line(p) == (
        f"framescan: error [UNSUPPORTED_FORMAT]: not a vPDQ hash file: {bad}:1: expected "
        "frame,quality,hex,timestamp, got 'garbage'"
    )
