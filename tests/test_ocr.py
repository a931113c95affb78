"""On-screen text: RapidOCR on caption clip frames, the lexicon on what it reads, the frame gate,
and YUV -> upright RGB. OCR costs ~0.15-0.3 s a frame: only a handful of frames are read."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest

from framescan.decode import to_yuv_frame
from framescan.errors import ConfigError
from framescan.frames import ColorInfo, YuvFrame
from framescan.lexicon import Lexicon
from framescan.ocr import OCR_DET_FILE, OCR_MODEL, OCR_REC_FILE, OcrReader, TextGate, evidence, find_terms, frame_to_rgb
from framescan.preprocess import yuv_to_rgb_reference
from framescan.synth import draw_caption

FPS = 10
CAPTIONS = [
    (1.0, 2.0, "dasar goblok"),
    (2.0, 3.0, "kill yourself loser"),
    (3.0, 4.0, "resep nasi goreng enak"),
]


@pytest.fixture(scope="module")
def frames(make_clip: Callable[..., Path]) -> list[YuvFrame]:
    """Every frame of a 4.5 s 720x1280 caption clip (no caption before 1 s and after 4 s)."""
    path = make_clip(captions=CAPTIONS, seconds=4.5, fps=FPS)
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            yf = to_yuv_frame(f, i, f.time)
            out.append(YuvFrame(yf.y.copy(), yf.u.copy(), yf.v.copy(), i, yf.time, color=yf.color))
    return out


@pytest.fixture(scope="module")
def reader() -> OcrReader:
    return OcrReader()


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(env=False)


def at(frames: list[YuvFrame], t: float) -> YuvFrame:
    return min(frames, key=lambda f: abs(f.time - t))


def caption_extent(text: str, size: tuple[int, int] = (720, 1280)) -> tuple[int, int, int, int]:
    """Where ``draw_caption`` puts the white letters of ``text`` (x1, y1, x2, y2)."""
    img = draw_caption(np.full((size[1], size[0], 3), 128, np.uint8), text)
    ys, xs = np.nonzero(img[..., 0] > 200)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_reads_an_indonesian_insult_and_matches_it(frames, reader: OcrReader, lexicon: Lexicon) -> None:
    frame = at(frames, 1.5)
    lines = reader.read_frame(frame)
    assert [t.text.lower() for t in lines] == ["dasar goblok"]
    assert lines[0].score > 0.8
    hits = find_terms(lines, lexicon)
    assert {(h.match.term, h.match.category) for h in hits} == {("dasar goblok", "bullying"), ("goblok*", "bullying")}
    # the box is in full-size frame pixels (OCR ran at 540x960) and surrounds the drawn letters
    x1, y1, x2, y2 = caption_extent("dasar goblok")
    bx1, by1, bx2, by2 = lines[0].box
    assert bx1 <= x1 + 4 and by1 <= y1 + 4 and bx2 >= x2 - 4 and by2 >= y2 - 4
    assert (bx2 - bx1) < 1.5 * (x2 - x1) and (by2 - by1) < 3.0 * (y2 - y1)
    assert 0 <= bx1 < bx2 <= 720 and 0 <= by1 < by2 <= 1280
    ev = evidence(hits, frame.index, frame.time)
    assert {e.category for e in ev} == {"bullying"} and all(e.model == OCR_MODEL for e in ev)
    strongest = max(ev, key=lambda e: e.weighted)
    assert strongest.label == "bullying.id:dasar goblok"
    assert strongest.weighted == pytest.approx(strongest.score * 0.7)
    assert strongest.box == lines[0].box and strongest.text.lower() == "dasar goblok"
    assert strongest.to_dict()["text"] == strongest.text


def test_reads_an_english_phrase(frames, reader: OcrReader, lexicon: Lexicon) -> None:
    lines = reader.read(frame_to_rgb(at(frames, 2.5)))  # full-size RGB: read() shrinks it itself
    assert " ".join(t.text for t in lines).lower() == "kill yourself loser"
    terms = {(h.match.term, h.match.category) for h in find_terms(lines, lexicon)}
    assert terms == {("kill yourself", "bullying"), ("loser", "bullying")}


def test_harmless_caption_is_read_but_matches_nothing(frames, reader: OcrReader, lexicon: Lexicon) -> None:
    lines = reader.read_frame(at(frames, 3.5))
    assert " ".join(t.text for t in lines).lower() == "resep nasi goreng enak"
    assert find_terms(lines, lexicon) == []


def test_moving_background_without_text_reads_nothing(frames, reader: OcrReader) -> None:
    assert reader.read_frame(at(frames, 0.5)) == []
    assert reader.read_frame(at(frames, 4.3)) == []


def test_phrase_split_over_two_lines_is_found(lexicon: Lexicon) -> None:
    from framescan.ocr import TextLine

    lines = [TextLine("kamu mending bunuh", 0.9, (10, 10, 100, 30)), TextLine("diri aja", 0.8, (20, 40, 90, 60))]
    hits = [h for h in find_terms(lines, lexicon) if h.match.term == "bunuh diri aja"]
    assert len(hits) == 1
    assert hits[0].score == 0.8 and hits[0].box == (10, 10, 100, 60) and hits[0].text == "bunuh diri aja"


def test_gate_reads_when_a_caption_appears_not_while_the_background_pans(frames) -> None:
    gate = TextGate()
    read = [round(f.time, 1) for f in frames if gate.should_read(f)]
    # the first frame, then each caption change (1, 2, 3 s: appear or change; 4 s: disappear)
    assert read == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_gate_intervals() -> None:
    gate = TextGate(max_interval=2.0, min_interval=0.5)
    still = np.full((1280, 720), 90, np.uint8)
    times = [i / 10 for i in range(51)]
    assert [t for t in times if gate.should_read(still, t)] == [0.0, 2.0, 4.0]
    gate.reset()
    captioned = draw_caption(np.full((1280, 720, 3), 90, np.uint8), "hello there")
    images = [still] * 5 + [captioned] * 5  # the caption appears at 0.5 s
    assert [t for t, im in zip(times, images) if gate.should_read(im, t)] == [0.0, 0.5]
    gate.reset()
    images = [still, captioned, still, captioned] * 3  # flickering: read at most every 0.5 s
    assert [t for t, im in zip(times, images) if gate.should_read(im, t)] == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="time"):
        gate.should_read(still)
    with pytest.raises(ConfigError):
        TextGate(max_interval=0)


@pytest.mark.parametrize("w,h", [(720, 1280), (33, 17), (2, 2)])
@pytest.mark.parametrize("rotation", [0, 90, 180, -90])
@pytest.mark.parametrize("mirror", [False, True])
def test_frame_to_rgb_matches_the_reference(w: int, h: int, rotation: int, mirror: bool) -> None:
    rng = np.random.default_rng(w + rotation + 90)
    ch, cw = (h + 1) // 2, (w + 1) // 2
    for color in (ColorInfo("bt601", False), ColorInfo("bt709", True)):
        y = rng.integers(0, 256, (h, w + 5), dtype=np.uint8)[:, :w]  # padded lines, like a decoder's
        u, v = (rng.integers(0, 256, (ch, cw + 3), dtype=np.uint8)[:, :cw] for _ in range(2))
        frame = YuvFrame(y, u, v, 0, 0.0, rotation, color, mirror=mirror)
        rgb = frame_to_rgb(frame)
        ref = np.clip(np.round(yuv_to_rgb_reference(frame)), 0, 255)
        assert rgb.dtype == np.uint8 and rgb.shape == ref.shape == (*frame.upright_size[::-1], 3)
        assert np.abs(rgb.astype(int) - ref).max() <= 1


@pytest.mark.parametrize("rotation", [0, 90, -90])
@pytest.mark.parametrize("mirror", [False, True])
def test_frame_to_rgb_shrinks_upright(rotation: int, mirror: bool) -> None:
    import cv2

    h, w = (1280, 720) if rotation == 0 else (720, 1280)  # a portrait video, stored sideways when rotated
    y = np.full((h, w), 16, np.uint8)
    y[: h // 8, : w // 3] = 235  # a white patch in the stored top-left corner
    grey = np.full((h // 2, w // 2), 128, np.uint8)
    frame = YuvFrame(y, grey, grey, 0, 0.0, rotation, mirror=mirror)
    small = frame_to_rgb(frame, max_side=960)
    assert small.shape == (960, 540, 3)
    ref = cv2.resize(yuv_to_rgb_reference(frame), (540, 960), interpolation=cv2.INTER_AREA)
    assert np.mean((small[..., 0] > 128) == (ref[..., 0] > 128)) > 0.995


def test_read_refuses_a_wrong_image(reader: OcrReader) -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        reader.read(np.zeros((10, 10), np.uint8))


def test_missing_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # import fails
    with pytest.raises(ConfigError, match=r'pip install "framescan\[ocr\]"'):
        OcrReader()


def test_models_ship_in_the_package() -> None:
    """Nothing is downloaded at run time: the PP-OCRv4 files are framescan's own, as models/build_ocr.py pins them."""
    import importlib.resources
    import importlib.util

    spec = importlib.util.spec_from_file_location("build_ocr", Path(__file__).parent.parent / "models" / "build_ocr.py")
    assert spec is not None and spec.loader is not None
    build_ocr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_ocr)
    models = importlib.resources.files("framescan._models")
    pinned = {Path(name).name: digest for name, digest in build_ocr.FILES.items()}
    assert set(pinned) == {OCR_DET_FILE, OCR_REC_FILE}
    for name, digest in pinned.items():
        assert build_ocr.sha256(models.joinpath(name).read_bytes()) == digest, name
