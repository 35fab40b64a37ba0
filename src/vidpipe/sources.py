"""Where frames come from: video files and streams (PyAV), image folders, globs, single images and image URLs.

Every source yields `Frame`s in source order with their 0-based source index and their timestamp, and
applies the frame selection (`Sampling`) itself, so frames that are skipped are never converted to
arrays.
"""

from __future__ import annotations

import bisect
import configparser
import contextlib
import enum
import glob
import logging
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import InputError
from .frames import Frame, VideoInfo

log = logging.getLogger("vidpipe")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
DEFAULT_SEQUENCE_FPS = 30.0
MAX_FPS = 10_000  # past any camera; a sampling rate above the source's own keeps every frame
URL_TIMEOUT_S = 30.0


SAMPLE_MODES = ("exact", "keyframes")


class Decision(enum.Enum):
    KEEP = enum.auto()
    SKIP = enum.auto()
    STOP = enum.auto()


@dataclass(frozen=True)
class Sampling:
    """Which frames of a source to process.

    `stride` keeps every Nth frame by source index; `sample_fps` keeps the first frame of every
    1/sample_fps seconds by timestamp (right for any frame rate, e.g. 1 fps for YouTube-8M style
    features); `start`/`end` are seconds; `max_frames` caps the frames kept.
    """

    stride: int = 1
    sample_fps: float | None = None
    start: float = 0.0
    end: float | None = None
    max_frames: int | None = None
    sample_mode: str = "exact"  # keyframes: only keyframes are decoded, each standing for its rate's slot

    def __post_init__(self) -> None:
        for name in ("sample_fps", "start", "end"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InputError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if self.stride < 1:
            raise InputError(f"--stride must be at least 1, got {self.stride}")
        if self.sample_fps is not None and not 0 < self.sample_fps <= MAX_FPS:
            raise InputError(f"--sample-fps must be above 0 and at most {MAX_FPS:,}, got {self.sample_fps}")
        if self.sample_fps is not None and self.stride != 1:
            raise InputError("use either --stride or --sample-fps, not both")
        if self.start < 0:
            raise InputError(f"--start must be >= 0, got {self.start}")
        if self.end is not None and self.end <= self.start:
            raise InputError(f"--end ({self.end}) must be after --start ({self.start})")
        if self.max_frames is not None and self.max_frames < 1:
            raise InputError(f"--max-frames must be at least 1, got {self.max_frames}")
        if self.sample_mode not in SAMPLE_MODES:
            raise InputError(f"--sample-mode must be one of {', '.join(SAMPLE_MODES)}, got {self.sample_mode!r}")
        if self.sample_mode == "keyframes" and self.sample_fps is None:
            raise InputError("--sample-mode keyframes needs --sample-fps (the rate the keyframes stand in for)")

    def target_of(self, time: float) -> float:
        """The start of the `--sample-fps` slot `time` falls in: the time a kept frame stands for."""
        return self.start + math.floor((time - self.start) * self.sample_fps + 1e-6) / self.sample_fps

    def slot(self, time: float) -> float | None:
        """`target_s` for a frame kept at `time`: its slot's start where a rate samples (at 1 fps a 29.97 fps
        video's frame at 3.003 s stands for second 3, so rows join whole-second features), else None."""
        return None if self.sample_fps is None else round(self.target_of(time), 6)

    @property
    def skips(self) -> bool:
        """Whether frames are left out (a stride, a rate or a start): decoding can then skip what they need not."""
        return self.stride > 1 or self.sample_fps is not None or self.start > 0

    def selector(self) -> Callable[[int, float], Decision]:
        """A fresh stateful decision function for one pass over a source."""
        kept = 0
        first_index: int | None = None
        last_bucket = -1

        def decide(index: int, time: float) -> Decision:
            nonlocal kept, first_index, last_bucket
            if self.max_frames is not None and kept >= self.max_frames:
                return Decision.STOP
            if self.end is not None and time >= self.end:
                return Decision.STOP
            if time < self.start:
                return Decision.SKIP
            if first_index is None:
                first_index = index
            if self.sample_fps is not None:
                bucket = math.floor((time - self.start) * self.sample_fps + 1e-6)
                if bucket <= last_bucket:
                    return Decision.SKIP
                last_bucket = bucket
            elif (index - first_index) % self.stride:
                return Decision.SKIP
            kept += 1
            return Decision.KEEP

        return decide

    def estimate(self, info: VideoInfo) -> int | None:
        """How many frames this sampling will keep from `info`'s source, for progress bars."""
        duration = info.duration
        if duration is None and info.frame_count and info.fps:
            duration = info.frame_count / info.fps
        if duration is None:
            return self.max_frames
        span = max(0.0, min(duration, self.end or duration) - self.start)
        if self.sample_fps is not None:
            n = math.ceil(span * self.sample_fps)
        else:
            n = math.ceil(span * info.fps / self.stride) if info.fps else 0
        if info.frame_count:
            n = min(n, info.frame_count)
        return min(n, self.max_frames) if self.max_frames is not None else n


class Source(Protocol):
    """A finite or endless sequence of frames with facts about the stream."""

    info: VideoInfo
    lost_frames: int  # frames that could not be decoded (truncated or corrupt input)
    unread_frames: int  # frames after the point where reading stopped early (a stop, --end): not damage
    live: bool  # frames arrive in real time (a camera, a stream read as it comes): never queue them
    gaps: list[Gap]  # stretches of a live stream with no frames (a connection lost and regained)

    def __iter__(self) -> Iterator[Frame]: ...

    def stop(self) -> None:
        """Ask a reading thread to stop soon (safe from another thread); `close()` releases the source."""
        ...

    def close(self) -> None: ...


@dataclass
class Gap:
    """A stretch of a live stream with no frames: lost at `start_s`, back at `end_s` (run time), recorded
    while it happens."""

    start_s: float
    end_s: float | None
    after_frame: int
    reason: str
    attempts: int = 0

    def as_dict(self) -> dict:
        seconds = None if self.end_s is None else round(self.end_s - self.start_s, 3)
        return {"start_s": round(self.start_s, 3), "end_s": None if self.end_s is None else round(self.end_s, 3),
                "seconds": seconds, "after_frame": self.after_frame, "reason": self.reason,
                "reconnect_attempts": self.attempts}


class _FileSource:
    """What finite sources share: they are not live, have no gaps, and stop when their reader does."""

    live = False
    unread_frames = 0

    @property
    def gaps(self) -> list[Gap]:
        return []

    def stop(self) -> None:
        """A file's reader stops between frames on its own (the engine stops pulling)."""


class VideoSource(_FileSource):
    """A video file or stream read with PyAV (FFmpeg), decoded with codec threading on."""

    def __init__(self, uri: str, sampling: Sampling = Sampling(), threads: int | None = None,
                 timeout: tuple[float, float] | None = None) -> None:
        import av

        self.sampling = sampling
        self.lost_frames = 0
        self.decoded_frames = 0  # pictures the decoder gave, kept or not (what sampled decoding saves on)
        self.stop_reason: str | None = None  # why reading stopped early (a broken file, a lost stream)
        quiet_ffmpeg()
        if timeout is None and _is_url(uri):
            timeout = (URL_TIMEOUT_S, URL_TIMEOUT_S)  # (open, read): a dead server must not hang vidpipe
        try:
            with ffmpeg_errors_kept():  # FFmpeg's own reason ("Picture size 0x0 is invalid"), for the message
                self._container = av.open(uri, metadata_errors="ignore", timeout=timeout)
        except av.error.FFmpegError as exc:
            raise InputError(f"{uri} is not a readable video ({_ffmpeg_reason(exc)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{uri} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads or 0  # 0: FFmpeg picks, one per core
        self._stream = stream
        fps = float(stream.average_rate or stream.guessed_rate or stream.base_rate or 0) or DEFAULT_SEQUENCE_FPS
        origin = _clock_origin(self._container, stream)
        duration = None  # where the picture ends, on the clock `time_s` counts (a picture may start late)
        if stream.duration is not None and stream.time_base is not None:
            start = float(stream.start_time * stream.time_base) - origin if stream.start_time is not None else 0.0
            duration = start + float(stream.duration * stream.time_base)
        elif self._container.duration is not None:
            duration = self._container.duration / 1_000_000
        audio = self._container.streams.audio
        self._turns = 0 if _is_url(uri) else _display_turns(uri)  # quarter turns that make frames upright
        width, height = stream.codec_context.width, stream.codec_context.height
        self.info = VideoInfo(
            name=stem(uri),
            uri=uri,
            kind="video",
            width=height if self._turns % 2 else width,
            height=width if self._turns % 2 else height,
            fps=fps,
            frame_count=stream.frames or None,
            duration=duration,
            codec=stream.codec_context.codec.canonical_name,  # the codec (mp3), not the decoder (mp3float)
            time_base=stream.time_base,
            audio_codec=audio[0].codec_context.codec.canonical_name if audio else None,
            rotation=90 * self._turns,
            origin_s=origin,
        )
        self._origin: float | None = None if stream.start_time is None else self.info.origin_s

    def __iter__(self) -> Iterator[Frame]:
        if self.sampling.sample_mode == "keyframes":
            yield from self._keyframes()
            return
        if self.sampling.skips and self.exact_skipping:
            try:
                yield from self._sampled()
                return
            except _Untimed:
                self._container.seek(0)
        yield from self._every_frame()

    # Decode only what the kept frames need. VIDPIPE_DECODE_EVERY_FRAME=1 decodes every frame instead, as
    # vidpipe did before: for bench/sampling.py's "before" and as a check.
    exact_skipping = os.environ.get("VIDPIPE_DECODE_EVERY_FRAME") != "1"

    def _every_frame(self) -> Iterator[Frame]:
        import av

        decide = self.sampling.selector()
        positions = _SourcePositions()
        stopped = False  # the sampling or the consumer ended the reading before the input's end
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:  # not the demuxer's empty end-of-stream packet
                    positions.add_packet(packet.pts)
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    continue  # a damaged packet: it keeps its place, and its frame counts as lost
                self.decoded_frames += len(frames)
                for frame in frames:
                    index = positions.index_of(frame.pts)
                    time = self._time(frame, index)
                    decision = decide(index, time)
                    if decision is Decision.STOP:
                        stopped = True
                        return
                    if decision is Decision.KEEP:
                        yield Frame(index, time, self._picture(frame), target_s=self.sampling.slot(time))
        except GeneratorExit:  # the consumer stopped reading (a stop, a duration, a live run's end)
            stopped = True
            raise
        except av.error.FFmpegError as exc:
            self.stop_reason = _ffmpeg_reason(exc)  # the container breaks off: keep what was decoded
        finally:
            # Damaged: every source position up to where reading ended that never came out of the decoder;
            # read to the end, that is up to the header's frame count (a file cut short) or the last packet.
            # Unread: the positions after a stop, which are not damage.
            total = max(self.info.frame_count or 0, positions.packets)
            reached = positions.reached + 1 if stopped else total
            self.lost_frames = max(reached - positions.distinct, 0)
            self.unread_frames = max(total - reached, 0)

    def _picture(self, frame) -> np.ndarray:
        """A decoded frame as BGR, upright as a player shows it: boxes, tables and video all upright."""
        image = _bgr(frame)
        return np.ascontiguousarray(np.rot90(image, self._turns)) if self._turns else image

    def _time(self, frame, index: int) -> float:
        return self._time_of(frame.pts, index)

    def _time_of(self, pts: int | None, index: int) -> float:
        """When a player shows the frame: its timestamp on the source's clock, from the source's start."""
        if pts is None or self._stream.time_base is None:
            return index / self.info.fps
        if self._origin is None:  # a stream that does not say where it starts: its first frame does
            self._origin = float(pts * self._stream.time_base)
        return float(pts * self._stream.time_base) - self._origin

    def _sampled(self) -> Iterator[Frame]:
        """The frames the sampling keeps, exactly those `_every_frame` gives (same index, time and pixels),
        decoding only what they need. Packets are read a GOP (keyframe to keyframe) ahead and the sampling
        decides on their timestamps before anything is decoded. Then, per GOP: none kept, and the GOP is not
        decoded at all; else its packets are decoded up to the last kept frame's, non-reference frames
        skipped by the decoder (FFmpeg's skip_frame) unless kept, and the decoder drained and reset. Where
        the next GOP is open (its first frames refer back into this one) and one of those is kept, this GOP
        is decoded whole and the decoder kept going."""
        import av

        decide = self.sampling.selector()
        tally = _Tally()
        positions = tally.positions
        codec = self._stream.codec_context
        gops: list[_Gop] = []  # read, decided, not yet decoded: at most two
        stop = False
        with self._reading(tally):
            for packet in self._container.demux(self._stream):
                if not packet.size:
                    continue  # the demuxer's empty end-of-stream packet
                if packet.pts is None:  # no timestamps to decide on: decode every frame instead
                    if tally.wanted or positions.packets:
                        raise av.error.InvalidDataError(0, "packets without timestamps")
                    raise _Untimed
                if packet.is_keyframe and gops and not gops[-1].decided:
                    stop = gops[-1].decide(decide, positions, self._time_of)
                    tally.wanted += len(gops[-1].kept)
                    if len(gops) == 2:
                        tally.produced += yield from self._decode(gops.pop(0), codec, gops[0])
                    if stop:
                        break
                if not gops or (packet.is_keyframe and gops[-1].decided):
                    gops.append(_Gop())
                gops[-1].packets.append(packet)
                positions.add_packet(packet.pts)
            if gops and not gops[-1].decided and not stop:
                stop = gops[-1].decide(decide, positions, self._time_of)
                tally.wanted += len(gops[-1].kept)
            while gops:
                tally.produced += yield from self._decode(gops.pop(0), codec, gops[0] if gops else None)
            tally.stopped = stop

    def _keyframes(self) -> Iterator[Frame]:
        """`--sample-mode keyframes`: only keyframes are decoded, each on its own, and the sampling decides
        among them; each kept one carries the time of the `--sample-fps` slot it stands for (`target_s`). A
        slot with no keyframe has no frame: the fast, approximate pass."""
        import av

        decide = self.sampling.selector()
        tally = _Tally()
        codec = self._stream.codec_context
        with self._reading(tally):
            for packet in self._container.demux(self._stream):
                if not packet.size:
                    continue
                tally.positions.add_packet(packet.pts)
                if not packet.is_keyframe:
                    continue
                index = tally.positions.index_of(packet.pts)
                time = self._time_of(packet.pts, index)
                decision = decide(index, time)
                if decision is Decision.STOP:
                    tally.stopped = True
                    return
                if decision is not Decision.KEEP:
                    continue
                tally.wanted += 1
                try:
                    frames = [*codec.decode(packet), *codec.decode(None)]
                except av.error.FFmpegError:
                    frames = []  # damaged: counted as lost
                codec.flush_buffers()
                for frame in frames[:1]:
                    self.decoded_frames += 1
                    tally.produced += 1
                    yield Frame(index, time, self._picture(frame), target_s=self.sampling.slot(time))

    @contextlib.contextmanager
    def _reading(self, tally: _Tally) -> Iterator[None]:
        """Around a pass that decodes only what it keeps: the consumer ending it, the container breaking off
        (what was decoded is kept), and the counts after: lost, the kept frames the decoder could not give
        and, read to the end, the frames the header promises that the file does not hold (cut short: what
        decoding every frame counts too); unread, the positions after a stop."""
        import av

        try:
            yield
        except GeneratorExit:
            tally.stopped = True
            raise
        except av.error.FFmpegError as exc:
            self.stop_reason = _ffmpeg_reason(exc)
        finally:
            total = max(self.info.frame_count or 0, tally.positions.packets)
            reached = tally.positions.reached + 1 if tally.stopped else total
            missing = 0 if tally.stopped else max((self.info.frame_count or 0) - tally.positions.packets, 0)
            self.lost_frames = max(tally.wanted - tally.produced, 0) + missing
            self.unread_frames = max(total - reached, 0)

    def _decode(self, gop: _Gop, codec, following: _Gop | None) -> Iterator[Frame]:
        """Decode what `gop`'s kept frames need and yield them; returns how many came out."""
        import av

        whole = following is not None and following.needs_previous
        if following is not None:
            following.after_flush = not whole  # the decoder is reset after this GOP, or was not used for it
        if not gop.kept and not whole:
            return 0
        packets = gop.packets if whole else gop.packets[: gop.last_needed + 1]
        produced = 0
        for packet in packets:
            if gop.after_flush and packet.pts < gop.packets[0].pts and packet.pts not in gop.kept:
                continue  # a leading frame of an open GOP whose references were not decoded: not needed
            codec.skip_frame = "DEFAULT" if packet.pts in gop.kept else "NONREF"
            try:
                frames = codec.decode(packet)
            except av.error.FFmpegError:
                continue  # damaged: a kept frame that never comes out counts as lost
            produced += yield from self._emit(frames, gop)
        codec.skip_frame = "DEFAULT"
        if not whole:
            produced += yield from self._emit(codec.decode(None), gop)  # drain the reorder delay
            codec.flush_buffers()
        return produced

    def _emit(self, frames, gop: _Gop) -> Iterator[Frame]:
        produced = 0
        for frame in frames:
            self.decoded_frames += 1
            where = gop.kept.get(frame.pts)
            if where is None:
                continue  # a reference frame decoded only for a kept one
            index, time = where
            image = self._picture(frame)
            produced += 1
            yield Frame(index, time, image, target_s=self.sampling.slot(time))
        return produced

    def close(self) -> None:
        self._container.close()


def _clock_origin(container, stream) -> float:
    """The source's time 0, on its own clock: where its earliest stream starts, so a picture that starts 2 s
    after its sound has its first frame at 2 s, as a player shows it. Never after the picture's own start
    (B-frame edits start a video below 0), nor before 0 for the sound (an AAC encoder's priming samples)."""
    video = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if container.start_time is None:
        return video
    return min(max(container.start_time / 1_000_000, 0.0), video)


FULL_RANGE = 2  # FFmpeg's AVCOL_RANGE_JPEG: 0-255 luma, which OpenCV's conversion does not read


def _bgr(frame) -> np.ndarray:
    """A decoded frame as BGR. OpenCV converts 8-bit 4:2:0 video-range frames (nearly every camera and web
    video) in a third of the CPU time swscale takes, with the same BT.601 matrix PyAV applies; full-range,
    4:2:2, 10-bit and other formats go through PyAV."""
    if frame.format.name == "yuv420p" and frame.color_range != FULL_RANGE and not (frame.width | frame.height) & 1:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return frame.to_ndarray(format="bgr24")


def _display_turns(uri: str) -> int:
    """Counter-clockwise quarter turns the file's display matrix asks for (a phone held upright records its
    frames sideways and says so there), read from the first frame."""
    import av

    try:
        with av.open(uri, metadata_errors="ignore") as container:
            for frame in container.decode(video=0):
                return round((frame.rotation or 0) / 90) % 4
    except (av.error.FFmpegError, AttributeError):
        pass  # unreadable here: the main container reports it; an old PyAV knows no rotation
    return 0


class _Untimed(Exception):
    """Packets without timestamps: the sampling cannot decide before decoding."""


@dataclass
class _Gop:
    """The packets from one keyframe to the next, in decode order, and which of its frames are kept."""

    packets: list = field(default_factory=list)
    kept: dict[int, tuple[int, float]] = field(default_factory=dict)  # pts -> (index, time)
    decided: bool = False
    after_flush: bool = False  # the decoder was reset before it: references from before it are gone

    def decide(self, decide: Callable[[int, float], Decision], positions: _SourcePositions,
               time_of: Callable[[int | None, int], float]) -> bool:
        """The sampling's decisions on this GOP's frames, in presentation order; True on a stop."""
        self.decided = True
        for pts in sorted(p.pts for p in self.packets):
            index = positions.index_of(pts)
            time = time_of(pts, index)
            decision = decide(index, time)
            if decision is Decision.STOP:
                return True
            if decision is Decision.KEEP:
                self.kept[pts] = (index, time)
        return False

    @property
    def last_needed(self) -> int:
        """The decode-order position of the last kept frame's packet."""
        return max(i for i, p in enumerate(self.packets) if p.pts in self.kept)

    @property
    def needs_previous(self) -> bool:
        """A kept frame presented before this GOP's keyframe (an open GOP): it refers to the GOP before."""
        key = self.packets[0].pts
        return any(pts < key for pts in self.kept)


class _SourcePositions:
    """Each decoded frame's index in the source, from the packets' timestamps: a frame's index is the rank of
    its pts among every packet's, so frames the decoder drops (damaged data, a first GOP without its
    keyframe) keep their places and the frames after them keep their true indices, at any frame rate,
    variable ones included. Only the packets not yet passed by the decoder are held (its reorder window).
    `distinct` counts the positions that came out of the decoder (a repeated or backward index is no new
    one), `reached` the furthest position."""

    def __init__(self) -> None:
        self._waiting: list[int] = []  # packet pts not yet reached by a decoded frame, sorted
        self._passed = 0  # packets at or before the last decoded frame
        self._last = -1
        self._untimed = 0  # packets without a timestamp (counted as positions all the same)
        self.reached = -1
        self.distinct = 0

    def add_packet(self, pts: int | None) -> None:
        if pts is None:
            self._untimed += 1
        else:
            bisect.insort(self._waiting, pts)

    def index_of(self, pts: int | None) -> int:
        if pts is None or not self._waiting or pts < self._waiting[0]:
            index = self._last + 1  # no timestamps to go by: decode order
        else:
            through = bisect.bisect_right(self._waiting, pts)
            index = self._passed + through - 1
            self._passed += through
            del self._waiting[:through]
        self._last = index
        if index > self.reached:
            self.reached = index
            self.distinct += 1
        return index

    @property
    def packets(self) -> int:
        """Every packet seen: the source positions known so far."""
        return self._passed + len(self._waiting) + self._untimed


@dataclass
class _Tally:
    """One pass's counts: the positions seen, the frames wanted and given, whether it was stopped early."""

    positions: _SourcePositions = field(default_factory=_SourcePositions)
    wanted: int = 0
    produced: int = 0
    stopped: bool = False


class ImageSource(_FileSource):
    """A sequence of still images (folder, glob, single file or URL) played at a fixed frame rate."""

    def __init__(
        self,
        items: list[str],
        read: Callable[[str], np.ndarray | None],
        *,
        uri: str,
        name: str,
        fps: float,
        kind: str,
        sampling: Sampling = Sampling(),
    ) -> None:
        self._items = items
        self._read = read
        self.sampling = sampling
        self.lost_frames = 0
        self.decoded_frames = 0  # images read for the frames kept
        self._first: tuple[int, np.ndarray] | None = None
        for i, item in enumerate(items):
            image = read(item)
            if image is not None:
                self._first = (i, image)
                break
        if self._first is None:
            raise InputError(f"{uri}: none of its {len(items)} image(s) could be read")
        height, width = self._first[1].shape[:2]
        self.info = VideoInfo(
            name=name,
            uri=uri,
            kind=kind,
            width=width,
            height=height,
            fps=fps,
            frame_count=len(items),
            duration=len(items) / fps,
            time_base=Fraction(fps).limit_denominator(1001) ** -1,
        )

    def __iter__(self) -> Iterator[Frame]:
        decide = self.sampling.selector()
        reached = 0  # images looked at: the rest are unread when the reading stops early
        try:
            for index, item in enumerate(self._items):
                time = index / self.info.fps
                decision = decide(index, time)
                if decision is Decision.STOP:
                    return
                reached = index + 1
                if decision is Decision.SKIP:
                    continue
                first_index, first_image = self._first if self._first else (-1, None)
                image = first_image if index == first_index else self._read(item)
                if image is None:
                    self.lost_frames += 1
                    continue
                self.decoded_frames += 1
                yield Frame(index, time, image, target_s=self.sampling.slot(time))
        finally:
            self.unread_frames = len(self._items) - reached

    def close(self) -> None:
        self._first = None


def check_named(uri: str) -> str:
    """`uri`, unless it is empty: `Path('')` is the current folder, which nobody means by it."""
    if not uri.strip():
        raise InputError(f"the input is an empty name ({uri!r}): give a video file, an image folder or a URL")
    return uri


def open_source(uri: str | Path, sampling: Sampling = Sampling(), fps: float | None = None,
                threads: int | None = None) -> Source:
    """Open anything vidpipe reads: a video file or stream URL, an image folder, a glob, an image or image URL.

    `fps` sets the frame rate of image sequences (default: `seqinfo.ini` beside a MOTChallenge `img1/`
    folder, else 30); videos keep their own timestamps. `threads` caps the video decoder's threads. A local
    file or folder's info says which (`file`), so that later readers of the run can check it is unchanged.
    """
    source = _open(check_named(str(uri)), sampling, fps, threads)
    source.info = replace(source.info, file=file_identity(source.info.uri))
    return source


def file_identity(uri: str) -> dict | None:
    """A local file or folder's absolute path, size and modification time; None for URLs and globs."""
    if _is_url(uri) or glob.has_magic(uri) or not os.path.exists(uri):
        return None
    stat = os.stat(uri)
    return {"path": os.path.abspath(uri), "size_bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _open(uri: str, sampling: Sampling, fps: float | None, threads: int | None) -> Source:
    if fps is not None and not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise InputError(f"--sequence-fps must be above 0 and at most {MAX_FPS:,}, got {fps}")
    if _is_url(uri):
        if Path(urllib.parse.urlparse(uri).path).suffix.lower() in IMAGE_SUFFIXES:
            return ImageSource([uri], _read_image_url, uri=uri, name=stem(uri), fps=fps or 1.0, kind="image",
                               sampling=sampling)
        return VideoSource(uri, sampling, threads=threads)
    if glob.has_magic(uri):
        items = sorted((p for p in glob.glob(uri) if Path(p).suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not items:
            raise InputError(f"no images match {uri}")
        folder = Path(items[0]).parent
        return ImageSource(items, read_image_file, uri=uri, name=_sequence_name(folder),
                           fps=fps or _sequence_fps(folder), kind="images", sampling=sampling)
    path = Path(uri)
    if path.is_dir():
        items = sorted((str(p) for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=natural_key)
        if not items:
            raise InputError(f"{uri} is a folder with no images in it ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return ImageSource(items, read_image_file, uri=uri, name=_sequence_name(path),
                           fps=fps or _sequence_fps(path), kind="images", sampling=sampling)
    if not path.exists():
        raise InputError(f"{uri} does not exist")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([uri], read_image_file, uri=uri, name=path.stem, fps=fps or 1.0, kind="image",
                           sampling=sampling)
    return VideoSource(uri, sampling, threads=threads)


def quiet_ffmpeg() -> None:
    """Keep FFmpeg's own `[h264 @ 0x...] error while decoding` lines off the user's terminal: damaged frames
    are counted (`source_frames_lost`) and reported in one line instead. VIDPIPE_DEBUG=1 shows them."""
    import av

    if not os.environ.get("VIDPIPE_DEBUG"):
        av.logging.set_level(None)


@contextlib.contextmanager
def ffmpeg_errors_kept() -> Iterator[None]:
    """Inside, FFmpeg's error messages are captured (not printed), so a failure's exception carries FFmpeg's
    own reason in `log`; the errno alone is often unrelated (EBUSY for a picture size FFmpeg refuses)."""
    import av

    if os.environ.get("VIDPIPE_DEBUG"):
        yield
        return
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture():
            yield
    finally:
        av.logging.set_level(None)


def natural_key(text: str) -> list:
    """Sort key that orders `img2` before `img10`."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _is_url(uri: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", uri) is not None


def stem(uri: str) -> str:
    """The name a file or URL goes by in tables and folders: its file stem (no query string)."""
    path = urllib.parse.urlparse(uri).path if _is_url(uri) else uri
    return Path(path.rstrip("/")).stem or "stream"


def _sequence_name(folder: Path) -> str:
    """`MOT17-02/img1` is named `MOT17-02`: the folder that says what the sequence is."""
    folder = folder.resolve()
    return folder.parent.name if folder.name == "img1" else folder.name


def read_seqinfo(folder: Path) -> tuple[Path | None, dict[str, str]]:
    """A MOTChallenge `seqinfo.ini` in `folder` or one folder up (beside `img1/`), with its [Sequence]
    values (keys lower-cased: `framerate`, `seqlength`); (None, {}) where there is none."""
    for ini in (folder / "seqinfo.ini", folder.parent / "seqinfo.ini"):
        if ini.is_file():
            parser = configparser.ConfigParser()
            parser.read(ini)
            return ini, dict(parser["Sequence"]) if parser.has_section("Sequence") else {}
    return None, {}


def _sequence_fps(folder: Path) -> float:
    rate = read_seqinfo(folder)[1].get("framerate")
    return float(rate) if rate else DEFAULT_SEQUENCE_FPS


def read_image_file(path: str) -> np.ndarray | None:
    if _truncated_jpeg(path):  # libjpeg would print "Premature end of JPEG file" on the user's terminal
        log.warning("%s is a truncated JPEG (its end is missing): using what decodes", path)
        with _stderr_silenced():
            return cv2.imread(path, cv2.IMREAD_COLOR)
    return cv2.imread(path, cv2.IMREAD_COLOR)


def _truncated_jpeg(path: str) -> bool:
    """A JPEG file (it starts with SOI) without its end-of-image marker near the end of the file."""
    try:
        with open(path, "rb") as handle:
            if handle.read(2) != b"\xff\xd8":
                return False
            handle.seek(max(handle.seek(0, os.SEEK_END) - 64, 0))
            return b"\xff\xd9" not in handle.read()
    except OSError:
        return False  # unreadable: imread says so


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """The process's stderr (file descriptor 2, where C libraries print) sent to /dev/null inside the block."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _read_image_url(url: str) -> np.ndarray:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT_S) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"cannot fetch {url}: {reason}") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"{url} did not return a readable image")
    return image


def _ffmpeg_reason(exc: Exception) -> str:
    """FFmpeg's message without the errno and file name it repeats."""
    log = getattr(exc, "log", None)  # (level, component, message) of FFmpeg's last error, where captured
    message = (log[2] if log and log[2] else None) or getattr(exc, "strerror", None) or str(exc)
    return message.strip().rstrip(".")
