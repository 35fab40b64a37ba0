"""Live sources: cameras and network streams that never wait for vidpipe.

A live source is read on its own thread into a one-frame mailbox: when inference is slower than the source
the older frame is replaced by the newer one (and counted as dropped), so latency never builds up. Frames
are stamped with the capture clock, so the tracker's motion model sees the real time between the frames it
gets. A network stream that drops is reopened with back-off, without resetting the tracker or the outputs;
each gap is recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from .analytics import Analytics
from .detections import Detections
from .errors import InputError
from .frames import Frame, VideoInfo
from .live_options import LiveOptions
from .sources import Gap, Source, VideoSource, open_source
from .summary import LiveFigures, Percentiles

log = logging.getLogger("vidpipe")


class Connection:
    """A live source's state as it changes (connected, reconnecting, gave_up, ended), each change kept with
    its time since the source started giving frames: the live page shows the state, the summary the changes."""

    def __init__(self, state: str = "connected") -> None:
        self.origin = time.monotonic()
        self.state, self.since = state, self.origin
        self.changes: list[dict] = [{"state": state, "time_s": 0.0}]

    def start(self) -> None:
        """The first frame is coming: the clock of `time_s` starts now."""
        self.origin = self.since = time.monotonic()

    def set(self, state: str, at: float | None = None) -> None:
        if state == self.state:
            return
        self.state, self.since = state, time.monotonic() if at is None else at
        self.changes.append({"state": state, "time_s": round(max(self.since - self.origin, 0.0), 3)})


def open_live(spec: str, options: LiveOptions = LiveOptions(), realtime: bool = False, loop: bool = False,
              opener: Callable[[str], Source] | None = None, connect_now: bool = True) -> Source:
    """A camera index (`0`), a stream URL (rtsp://, rtmp://, http(s)://, .m3u8) or a file or image folder, as a
    live source; `realtime` plays a file at its own rate, `loop` restarts it at its end. `opener` opens a
    file with the pipeline's frame selection. Without `connect_now`, a stream connects when first read (on
    its reader's thread: a late camera then holds up no one else)."""
    if plays_a_file(spec):
        return Replay(lambda: (opener or open_source)(spec), realtime, loop)
    if realtime or loop:
        raise InputError("--realtime and --loop are for files and image folders: cameras and streams are live "
                         "already")
    return CameraSource(int(spec), options) if spec.isdigit() else ReconnectingStream(spec, options, connect_now)


def plays_a_file(spec: str) -> bool:
    """A file or image folder, read as a live source: not a camera index (`0`), not a stream URL."""
    return not (spec.isdigit() or "://" in spec)


class Replay:
    """A file or image folder read as a live source: frame by frame, each one processed (`lossless`: a
    recording), or with `realtime` each frame released at its timestamp, so it behaves as a camera would,
    dropped frames and all. `loop` starts it again at its end, its timestamps and indices carrying on."""

    live = True

    def __init__(self, open: Callable[[], Source], realtime: bool = False, loop: bool = False) -> None:
        if loop and not realtime:
            raise InputError("--loop needs --realtime (a file looped as fast as it decodes never ends)")
        self._open, self.realtime, self.loop = open, realtime, loop
        self.lossless = not realtime  # read at the consumer's pace, every frame processed
        self._source = open()
        self.info = self._source.info
        self.gaps: list[Gap] = []
        self.connection = Connection()
        self._stopped = threading.Event()
        self._lost = 0  # the frames earlier passes could not decode

    @property
    def lost_frames(self) -> int:
        return self._lost + self._source.lost_frames

    @property
    def unread_frames(self) -> int:
        """The frames after where reading stopped; none for a loop, which has no end to fall short of."""
        return 0 if self.loop else self._source.unread_frames

    def __iter__(self) -> Iterator[Frame]:
        self.connection.start()
        start, offset_s, offset_index, first = time.monotonic(), 0.0, 0, None
        while not self._stopped.is_set():
            last: Frame | None = None
            for frame in self._source:
                first = frame.time if first is None else first  # a --start later than 0 is not waited for
                due = start + offset_s + frame.time - first
                if self.realtime and self._stopped.wait(max(due - time.monotonic(), 0)):
                    return
                last = frame
                yield replace(frame, index=frame.index + offset_index, time=frame.time + offset_s,
                              captured=time.monotonic() if self.realtime else None)
            if not (self.loop and last is not None) or self._stopped.is_set():
                break
            offset_s += last.time - first + 1 / (self.info.fps or 30.0)  # the next pass starts one frame after
            offset_index += last.index + 1
            self._lost += self._source.lost_frames
            self._source.close()
            self._source = self._open()
        self.connection.set("ended")

    def stop(self) -> None:
        self._stopped.set()
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
        self.connection = Connection()
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[Frame]:
        self.connection.start()
        start = time.monotonic()
        image, index = self._first, 0
        while image is not None and not self._stopped.is_set():
            now = time.monotonic()
            yield Frame(index, now - start, image, captured=now)
            index += 1
            ok, image = self._capture.read()
            if not ok:
                log.warning("camera %s stopped giving frames", self.info.uri)
                break
        self.connection.set("ended")

    def stop(self) -> None:
        self._stopped.set()

    def close(self) -> None:
        self._capture.release()


class ReconnectingStream:
    """A network stream read with PyAV, reopened with exponential back-off whenever it ends or fails. The
    same policy (`--reconnect-delay`, `--max-reconnects`) applies to the first connection, so a camera that
    comes up late is waited for."""

    live = True

    def __init__(self, url: str, options: LiveOptions = LiveOptions(), connect_now: bool = True) -> None:
        self.url, self.options = url, options
        self.lost_frames = self.unread_frames = 0
        self.gaps: list[Gap] = []
        self.connection = Connection("connected" if connect_now else "connecting")
        self._closed = threading.Event()
        self._current: VideoSource | None = None
        if connect_now:
            self._first_connection()

    @property
    def last_error(self) -> str | None:
        """Why the latest attempt to (re)connect failed; None if none has."""
        return getattr(self, "_failure", None)

    def _first_connection(self) -> None:
        if not self._connect(None):
            raise InputError(f"{self._failure} (tried {self._attempts + 1} time(s); --max-reconnects)")
        self.info = replace(self._current.info, kind="stream")

    def _open(self) -> VideoSource:
        return VideoSource(self.url, timeout=(self.options.open_timeout, self.options.read_timeout))

    def __iter__(self) -> Iterator[Frame]:
        if self._current is None:  # connecting on the reader's thread
            self._first_connection()
            self.connection.set("connected")
        self.connection.start()
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
                        self.connection.set("connected", at=last)
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
                self.connection.set("reconnecting", at=max(lost_at, start))
            log.warning("%s: %s; reconnecting", self.url, reason)
            if not self._connect(gap):
                break
        self.connection.set("ended" if self._closed.is_set() else "gave_up")

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
    """Reads a live source on a thread, keeping only the newest frame: the consumer never gets a stale one.

    A file read without --realtime (`Replay.lossless`) is a recording, not a camera: its reader waits for the
    consumer instead, so every frame is processed, as `vidpipe run` would. `wake` (shared by several sources)
    is set whenever a frame or the end arrives, for a consumer that serves many.
    """

    def __init__(self, source: Source, wake: threading.Event | None = None) -> None:
        self._source = source
        self._lossless = getattr(source, "lossless", False)
        self._condition = threading.Condition()
        self._wake = wake
        self._frame: Frame | None = None
        self._ended = False
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.captured = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._read, name="vidpipe-capture", daemon=True)

    def _read(self) -> None:
        try:
            for frame in self._source:
                with self._condition:
                    while self._lossless and self._frame is not None and not self._stop.is_set():
                        self._condition.wait(0.1)  # a recording: the consumer takes every frame
                    if frame.captured is None:  # a recording's frame is "captured" when it is handed over
                        frame = replace(frame, captured=time.monotonic())
                    self.captured += 1
                    if self._frame is not None:
                        self.dropped += 1  # the consumer was busy: this one is out of date
                    self._frame = frame
                    self._condition.notify_all()
                if self._wake:
                    self._wake.set()
                if self._stop.is_set():
                    break
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self.error = exc
        finally:
            with self._condition:
                self._ended = True
                self._condition.notify_all()
            if self._wake:
                self._wake.set()

    def start(self) -> None:
        self._thread.start()

    def take(self) -> Frame | None:
        """The newest frame, if one came since the last call (never waits)."""
        with self._condition:
            frame, self._frame = self._frame, None
            if frame is not None:
                self._condition.notify_all()  # a lossless reader may put the next one
            return frame

    @property
    def waiting_since(self) -> float | None:
        """When the frame waiting to be taken was captured (None: no frame waiting)."""
        frame = self._frame
        return None if frame is None else frame.captured

    @property
    def ended(self) -> bool:
        """The source has ended (or failed: `error`) and its last frame was taken."""
        with self._condition:
            return self._ended and self._frame is None

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        try:
            while True:
                with self._condition:
                    while self._frame is None and not self._ended:
                        self._condition.wait(0.1)
                frame = self.take()
                if frame is None:
                    break
                yield frame
            if self.error is not None:
                raise self.error
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop reading, and wait until the reader is out of the decoder."""
        self._stop.set()
        with self._condition:
            self._condition.notify_all()
        self._source.stop()  # a reconnecting stream: wakes its back-off wait
        # The reader must be out of the decoder before anyone closes the source: closing a container
        # under a running decode crashes FFmpeg. A live source gives its next frame soon.
        if self._thread.is_alive():
            self._thread.join(timeout=self._join_timeout())

    def _join_timeout(self) -> float:
        """A stream's reader may be blocked in a read for up to its read timeout."""
        if isinstance(self._source, ReconnectingStream):
            return 5.0 + self._source.options.read_timeout
        return 5.0


WINDOW_S = 2.0  # the live figures describe the last two seconds


@dataclass
class LiveMonitor:
    """Live figures for the overlay, the preview page and the summary, the same numbers in each: over the last
    two seconds, frames processed and captured per second and the median latency from capture to the
    annotated frame; drops; the objects in the latest frame and the objects (tracks) since the start; the
    source's connection state."""

    capture: LatestFrames | None = None
    analytics: Analytics | None = None  # the run's lines and zones, for their counts on the live page
    source: Source | None = None  # its `connection`, where it has one
    latencies_ms: array = field(default_factory=lambda: array("d"))
    inference_ms: array = field(default_factory=lambda: array("d"))
    counts: dict = field(default_factory=dict)  # objects in the latest frame, per class
    _track_class: dict = field(default_factory=dict)  # every object (confirmed track) since the start -> its class
    _recent: deque = field(default_factory=deque)  # (done, latency ms or None, frames captured then)
    _last_captured: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def frame_done(self, frame: Frame, detections: Detections) -> None:
        now = time.monotonic()
        with self._lock:
            latency = None
            if frame.captured is not None:
                latency = 1000 * (now - frame.captured)
                self.latencies_ms.append(latency)
                self._last_captured = frame.captured
            self._recent.append((now, latency, self.capture.captured if self.capture else 0))
            self.counts = detections.class_counts()  # objects only
            objects = detections.is_object
            self._track_class.update(zip(detections.track_id[objects].tolist(),
                                         detections.track_class_name[objects].tolist()))

    def _window(self, now: float) -> list[tuple]:
        while self._recent and now - self._recent[0][0] > WINDOW_S:
            self._recent.popleft()
        return list(self._recent)

    def snapshot(self) -> dict:
        now = time.monotonic()
        with self._lock:
            recent = self._window(now)
            span = now - recent[0][0] if recent else 0.0
            processed = (len(recent) - 1) / span if len(recent) > 1 and span > 0 else 0.0
            captured = (recent[-1][2] - recent[0][2]) / span if len(recent) > 1 and span > 0 else 0.0
            latencies = [latency for _, latency, _ in recent if latency is not None]
            return {"processed_fps": round(processed, 2), "source_fps": round(captured, 2),
                    "latency_ms": round(float(np.median(latencies)), 1) if latencies else None,
                    "dropped": self.capture.dropped if self.capture else 0,
                    "captured": self.capture.captured if self.capture else 0, "counts": dict(self.counts),
                    "totals": dict(Counter(self._track_class.values()).most_common()),
                    "source": self._source_state(now),
                    **(self.analytics.live_counts() if self.analytics else {"lines": {}, "zones": {}})}

    def _source_state(self, now: float) -> dict:
        connection = getattr(self.source, "connection", None)
        state = connection.state if connection else "connected"
        since = connection.since if connection else now
        return {"state": state,
                "since": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=now - since)).isoformat(
                    timespec="seconds"),
                "reconnects": reconnects(self.source) if self.source else 0,
                "last_frame_age_s": None if self._last_captured is None else round(now - self._last_captured, 2)}

    def overlay_lines(self) -> list[str]:
        s = self.snapshot()
        latency = "-" if s["latency_ms"] is None else f"{s['latency_ms']:.0f} ms"
        return [f"{s['processed_fps']:.1f} fps processed  latency {latency}  dropped {s['dropped']}"]

    def figures(self, source: Source) -> LiveFigures:
        """The live part of the run's summary."""
        connection = getattr(source, "connection", None)
        return LiveFigures(
            frames_captured=self.capture.captured if self.capture else None,
            frames_dropped=self.capture.dropped if self.capture else 0,
            latency_ms=Percentiles.of(self.latencies_ms),
            inference_ms=Percentiles.of(self.inference_ms),
            reconnects=reconnects(source),
            gaps=tuple(gap.as_dict() for gap in source.gaps),
            connection=tuple(connection.changes) if connection else (),
        )


def reconnects(source: Source) -> int:
    """The gaps a live source came back from."""
    return sum(1 for gap in source.gaps if gap.end_s is not None)


def default_out_dir(info: VideoInfo) -> Path:
    return Path("runs") / f"live-{info.name}"
