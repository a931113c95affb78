"""Spoken words (``--speech``): real speech made by espeak-ng, muxed with AAC and Opus beside a
generated video, transcribed by the bundled Whisper base through a real ``Scanner`` (loaded once)."""

from __future__ import annotations

import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from framescan.config import ScanConfig
from framescan.errors import ConfigError, ModelError
from framescan.lexicon import Lexicon, _within_one_edit, match_fuzzy

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "benchmarks"))

from speech_sentences import SPEED
from speechclips import have_espeak, mux, noise, speak, tones, track

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------------------ matching (no model)


def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_one_edit_agrees_with_levenshtein_on_random_strings() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        b = list(a)
        for _ in range(rng.randint(0, 2)):  # mostly near strings, so distance 1 is common
            op = rng.randint(0, 2)
            k = rng.randint(0, len(b))
            if op == 0:
                b.insert(k, rng.choice("abc"))
            elif b and k < len(b):
                if op == 1:
                    del b[k]
                else:
                    b[k] = rng.choice("abc")
        b = "".join(b)
        assert _within_one_edit(a, b) == (_levenshtein(a, b) == 1), (a, b)


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.load(env=False)


@pytest.mark.parametrize(
    "heard, term",
    [
        ("join the caliphat now", "join the caliphate"),  # a letter dropped
        ("kill all the infidel", "kill the infidels"),  # not the same words: no
        ("they said kil yourself", "kill yourself"),  # a doubled letter heard once
        ("daula islamiyah", "daulah islamiyah"),
        ("bunuh semua kafer", "bunuh semua kafir"),  # a vowel misheard
    ],
)
def test_fuzzy_finds_one_letter_off_in_long_terms(lexicon: Lexicon, heard: str, term: str) -> None:
    found = {m.term for m in match_fuzzy(heard, lexicon)}
    if term == "kill the infidels":
        assert term not in found
    else:
        assert term in found
        assert term not in {m.term for m in lexicon.match(heard)}  # exact matching misses it


def test_fuzzy_leaves_short_terms_exact_and_skips_wildcards(lexicon: Lexicon) -> None:
    # "goblok*" and the 4-letter "bego" are never fuzzy; "idiot" (5 letters) is under the minimum
    assert match_fuzzy("si goblak bega idiat", lexicon) == []
    m = match_fuzzy("Mereka  RAS rendahn!", lexicon)
    assert [(x.term, "Mereka  RAS rendahn!"[x.start : x.end]) for x in m] == [("ras rendahan", "RAS rendahn")]


# ------------------------------------------------------------------ configuration (no model)


def test_speech_settings_are_checked_and_fingerprinted() -> None:
    with pytest.raises(ConfigError, match="only with speech=True"):
        ScanConfig(transcript=True)
    with pytest.raises(ConfigError, match="not a language code"):
        ScanConfig(speech=True, speech_languages=["Indonesian"])
    c = ScanConfig(speech=True, speech_languages=["id"])
    assert ScanConfig.from_dict(c.to_dict()) == c
    assert c.fingerprint().config != ScanConfig().fingerprint().config
    assert c.fingerprint().config != ScanConfig(speech=True).fingerprint().config  # languages count


def test_speech_module_is_light() -> None:
    code = "import sys, framescan.speech\nprint(sorted({m.split('.')[0] for m in sys.modules} & {'faster_whisper', 'ctranslate2', 'numpy', 'av'}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize(
    "args, says",
    [
        (["--transcript"], "--transcript is used only with --speech"),
        (["--speech", "--speech-model", "/no/such/model"], "not a CTranslate2 Whisper model directory"),
        (["--speech", "--speech-languages", "id,EN"], "'EN' is not a language code"),
    ],
)
def test_cli_speech_usage_errors(args: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from framescan.cli.main import main

    clip = tmp_path / "x.mp4"
    clip.write_bytes(b"x")
    with pytest.raises(SystemExit) as ex:  # argparse's usage error: before anything loads
        main(["scan", *args, str(clip)])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and says in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1


# ------------------------------------------------------------------ the model files


def test_model_is_joined_from_the_wheels_and_verified(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    from framescan.speech import MODEL_BYTES, bundled_model_dir

    d = bundled_model_dir(tmp_path / "m")
    assert (d / "model.bin").stat().st_size == MODEL_BYTES
    with open(d / "model.bin", "r+b") as f:  # one byte changed: refused, with what to do
        f.seek(1000)
        b = f.read(1)
        f.seek(1000)
        f.write(bytes([b[0] ^ 1]))
    with pytest.raises(ModelError, match=r"delete .* to rebuild"):
        bundled_model_dir(d)


# ------------------------------------------------------------------ scans

needs_speech = pytest.mark.skipif(not have_espeak(), reason="espeak-ng is not installed (.ci/run installs it)")

#: (start s, sentence, category): where each sentence is said in its clip
EN_CLIP = [
    (0.5, "Join the caliphate soldiers, kill all the infidels.", "extremism"),
    (5.0, "You are so ugly, go kill yourself.", "bullying"),
    (9.0, "We should kill all jews in this city.", "hate"),
]
# Chosen by measurement (docs/speech.md): of espeak-ng's Indonesian, this sentence at its default
# speed keeps "mending mati" through Whisper base (AAC and Opus); most others lose their terms.
ID_CLIP = [
    (0.5, "Kamu jelek banget, mending mati aja lu. Dasar goblok.", "bullying"),
]
ID_SPEED = 175
EN_HARMLESS = "Good morning everyone, welcome back to my channel."
ID_HARMLESS = "Selamat pagi semuanya, apa kabar hari ini?"
SIGNALS = ("hate", "bullying", "extremism")
SECONDS, SHORT = 13, 5  # the clip with three sentences, the others


@pytest.fixture(scope="module")
def speech_scanner(scanner_for: Callable[..., Any]) -> Any:
    pytest.importorskip("faster_whisper")
    return scanner_for(fps=1, banks=False, speech=True, transcript=True)


@pytest.fixture(scope="module")
def clips(make_clip: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not have_espeak():
        pytest.skip("espeak-ng is not installed (.ci/run installs it)")
    d = tmp_path_factory.mktemp("speech")
    long = make_clip(width=160, height=288, seconds=SECONDS, fps=10)
    short = make_clip(width=160, height=288, seconds=SHORT, fps=10)

    def said(sentences: list[tuple[float, str]], lang: str, seconds: float, speed: int | None = None) -> Any:
        return track(seconds, [(t, speak(s, lang, speed or SPEED[lang])) for t, s in sentences])

    return {
        "en": mux(long, said([(t, s) for t, s, _ in EN_CLIP], "en", SECONDS), d / "en.mp4", "aac"),
        "id": mux(short, said([(t, s) for t, s, _ in ID_CLIP], "id", SHORT, ID_SPEED), d / "id.mkv", "libopus"),
        "en_harmless": mux(short, said([(0.5, EN_HARMLESS)], "en", SHORT), d / "enh.mkv", "libopus"),
        "id_harmless": mux(short, said([(0.5, ID_HARMLESS)], "id", SHORT), d / "idh.mp4", "aac"),
        "tones": mux(short, tones(SHORT), d / "tones.mp4", "aac", channels=2),
        "noise": mux(short, noise(SHORT), d / "noise.mkv", "libopus"),
        "silence": mux(long, track(SECONDS), d / "silence.mp4", "aac"),
        "no_audio": mux(short, None, d / "none.mp4"),
        "corrupt": mux(short, said([(0.5, EN_CLIP[0][1])], "en", SHORT), d / "corrupt.mp4", "aac", corrupt=True),
    }


def _speech_segments(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in report["segments"] if s["category"] in SIGNALS]


@needs_speech
@pytest.mark.parametrize("name, sentences", [("en", EN_CLIP), ("id", ID_CLIP)])
def test_spoken_terms_are_found_in_their_category_at_their_time(
    speech_scanner: Any, clips: dict[str, Path], name: str, sentences: list[tuple[float, str, str]]
) -> None:
    r = speech_scanner.scan(clips[name]).to_dict()
    sp = r["speech"]
    assert sp["status"] == "transcribed" and sp["hits"] >= len(sentences)
    assert sp["transcript"] and sp["speech_seconds"] > 2
    segs = _speech_segments(r)
    for start, sentence, category in sentences:
        end = start + len(sentence) * 0.075  # espeak's pace: ~13 characters a second at 175, fewer at 140
        hits = [s for s in segs if s["category"] == category and start - 1 <= s["start"] <= end + 1]
        assert hits, (sentence, segs, sp["transcript"])
        ev = [r["evidence"][i] for i in hits[0]["evidence"]]
        heard = [e for e in ev if e["model"] == "speech" and not e.get("reused")]
        assert heard and heard[0]["frame_index"] is None and heard[0]["end"] > heard[0]["time"]
        assert heard[0]["text"] and heard[0]["label"].startswith(f"{category}.")
        assert r["categories"][category]["decision"] != "allow"
    # no segment in a category no sentence is in
    assert {s["category"] for s in segs} <= {c for _, _, c in sentences} | {"hate"}  # "kill all the infidels"
    assert any(s.startswith("speech+lexicon:") for s in r["categories"]["hate"]["signals"])
    assert r["timings"]["speech"] > 0


@needs_speech
@pytest.mark.parametrize("name", ["en_harmless", "id_harmless"])
def test_harmless_speech_is_transcribed_and_allowed(speech_scanner: Any, clips: dict[str, Path], name: str) -> None:
    data = clips[name].read_bytes()  # bytes: the audio's own demuxer reads a view of the same buffer
    r = speech_scanner.scan(data, name=name).to_dict()
    assert r["speech"]["status"] == "transcribed" and r["speech"]["transcript"], r["speech"]
    assert r["speech"]["language"] == name[:2]
    assert _speech_segments(r) == [] and r["decision"] == "allow" and r["speech"]["hits"] == 0


@needs_speech
@pytest.mark.parametrize("name", ["tones", "noise", "silence"])
def test_music_noise_and_silence_give_no_transcript(speech_scanner: Any, clips: dict[str, Path], name: str) -> None:
    r = speech_scanner.scan(clips[name]).to_dict()
    sp = r["speech"]
    seconds = SECONDS if name == "silence" else SHORT
    assert sp["status"] == "transcribed" and sp["audio_seconds"] == pytest.approx(seconds, abs=0.2)
    assert sp["transcript"] == [] and sp["segments"] == 0, sp
    assert _speech_segments(r) == [] and r["decision"] == "allow"


@needs_speech
def test_no_audio_stream_is_said_and_not_scored(speech_scanner: Any, clips: dict[str, Path]) -> None:
    r = speech_scanner.scan(clips["no_audio"]).to_dict()
    assert r["speech"]["status"] == "no audio stream" and r["speech"]["audio_seconds"] is None
    assert r["status"] == "complete" and r["decision"] == "allow"
    from framescan.cli.scan import render
    from framescan.report import Report

    assert "  speech: no audio stream" in render(Report.from_dict(r)).splitlines()


@needs_speech
def test_corrupt_audio_makes_the_scan_partial(speech_scanner: Any, clips: dict[str, Path]) -> None:
    r = speech_scanner.scan(clips["corrupt"]).to_dict()
    sp = r["speech"]
    assert sp["status"] == "error" and sp["error"]["code"] and "audio" in sp["error"]["message"]
    assert r["status"] == "partial" and r["decision"] == "review"  # a partial scan is never a plain allow
    assert any(w.startswith("speech: ") for w in r["warnings"])


@needs_speech
def test_a_stopped_speech_scan_ends_without_transcribing(speech_scanner: Any, clips: dict[str, Path]) -> None:
    from framescan.limits import DEFAULT_LIMITS
    from framescan.probe import as_source
    from framescan.speech import SpeechScan

    s = SpeechScan(speech_scanner.transcriber, speech_scanner.lexicon, as_source(str(clips["en"])), DEFAULT_LIMITS)
    s.stop.set()  # as an early exit does
    s.start()
    s.join()
    assert s.status == "stopped early" and s.hits == [] and s.transcript is None


@needs_speech
def test_audio_over_the_duration_limit_is_refused(clips: dict[str, Path]) -> None:
    from framescan.errors import LimitExceeded
    from framescan.limits import DEFAULT_LIMITS
    from framescan.probe import as_source
    from framescan.speech import SAMPLE_RATE, decode_audio

    src = as_source(str(clips["silence"]))
    audio, warnings = decode_audio(src, DEFAULT_LIMITS)  # type: ignore[misc]
    assert audio.dtype.name == "float32" and abs(audio.size / SAMPLE_RATE - SECONDS) < 0.2 and warnings == []
    with pytest.raises(LimitExceeded, match="max_duration"):
        decode_audio(src, DEFAULT_LIMITS.updated(max_duration=5.0))
