"""Live sources: cameras and network streams that never wait for vidpipe.

A live source is read on its own thread into a one-frame mailbox: when inference is slower than the source
the older frame is replaced by the newer one (and counted as dropped), so latency never builds up. Frames
are stamped with the capture clock, so the tracker's motion model sees the real time between the frames it
gets. A network stream that drops is reopened with back-off, without resetting the tracker or the outputs;
each gap is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2

from .analytics import Analytics
from .detections import Detections
from .errors import InputError
from .frames import Frame, VideoInfo
from .live_options import LiveOptions
from .sources import Gap, Source, VideoSource, open_source
from .summary import LiveFigures, Percentiles

log = logging.getLogger("vidpipe")


def open_live(spec: str, options: LiveOptions = LiveOptions()) -> Source:
    """A camera index (`0`), a stream URL (rtsp://, rtmp://, http(s)://, .m3u8) or a file, as a live source."""
    if spec.isdigit():
        return CameraSource(int(spec), options)
    if "://" in spec:
        return ReconnectingStream(spec, options)
    return Replay(open_source(spec))


class Replay:
    """A file read as if it were live, as fast as it decodes (which tests the drop policy)."""

    live = True

    def __init__(self, source: Source) -> None:
        self._source = source
        self.info = source.info
        self.gaps: list[Gap] = []

    @property
    def lost_frames(self) -> int:
        return self._source.lost_frames

    @property
    def unread_frames(self) -> int:
        return self._source.unread_frames

    def __iter__(self) -> Iterator[Frame]:
        return iter(self._source)

    def stop(self) -> None:
        self._source.stop()

    def close(self) -> None:
        self._source.close()


class CameraSource:
    """A local camera through OpenCV's VideoCapture, timed by the capture clock."""

    live = True

    def __init__(self, index: int, options: LiveOptions = LiveOptions()) -> None:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # each backend tried warns otherwise
        try:
            self._capture = cv2.VideoCapture(index)
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if not self._capture.isOpened():
            raise InputError(f"camera {index} cannot be opened (no such device, or it is busy)")
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, options.width), (cv2.CAP_PROP_FRAME_HEIGHT, options.height),
                            (cv2.CAP_PROP_FPS, options.camera_fps)):
            if value:
                self._capture.set(prop, value)
        ok, self._first = self._capture.read()
        if not ok:
            self._capture.release()
            raise InputError(f"camera {index} gives no frames")
        height, width = self._first.shape[:2]
        fps = self._capture.get(cv2.CAP_PROP_FPS) or options.camera_fps or 30.0
        self.info = VideoInfo(name=f"camera{index}", uri=str(index), kind="camera", width=width, height=height,
                              fps=float(fps))
        self.lost_frames = self.unread_frames = 0
        self.gaps: list[Gap] = []
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        image, index = self._first, 0
        while image is not None and not self._stopped.is_set():
            now = time.monotonic()
            yield Frame(index, now - start, image, captured=now)
            index += 1
            ok, image = self._capture.read()
            if not ok:
                log.warning("camera %s stopped giving frames", self.info.uri)
                return

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self._capture.release()


class ReconnectingStream:
    """A network stream read with PyAV, reopened with exponential back-off whenever it ends or fails. The
    same policy (`--reconnect-delay`, `--max-reconnects`) applies to the first connection, so a camera that
    comes up late is waited for."""

    live = True

    def __init__(self, url: str, options: LiveOptions = LiveOptions()) -> None:
        self.url, self.options = url, options
        self.lost_frames = self.unread_frames = 0
        self.gaps: list[Gap] = []
        self._closed = threading.Event()
        self._current: VideoSource | None = None
        if not self._connect(None):
            raise InputError(f"{self._failure} (tried {self._attempts + 1} time(s); --max-reconnects)")
        self.info = replace(self._current.info, kind="stream")

    def _open(self) -> VideoSource:
        return VideoSource(self.url, timeout=(self.options.open_timeout, self.options.read_timeout))

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        index = 0
        last = start  # when the last frame arrived: a gap starts there, not when the loss is noticed
        gap: Gap | None = None  # the gap being closed by the first frame after a reconnection
        while not self._closed.is_set():
            reason = None
            try:
                for frame in self._current:
                    last = time.monotonic()
                    if gap is not None:  # back: the gap lasted until this frame arrived
                        gap.end_s = last - start
                        log.info("%s: back after %.1f s", self.url, gap.end_s - gap.start_s)
                        gap = None
                    yield Frame(index, last - start, frame.image, captured=last)
                    index += 1
            except Exception as exc:  # noqa: BLE001 - whatever broke the connection, reconnect
                reason = str(exc) or type(exc).__name__
            reason = self._explain(reason or self._current.stop_reason or "the stream ended")
            self._current.close()
            if gap is None:
                lost_at = last
                if "--read-timeout" in reason:  # FFmpeg's timer may start before the data stopped: no data
                    lost_at = min(last, time.monotonic() - self.options.read_timeout)  # for at least that long
                gap = Gap(max(lost_at - start, 0.0), None, index - 1, reason)
                self.gaps.append(gap)
            log.warning("%s: %s; reconnecting", self.url, reason)
            if not self._connect(gap):
                return

    def _explain(self, reason: str) -> str:
        """FFmpeg says "Immediate exit requested" when its read timeout fires: say what happened instead."""
        if "immediate exit requested" in reason.lower():
            return f"no data for {self.options.read_timeout:g} s (--read-timeout)"
        return reason

    def _connect(self, gap: Gap | None) -> bool:
        """(Re)open the stream: at once for the first connection, after `--reconnect-delay` after a loss, the
        delay doubling up to `--max-reconnect-delay`; False when `--max-reconnects` attempts failed, or on stop."""
        delay = self.options.reconnect_delay
        self._attempts = gap.attempts if gap is not None else 0
        if gap is None and self._try():
            return True
        while not self._closed.is_set():
            if self.options.max_reconnects is not None and self._attempts >= self.options.max_reconnects:
                if gap is not None:  # a first connection that fails is the caller's error message
                    log.warning("%s: giving up after %d attempt(s)", self.url, self._attempts)
                return False
            if gap is None:
                log.warning("%s: cannot connect (%s); next attempt in %.1f s", self.url, self._failure, delay)
            self._closed.wait(delay)
            self._attempts += 1
            if gap is not None:
                gap.attempts = self._attempts
            if self._try():
                return True
            delay = min(delay * 2, self.options.max_reconnect_delay)
            if gap is not None:
                log.info("%s: reconnect attempt %d failed (%s); next in %.1f s", self.url, self._attempts,
                         self._failure, delay)
        return False

    def _try(self) -> bool:
        try:
            self._current = self._open()
            return True
        except InputError as exc:
            self._failure = str(exc)
            return False

    def stop(self) -> None:
        """Stop reconnecting and reading (safe from another thread; the container closes in close())."""
        self._closed.set()

    def close(self) -> None:
        self._closed.set()
        if self._current is not None:
            self._current.close()


class LatestFrames:
    """Reads a live source on a thread, keeping only the newest frame: the consumer never gets a stale one."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self._condition = threading.Condition()
        self._frame: Frame | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self.captured = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._read, name="vidpipe-capture", daemon=True)

    def _read(self) -> None:
        try:
            for frame in self._source:
                if frame.captured is None:
                    frame = replace(frame, captured=time.monotonic())
                with self._condition:
                    self.captured += 1
                    if self._frame is not None:
                        self.dropped += 1  # the consumer was busy: this one is out of date
                    self._frame = frame
                    self._condition.notify()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            with self._condition:
                self._ended = True
                self._condition.notify()

    def __iter__(self) -> Iterator[Frame]:
        self._thread.start()
        try:
            while True:
                with self._condition:
                    while self._frame is None and not self._ended:
                        self._condition.wait(0.1)
                    frame, self._frame = self._frame, None
                    if frame is None:
                        break
                yield frame
            if self._error is not None:
                raise self._error
        finally:
            self._stop.set()
            self._source.stop()  # a reconnecting stream: wakes its back-off wait
            # The reader must be out of the decoder before anyone closes the source: closing a container
            # under a running decode crashes FFmpeg. A live source gives its next frame soon.
            self._thread.join(timeout=self._join_timeout())

    def _join_timeout(self) -> float:
        """A stream's reader may be blocked in a read for up to its read timeout."""
        if isinstance(self._source, ReconnectingStream):
            return 5.0 + self._source.options.read_timeout
        return 5.0


@dataclass
class LiveMonitor:
    """Live figures for the overlay, the preview page and the summary: fps, latency, drops, counts."""

    capture: LatestFrames | None = None
    analytics: Analytics | None = None  # the run's lines and zones, for their counts on the live page
    latencies_ms: array = field(default_factory=lambda: array("d"))
    inference_ms: array = field(default_factory=lambda: array("d"))
    counts: dict = field(default_factory=dict)  # objects in the latest frame, per class
    _track_class: dict = field(default_factory=dict)  # every track since the start -> its voted class
    _times: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def frame_done(self, frame: Frame, detections: Detections) -> None:
        now = time.monotonic()
        with self._lock:
            if frame.captured is not None:
                self.latencies_ms.append(1000 * (now - frame.captured))
            self._times = [t for t in self._times if now - t < 2.0] + [now]
            self.counts = dict(Counter(detections.class_name.tolist()))
            tracked = detections.is_tracked
            self._track_class.update(zip(detections.track_id[tracked].tolist(),
                                         detections.track_class_name[tracked].tolist()))

    @property
    def fps(self) -> float:
        times = self._times
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    def snapshot(self) -> dict:
        with self._lock:
            latency = self.latencies_ms[-1] if self.latencies_ms else None
            return {"fps": round(self.fps, 2), "latency_ms": None if latency is None else round(latency, 1),
                    "dropped": self.capture.dropped if self.capture else 0,
                    "captured": self.capture.captured if self.capture else 0, "counts": dict(self.counts),
                    "totals": dict(Counter(self._track_class.values()).most_common()),
                    **(self.analytics.live_counts() if self.analytics else {"lines": {}, "zones": {}})}

    def overlay_lines(self) -> list[str]:
        s = self.snapshot()
        latency = "-" if s["latency_ms"] is None else f"{s['latency_ms']:.0f} ms"
        return [f"{s['fps']:.1f} fps  latency {latency}  dropped {s['dropped']}"]

    def figures(self, source: Source) -> LiveFigures:
        """The live part of the run's summary."""
        return LiveFigures(
            frames_captured=self.capture.captured if self.capture else None,
            frames_dropped=self.capture.dropped if self.capture else 0,
            latency_ms=Percentiles.of(self.latencies_ms),
            inference_ms=Percentiles.of(self.inference_ms),
            reconnects=sum(1 for gap in source.gaps if gap.end_s is not None),
            gaps=tuple(gap.as_dict() for gap in source.gaps),
        )


def default_out_dir(info: VideoInfo) -> Path:
    return Path("runs") / f"live-{info.name}"
