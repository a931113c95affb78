"""Decode the selected video stream with PyAV, keeping frames in YUV 4:2:0 planes.

Frames come out as ``YuvFrame`` views on the decoder's own buffers (no RGB copy). Pixel
formats the preprocessing kernel does not read (yuv444p, 10-bit, RGB, gray, ...) are
converted to yuv420p by FFmpeg first. Corrupt packets are skipped and counted; a demuxer
error (e.g. a truncated file) ends decoding early and is recorded, so the report can say
how much of the clip was actually read.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ResourceExhausted, UnsupportedFormat
from .frames import KERNEL_PIXEL_FORMATS, ColorInfo, YuvFrame
from .probe import color_of_stream, display_transform
from .sample import PacketInfo, Sampler

log = logging.getLogger(__name__)

#: A packet presented this close before the next sampling instant is decoded anyway
#: (timestamps are rounded to the stream time base).
_SKIP_MARGIN = 1e-3
#: FFmpeg's own "auto" picks cores + 1 threads, 15-20% slower than 2 on a 2-core machine.
DEFAULT_DECODE_THREADS = 2
#: A group of pictures is buffered (as compressed packets) up to these bounds before it is
#: planned; a longer group is decoded whole (its tail cannot be dropped).
GROUP_MAX_BYTES = 64 << 20
GROUP_MAX_PACKETS = 2000


#: Codecs whose in-loop deblocking filter FFmpeg can skip (``skip_loop_filter``) and for which
#: that was measured (benchmarks/bench_fastdecode.py).
LOOP_FILTER_CODECS = frozenset({"h264", "hevc"})
#: FFmpeg's AVDiscard levels for ``skip_loop_filter``: the frames whose deblocking is skipped.
SKIP_LOOP_FILTER = ("noref", "bidir", "nointra", "nokey", "all")
#: The ``skip_loop_filter`` level of ``fast_decode`` (``ScanConfig.fast_decode``).
FAST_DECODE = "all"


@dataclass
class DecodeStats:
    """What the demuxer read and the decoder produced (the basis of the report's coverage)."""

    read_packets: int = 0  # packets demuxed (what frame limits count)
    decoded_frames: int = 0  # distinct frames decoded (a frame decoded again after a seek counts once)
    sampled_frames: int = 0
    first_time: float | None = None
    end_time: float | None = None  # time of the last frame read (decoded or skipped) + its duration
    corrupt_packets: int = 0
    corrupt_frames: int = 0
    stopped_by: str | None = None  # "error", "limit", "early_exit" or None (reached the end)
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def skipped_packets(self) -> int:
        """Packets read whose frame was not decoded (no sampled frame needed it), so that
        ``decoded_frames + skipped_packets + corrupt_packets == read_packets``."""
        return max(0, self.read_packets - self.decoded_frames - self.corrupt_packets)

    @property
    def decoded_seconds(self) -> float:
        if self.first_time is None or self.end_time is None:
            return 0.0
        return max(0.0, self.end_time - self.first_time)


def _plane_view(plane: Any, width: int, height: int) -> np.ndarray:
    """A ``(height, width)`` uint8 view on a PyAV plane (which may pad each line, and whose
    lines run bottom-up when its line size is negative)."""
    buf = np.frombuffer(plane, np.uint8)
    line = int(plane.line_size)
    rows = buf.reshape(-1, abs(line))
    if line < 0:
        rows = rows[::-1]
    return rows[:height, :width]


def to_yuv_frame(
    frame: Any, index: int, time: float, reformatter: Any = None, transform: tuple[int, bool] | None = None
) -> YuvFrame:
    """Wrap a decoded PyAV frame as a ``YuvFrame`` (converting its pixel format if needed);
    ``index`` is its index in the stream (``FrameDecoder._stream_index``).

    Pass one ``av.video.reformatter.VideoReformatter`` per stream: it keeps one single-threaded
    conversion context (``frame.reformat`` builds a new multi-threaded one per frame, whose
    threads live until the next garbage collection)."""
    import av

    fmt = frame.format.name
    matrix, full = color_of_stream(frame, fmt)
    # Reading frame.side_data ties the frame into a reference cycle (freed only by the garbage
    # collector): decoders pass the stream's transform, read once from its first frame.
    rotation, mirror = transform if transform is not None else display_transform(frame)
    keyframe = bool(frame.key_frame)
    pts = None if frame.pts is None else int(frame.pts)
    if fmt not in KERNEL_PIXEL_FORMATS:
        # FFmpeg converts (and, for RGB sources, encodes with the BT.601 limited-range matrix
        # that the kernel then inverts). YUV sources keep their matrix and range.
        src_is_yuv = fmt.startswith(("yuv", "yuvj", "nv", "p0", "p2", "gray"))
        try:
            if reformatter is None:
                reformatter = av.video.reformatter.VideoReformatter()
            frame = reformatter.reformat(frame, format="yuv420p", threads=1)
        except (av.error.FFmpegError, ValueError) as ex:
            raise UnsupportedFormat(f"pixel format {fmt} cannot be converted for scanning ({ex})") from ex
        if not src_is_yuv:
            matrix, full = "bt601", False
        elif fmt.startswith("gray"):
            full = False
    w, h = frame.width, frame.height
    cw, ch = (w + 1) // 2, (h + 1) // 2
    y = _plane_view(frame.planes[0], w, h)
    u = _plane_view(frame.planes[1], cw, ch)
    v = _plane_view(frame.planes[2], cw, ch)
    return YuvFrame(
        y=y,
        u=u,
        v=v,
        index=index,
        time=time,
        rotation=rotation,
        color=ColorInfo(matrix, full),
        keyframe=keyframe,
        mirror=mirror,
        pts=pts,
    )


class FrameDecoder:
    """Iterate the sampled frames of one video stream, counting everything decoded.

    ``should_stop`` is polled between packets (early exit, cancellation); ``on_frame`` sees
    every decoded frame's time, the running stats and the frame's size (limits: a stream can
    change size mid-way).
    """

    def __init__(
        self,
        container: Any,
        stream: Any,
        sampler: Sampler,
        threads: int = DEFAULT_DECODE_THREADS,
        should_stop: Callable[[], bool] | None = None,
        on_frame: Callable[[float, DecodeStats, int, int], None] | None = None,
        max_pixels: int | None = None,
        skip_loop_filter: str | None = None,
    ) -> None:
        self.container = container
        self.stream = stream
        self.sampler = sampler
        self.stats = DecodeStats()
        self._should_stop = should_stop or (lambda: False)
        self._on_frame = on_frame
        cc = stream.codec_context
        cc.thread_type = "AUTO" if threads > 1 else "SLICE"
        cc.thread_count = max(1, int(threads))
        if max_pixels:
            # FFmpeg refuses frames larger than this before allocating them (a later SPS
            # can change the size the header announced).
            cc.options = {**dict(cc.options or {}), "max_pixels": str(int(max_pixels))}
        if skip_loop_filter and cc.name in LOOP_FILTER_CODECS:
            if skip_loop_filter not in SKIP_LOOP_FILTER:
                raise ValueError(f"skip_loop_filter must be one of {SKIP_LOOP_FILTER}, got {skip_loop_filter!r}")
            # Deblocking skipped for these frames (FFmpeg's AVDiscard levels): faster, and the
            # pictures differ a little from the encoder's (see ``fast_decode`` in config).
            cc.options = {**dict(cc.options or {}), "skip_loop_filter": skip_loop_filter}
        tb = stream.time_base
        self._time_base = float(tb) if tb else None
        self._start = float(stream.start_time * tb) if (stream.start_time is not None and tb) else None
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self._frame_step = 1.0 / float(rate) if rate else None
        self._last_time: float | None = None
        self._last_step: float | None = None
        self._skip_mode = "DEFAULT"
        self._transform: tuple[int, bool] | None = None
        # Planned decoding (samplers that choose frames from the packets): the PTS of the
        # frames to keep, and whether planning still holds for this stream.
        self._targets: set[int] = set()
        self._planning = False
        self._stopped = False
        self._keyframe_times: list[float] = []  # seen while planning, for seeking later
        # Every demuxed packet's PTS, sorted: a frame's index in the stream is the rank of its
        # PTS (the decoder may skip frames, so decoded frames cannot be counted for it).
        self._packet_pts: list[int] = []
        self._decoded_pts: set[int] = set()  # frames decoded, so that decoding one again is not counted
        import av

        self._reformatter = av.video.reformatter.VideoReformatter()

    def _time_of(self, frame: Any) -> float:
        """Seconds from the stream start, from PTS (falling back to DTS, then to counting)."""
        ts = frame.pts if frame.pts is not None else frame.dts
        st = self.stats
        if ts is not None and self._time_base:
            t = float(ts) * self._time_base
            if self._start is None:
                self._start = t
            return t - self._start
        # No timestamps (raw Annex-B streams): count frames at the declared rate.
        if st.end_time is not None:
            return st.end_time
        return 0.0

    def _frame_duration(self, frame: Any, t: float) -> float:
        """The frame's display duration, never trusted beyond twice the last timestamp step
        (or 1 s): a patched sample table can give the last frame hours."""
        step = self._last_step or self._frame_step or 1.0
        if frame.duration and self._time_base:
            return min(float(frame.duration) * self._time_base, 2.0 * step, 1.0)
        return min(self._frame_step or 0.0, 1.0)

    def _stream_index(self, frame: Any, counter: int) -> int:
        """The frame's 0-based index in the stream in presentation order: the rank of its PTS
        among the packets demuxed (every packet presented before it has been demuxed by the
        time the decoder outputs it); ``counter`` (frames output so far) without timestamps."""
        if frame.pts is None or not self._packet_pts:
            return counter
        return bisect.bisect_left(self._packet_pts, int(frame.pts))

    def _skip_unneeded(self, packet: Any) -> None:
        """Tell the decoder to drop this packet's frame if it is a non-reference frame presented
        before the next instant the sampler can keep (``--fps`` on streams with B-frames)."""
        if packet.pts is None or not self._time_base:
            return
        need = self.sampler.next_needed()
        t = float(packet.pts) * self._time_base - (self._start or 0.0)
        self._set_skip("NONREF" if need is not None and t + _SKIP_MARGIN < need else "DEFAULT")

    def _set_skip(self, mode: str) -> None:
        if mode != self._skip_mode:
            self.stream.codec_context.skip_frame = mode
            self._skip_mode = mode

    def _emit(self, frames: list[Any]) -> Iterator[YuvFrame]:
        st = self.stats
        for frame in frames:
            if frame.is_corrupt:
                st.corrupt_frames += 1
            t = self._time_of(frame)
            if self._last_time is not None and t > self._last_time:
                self._last_step = t - self._last_time
            self._last_time = t
            index = st.decoded_frames
            st.decoded_frames += 1
            if frame.pts is not None:
                self._decoded_pts.add(int(frame.pts))
            if st.first_time is None:
                st.first_time = t
            end = t + self._frame_duration(frame, t)
            st.end_time = end if st.end_time is None else max(st.end_time, end)
            if self._on_frame is not None:
                self._on_frame(t, st, frame.width, frame.height)
            if self._planning and frame.pts is not None:
                keep = frame.pts in self._targets
                self._targets.discard(frame.pts)
            else:
                keep = self.sampler.keep(index, t, bool(frame.key_frame))
            if keep:
                st.sampled_frames += 1
                if self._transform is None:
                    self._transform = display_transform(frame)
                yield to_yuv_frame(frame, self._stream_index(frame, index), t, self._reformatter, self._transform)

    def _packets(self) -> Iterator[Any]:
        """Demuxed packets; a demuxer error or a stop request ends them (recorded in stats)."""
        import av

        st = self.stats
        demux = self.container.demux(self.stream)
        while True:
            if self._should_stop():
                st.stopped_by = st.stopped_by or "early_exit"
                self._stopped = True
                return
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.MemoryError as ex:
                raise ResourceExhausted(f"demuxing ran out of memory ({ex.strerror or ex})") from ex
            except av.error.FFmpegError as ex:
                st.stopped_by, st.error = "error", f"demuxing failed: {ex.strerror or ex}"
                log.info("demux error: %s", ex)
                return
            if packet.size:
                st.read_packets += 1
                if packet.pts is not None:
                    bisect.insort(self._packet_pts, int(packet.pts))
            yield packet

    def _packet_frames(self, packet: Any) -> list[Any] | None:
        """The frames decoding ``packet`` gives (a corrupt packet: none, counted); None at the
        decoder's end of stream."""
        import av

        try:
            return packet.decode()
        except av.error.EOFError:
            return None
        except av.error.MemoryError as ex:
            raise ResourceExhausted(f"decoding ran out of memory ({ex.strerror or ex})") from ex
        except av.error.FFmpegError as ex:
            self.stats.corrupt_packets += 1
            log.debug("corrupt packet skipped: %s", ex)
            return []

    def _decode(self, packet: Any) -> Iterator[YuvFrame]:
        yield from self._emit(self._packet_frames(packet) or [])

    def _packet_time(self, packet: Any) -> float | None:
        if packet.pts is None or not self._time_base:
            return None
        if self._start is None:
            self._start = float(packet.pts) * self._time_base
        return float(packet.pts) * self._time_base - self._start

    def _groups(self) -> Iterator[tuple[list[Any], bool]]:
        """Packets in groups of pictures (keyframe to keyframe): (packets, complete), where a
        group is incomplete when it was cut at the buffer bounds."""
        group: list[Any] = []
        size = 0
        for packet in self._packets():
            if packet.size == 0:  # the demuxer's end marker: the decoder is flushed at the end
                continue
            if packet.is_keyframe and group:
                yield group, True
                group, size = [], 0
            group.append(packet)
            size += packet.size
            if size >= GROUP_MAX_BYTES or len(group) >= GROUP_MAX_PACKETS:
                yield group, False
                group, size = [], 0
        if group and not self._stopped:
            yield group, True

    def _decode_group(self, group: list[Any], complete: bool, lead_broken: bool) -> Iterator[YuvFrame]:
        """Decode one planned group: up to its last planned frame, non-reference frames that are
        not planned skipped, the rest of the group (frames nobody needs) not decoded at all.
        Returns (through StopIteration) whether the group's tail was dropped."""
        times = [self._packet_time(p) for p in group]
        # Leading pictures (shown before the group's keyframe) reference the previous group:
        # when its tail was not decoded they cannot be decoded correctly, so they are not used.
        key_time = times[0] if group[0].is_keyframe else None
        usable = [
            i
            for i, t in enumerate(times)
            if t is not None and not (lead_broken and key_time is not None and t < key_time)
        ]
        if len(usable) < len(group) and any(t is None for t in times):
            # No timestamps to plan on: decode it all, the sampler keeps frames as they come.
            self._planning = False
            for p in group:
                self._skip_unneeded(p)
                yield from self._decode(p)
            return False
        infos = [PacketInfo(times[i], int(group[i].size), bool(group[i].is_keyframe)) for i in usable]  # type: ignore[arg-type]
        self._keyframe_times += [info.time for info in infos if info.keyframe]
        chosen = {usable[j] for j in (self.sampler.plan(infos) or [])}
        self._targets.update(int(group[i].pts) for i in chosen)
        last = max(chosen, default=-1) if complete else len(group) - 1
        st = self.stats
        for i, p in enumerate(group):
            if i > last or (i not in chosen and i not in usable):
                t = times[i]
                if t is not None:
                    dur = float(p.duration) * self._time_base if (p.duration and self._time_base) else 0.0
                    end = t + min(dur, 1.0)
                    st.end_time = end if st.end_time is None else max(st.end_time, end)
                    if self._on_frame is not None:
                        cc = self.stream.codec_context
                        self._on_frame(t, st, cc.width, cc.height)
                continue
            if self._should_stop():
                return False
            self._set_skip("DEFAULT" if i in chosen else "NONREF")
            yield from self._decode(p)
        return last < len(group) - 1

    def frames_at(self, pending: list[float]) -> Iterator[YuvFrame]:
        """The first frame at or after each instant (seconds) in ``pending``, for scoring extra
        frames after the main pass. ``pending`` is live: the caller may add instants (kept
        sorted, e.g. with ``bisect.insort``) between frames, and this reads them as it goes.
        Decoding runs forward and seeks (to the keyframe before an instant) only when the
        instant lies behind the decoder, or a keyframe seen in the main pass lies between the
        decoder and the instant. Instants past the end of the stream give nothing."""
        import av

        if not self._time_base:
            pending.clear()
            return
        self._planning = False
        self._set_skip("DEFAULT")
        st = self.stats
        cc = self.stream.codec_context
        keyframes = sorted(self._keyframe_times)
        position: float | None = None  # time of the last frame decoded since the last seek
        packets: Iterator[Any] | None = None

        sought_to: float | None = None  # the keyframe the last seek was for

        def must_seek(target: float) -> bool:
            nonlocal sought_to
            if packets is None:
                return True
            if position is None:
                return False  # just sought: the decoder has not output a frame yet
            if position > target + 1e-6:
                sought_to = None
                return True  # behind the decoder
            k = bisect.bisect_right(keyframes, target + 1e-6) - 1
            if k >= 0 and position + 1e-6 < keyframes[k] and keyframes[k] != sought_to:
                sought_to = keyframes[k]  # a keyframe is nearer (once per keyframe: no seek loop)
                return True
            return False

        while pending:
            target = pending[0]
            if must_seek(target):
                offset = int((target + (self._start or 0.0)) / self._time_base)
                try:
                    self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
                except av.error.FFmpegError as ex:
                    st.warnings.append(f"seeking to {target:.2f} s failed ({ex.strerror or ex}): frame not scored")
                    pending.pop(0)
                    continue
                cc.flush_buffers()
                packets = iter(self.container.demux(self.stream))
                position = None
            again = False
            for packet in packets:  # type: ignore[union-attr]
                frames = self._packet_frames(packet)
                if frames is None:
                    break
                for frame in frames:
                    if frame.pts is None or int(frame.pts) not in self._decoded_pts:
                        st.decoded_frames += 1
                        if frame.pts is not None:
                            self._decoded_pts.add(int(frame.pts))
                    t = self._time_of(frame)
                    position = t
                    if pending and t + 1e-6 >= pending[0]:
                        while pending and t + 1e-6 >= pending[0]:
                            pending.pop(0)
                        st.sampled_frames += 1
                        index = self._stream_index(frame, st.decoded_frames - 1)
                        yield to_yuv_frame(frame, index, t, self._reformatter, self._transform)
                if not pending:
                    break
                if must_seek(pending[0]):
                    again = True
                    break
            if not again:
                pending.clear()  # end of stream: no frame at or after the rest
        cc.flush_buffers()

    def __iter__(self) -> Iterator[YuvFrame]:
        import av

        self.sampler.reset()
        self._planning = self.sampler.plans and self._time_base is not None
        if self._planning:
            dropped = False
            for group, complete in self._groups():
                if not self._planning:
                    for p in group:
                        self._skip_unneeded(p)
                        yield from self._decode(p)
                    continue
                dropped = yield from self._decode_group(group, complete, dropped)
        else:
            for packet in self._packets():
                self._skip_unneeded(packet)
                yield from self._decode(packet)
        if self._stopped:
            return
        # Flush the decoder (frames held back for reordering / frame threading).
        try:
            yield from self._emit(self.stream.codec_context.decode(None))
        except av.error.EOFError:
            pass
        except av.error.FFmpegError as ex:
            self.stats.corrupt_packets += 1
            log.debug("decoder flush failed: %s", ex)
