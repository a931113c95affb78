"""Clips with a spoken track for the speech tests and benchmark: espeak-ng speaks sentences (real
synthesis, real audio encoders: AAC in MP4, Opus in Matroska), muxed beside a generated video."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

#: The rate the audio tracks are built at (espeak-ng's own output rate).
RATE = 22050


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, lang: str = "en", speed: int = 175) -> np.ndarray:
    """``text`` spoken by espeak-ng (voice ``lang``, ``speed`` words a minute) as float32 at ``RATE``."""
    import wave

    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-v", lang, "-s", str(speed), "-w", str(wav), text], check=True)
        with wave.open(str(wav)) as w:
            assert w.getframerate() == RATE and w.getsampwidth() == 2 and w.getnchannels() == 1
            pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
    return pcm.astype(np.float32) / 32768.0


def track(seconds: float, pieces: Sequence[tuple[float, np.ndarray]] = ()) -> np.ndarray:
    """A mono track of ``seconds`` with each ``(start_s, audio)`` placed at its start."""
    out = np.zeros(int(seconds * RATE), np.float32)
    for start, a in pieces:
        s = int(start * RATE)
        n = min(a.size, out.size - s)
        out[s : s + n] += a[:n]
    return out


def tones(seconds: float, seed: int = 1) -> np.ndarray:
    """Music-like: a melody of sine notes with harmonics, 0.25-0.5 s each."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(map(len, out)) < seconds * RATE:
        f = 220.0 * 2 ** (rng.integers(0, 24) / 12)
        n = int(RATE * rng.choice([0.25, 0.5]))
        t = np.arange(n) / RATE
        env = np.minimum(1.0, np.minimum(t, t[::-1]) * 40)
        out.append((0.2 * np.sin(2 * np.pi * f * t) + 0.1 * np.sin(4 * np.pi * f * t)) * env)
    return np.concatenate(out)[: int(seconds * RATE)].astype(np.float32)


def noise(seconds: float, level: float = 0.1, seed: int = 2) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level).astype(np.float32)


def mux(
    video: Path, audio: np.ndarray | None, out: Path, codec: str = "aac", channels: int = 1, corrupt: bool = False
) -> Path:
    """Copy ``video``'s video stream into ``out`` with ``audio`` (float32 at ``RATE``) encoded by
    ``codec`` (``aac``, ``libopus``) as its audio stream (none when ``audio`` is None). ``corrupt``:
    every audio packet's payload replaced by random bytes of the same size (timestamps kept)."""
    import av

    rate = 48000 if codec == "libopus" else RATE
    with av.open(str(video)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vout = dst.add_stream_from_template(vin)
        aout = None
        if audio is not None:
            layout = "mono" if channels == 1 else "stereo"
            aout = dst.add_stream(codec, rate=rate, layout=layout)
        for packet in src.demux(vin):
            if packet.dts is None:
                continue
            packet.stream = vout
            dst.mux(packet)
        if aout is not None:
            frame = av.AudioFrame.from_ndarray(
                np.tile(audio, (channels, 1)) if channels > 1 else audio[None, :], format="fltp", layout=layout
            )
            frame.sample_rate = RATE
            frame.pts = 0
            frame.time_base = Fraction(1, RATE)
            resampler = av.AudioResampler(format=aout.codec_context.format.name, layout=layout, rate=rate)
            frame_size = aout.codec_context.frame_size or 1024
            fifo = av.AudioFifo()
            for f in resampler.resample(frame) + resampler.resample(None):
                fifo.write(f)
            rng = np.random.default_rng(3)

            def put(p: av.Packet) -> None:
                if corrupt:
                    q = av.Packet(rng.integers(0, 256, p.size, np.uint8).tobytes())
                    q.pts, q.dts, q.time_base, q.stream = p.pts, p.dts, p.time_base, aout
                    p = q
                dst.mux(p)

            for f in fifo.read_many(frame_size, partial=True):
                for p in aout.encode(f):
                    put(p)
            for p in aout.encode(None):
                put(p)
    return out
