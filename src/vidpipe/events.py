"""Events out, as they happen: line crossings and zone entries and exits, and each object's lifecycle
(`lifecycle`: `new`, `update`, `end`), as JSON, to a file, a webhook or an MQTT broker (`--events URL`,
repeatable), a crossing or zone change with an optional snapshot of what triggered it.

Each event is one JSON object. A line or zone event: `{id, camera, time, time_s, frame, kind, name, direction,
track_id, object_id, class_name, score, box, snapshot, snapshot_url}`; `id` is unique within the run, across
cameras (`<camera>-<frame>-<track_id>-<kind>-<name>[-<direction>]`), `time` is when it happened (ISO 8601,
UTC), `time_s` the same on the input's clock, `object_id` its object's lifecycle id, `snapshot` the JPEG's path
relative to the output folder (or null), `snapshot_url` where the preview server (`--serve`) gives it (null
without one; never with the server's token: a receiver adds its own). A lifecycle event: `{camera, time,
time_s, frame, kind, object_id, type, before, after}`, Frigate's `{type, before, after}` with the same header.
The frame loop never waits on a network: a webhook or a broker gets its events from a bounded queue on its own
thread, and what cannot be delivered in time is counted as dropped, in the summary (`events_out`: `sent` and
`dropped` count events, not the messages that carry them). A sink that fails never fails the run: a full disk
or a broker that went away is one warning, and the run's own outputs are finished as usual.

- `file:///path/events.jsonl`: one object per line, flushed as it is written.
- `http://...`, `https://...`: a POST of the object per event, retried with back-off.
- `mqtt://host[:port]/prefix`: QoS 1, the lifecycle on `prefix/events` (Frigate's topic, every camera's), line
  and zone events on `prefix/<camera>/events`; the running counts retained on `prefix/<camera>/counts`, each
  snapshot's JPEG bytes retained on `prefix/<camera>/snapshot`; and what is in view now (`inview`),
  `prefix/available` (`broker`) and Home Assistant's discovery (`homeassistant`), on Frigate's conventions
  (needs `[mqtt]`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, unquote, urljoin, urlparse

from . import broker
from .analytics import Event
from .annotate import boxed_jpeg
from .api import RecentEvents
from .detections import Detections
from .errors import InputError
from .files import safe_name, write_atomic
from .frames import Frame
from .homeassistant import Announcer, Discovery
from .inview import InView, State, level
from .lifecycle import KINDS

log = logging.getLogger("vidpipe")
QUEUE = 1000  # messages waiting for a slow webhook or broker; beyond that an event is dropped, and counted
CLOSE_WAIT_S = 3.0  # at the end of a run, how long undelivered events may hold it up
RETRIES = 3  # a webhook POST is tried this many more times, after 0.5, 1 and 2 s
HTTP_TIMEOUT_S = 5.0


class EventSink(Protocol):
    """Where events go. `send` never blocks the caller; `close` waits at most `wait_s` for what is queued."""

    url: str
    keeps_state: bool  # a `StateSink`: it holds what is in view now for late readers (a broker)

    def send(self, event: dict, snapshot: bytes | None) -> None: ...

    def counts(self, totals: dict) -> None:
        """The running totals after an event (kept up to date where the sink can hold them)."""
        ...

    def hurry(self) -> None:
        """The run is ending: stop waiting between retries (`close` follows, with the time left)."""
        ...

    def close(self, wait_s: float) -> dict:
        """Deliver what is queued, then `{url, sent, dropped}`, in events."""
        ...


class StateSink(EventSink, Protocol):
    """A sink that also holds state for late readers: what is in view now (`inview`)."""

    def state(self, state: State) -> None: ...


class JsonLinesFile:
    """Events appended to a local file, one JSON object per line, written at once: `tail -f` follows them. A
    line that cannot be written (a full disk) is dropped and counted, with one warning: the run goes on."""

    keeps_state = False

    def __init__(self, url: str) -> None:
        self.url = url
        given = urlparse(url).path
        if not given:
            raise InputError(f"--events {url}: a file URL needs a path (file:///path/events.jsonl)")
        self.path = Path(unquote(given))
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # unbuffered: a line that cannot be written fails when it is sent, not later, when the file closes
            self._file = self.path.open("ab", buffering=0)
        except OSError as exc:
            raise InputError(f"--events {url}: cannot write {self.path} ({exc.strerror})") from None
        self.sent = self.dropped = 0

    def send(self, event: dict, snapshot: bytes | None) -> None:
        try:
            self._append((json.dumps(event) + "\n").encode())
        except OSError as exc:
            if not self.dropped:  # once: a full disk must not flood the terminal
                log.warning("--events %s: cannot write %s (%s); events that cannot be written are dropped and "
                            "counted", self.url, self.path, exc.strerror or exc)
            self.dropped += 1
            return
        self.sent += 1

    def _append(self, line: bytes) -> None:
        """All of `line` or none of it: a line cut short (the disk filled up half-way through it) is taken back,
        so that the file holds whole lines only, and the next line that fits starts on its own."""
        start = self._file.tell()
        try:
            rest = memoryview(line)
            while rest:
                written = self._file.write(rest)
                if not written:
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                rest = rest[written:]
        except OSError:
            with contextlib.suppress(OSError):  # a device (/dev/full) cannot be truncated; nothing went in
                os.ftruncate(self._file.fileno(), start)
                self._file.seek(start)  # where the next line goes (appending writes at the end anyway)
            raise

    def counts(self, totals: dict) -> None:
        pass  # a file keeps every event; its totals are the summary's

    def hurry(self) -> None:
        pass  # each line is written as it comes

    def close(self, wait_s: float) -> dict:
        self._file.close()
        return {"url": self.url, "sent": self.sent, "dropped": self.dropped}


class _Queued:
    """A bounded queue drained by one thread: what the network sinks share. The figures count events: an item
    queued with `event=False` (the running counts) is delivered, or not, uncounted."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.offered = self.sent = self.dropped = 0  # events given to `send`; delivered; given up on so far
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._lock = threading.Lock()
        self._closed = False  # the figures are final: what the thread still does is not counted
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object, event: bool = True) -> None:
        self.offered += event
        try:
            self._queue.put_nowait((item, event))
        except queue.Full:
            if event:
                self._tally(False)

    def _tally(self, delivered: bool) -> None:
        with self._lock:
            if not self._closed:
                self.sent += delivered
                self.dropped += not delivered

    def _drain(self) -> None:
        while (got := self._queue.get()) is not None:
            item, event = got
            delivered = self._deliver(item)
            if event:
                self._tally(delivered)

    def _deliver(self, item: object) -> bool:
        raise NotImplementedError

    def hurry(self) -> None:
        self._closing.set()  # back-off waits end: what is left is tried once more, or dropped

    def close(self, wait_s: float) -> dict:
        deadline = time.monotonic() + wait_s
        self.hurry()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=wait_s)  # the end mark, behind what is queued
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        with self._lock:
            self._closed = True
        left = self.offered - self.sent - self.dropped
        if left:  # a server that hangs, or a long queue: the run does not wait for it
            log.warning("--events %s: %d event(s) not delivered before the run ended: dropped", self.url, left)
        return {"url": self.url, "sent": self.sent, "dropped": self.offered - self.sent}


class Webhook(_Queued):
    """A POST of each event's JSON to a URL, from a thread: retried with back-off on a failure or a 5xx
    answer, dropped (and counted) after the last retry or when the queue is full."""

    keeps_state = False

    def __init__(self, url: str) -> None:
        super().__init__(url, "vidpipe-webhook")
        self._warned = False

    def send(self, event: dict, snapshot: bytes | None) -> None:
        self._put(json.dumps(event).encode())

    def counts(self, totals: dict) -> None:
        pass  # each event carries what happened; a webhook holds no state

    def _deliver(self, body: bytes) -> bool:
        delay = 0.5
        for attempt in range(RETRIES + 1):
            problem = self._post(body)
            if problem is None:
                return True
            if attempt == RETRIES or self._closing.is_set():
                break
            self._closing.wait(delay)
            delay *= 2
        if not self._warned:  # once: a dead webhook must not flood the terminal
            log.warning("--events %s: %s; events that cannot be delivered are dropped and counted", self.url,
                        problem)
            self._warned = True
        return False

    def _post(self, body: bytes) -> str | None:
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            return f"the server answered {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return f"cannot reach it ({getattr(exc, 'reason', exc)})"


class Mqtt(_Queued):
    """Events to an MQTT broker (QoS 1), through the process's connection to it (`broker`); the running counts,
    the objects in view and each class's best picture as retained messages, the state a dashboard that
    connects later gets at once; Home Assistant's discovery configs with `discovery`.

    An event counts as sent when the broker acknowledges its message, as dropped when paho had no room for it
    or the acknowledgement had not come by the end of the run. The state goes out at QoS 0: while the broker
    is away paho does not keep it, and the next update (`inview.HEARTBEAT_S` at the latest) replaces it."""

    keeps_state = True

    def __init__(self, url: str, camera: str, discovery: Discovery | None = None) -> None:
        self._link = broker.acquire(url)
        self.topic = f"{self._link.prefix}/{level(camera)}"
        self._events = 0  # the events paho kept
        self._acks: Counter = Counter()  # of those, acknowledged by the broker
        self._announcer = Announcer(self._link.prefix, camera, discovery) if discovery else None
        self._announced: set[str] = set()  # the classes whose discovery configs went out
        super().__init__(url, "vidpipe-mqtt")
        if self._announcer:
            self._put(("configs", self._announcer.start()), event=False)

    def send(self, event: dict, snapshot: bytes | None) -> None:
        """A lifecycle event to `prefix/events` (Frigate's, for every camera), a line or zone event to the
        camera's `events`."""
        topic = f"{self._link.prefix}/events" if event["kind"] in KINDS else f"{self.topic}/events"
        self._put(("event", topic, json.dumps(event).encode(), snapshot))

    def counts(self, totals: dict) -> None:
        self._put(("counts", f"{self.topic}/counts", json.dumps(totals).encode(), None), event=False)

    def state(self, state: State) -> None:
        new = [name for name in state.classes if name not in self._announced]
        if self._announcer and new:
            self._announced.update(new)
            self._put(("configs", self._announcer.classes(new)), event=False)
        self._put(("state", state), event=False)

    def _deliver(self, item: tuple) -> bool:
        """Hand the message (and an event's snapshot) to paho: whether it kept it, to send now or once the
        broker is back (its `rc` then says it is not connected, yet the message waits in its queue)."""
        if item[0] == "configs":
            for topic, payload in item[1]:
                self._link.publish(topic, payload, retain=True)
            return True
        if item[0] == "state":
            for topic, value in item[1].values.items():
                self._link.publish(f"{self.topic}/{topic}", str(value).encode(), qos=0, retain=True)
            for name, jpeg in item[1].snapshots.items():
                self._link.publish(f"{self.topic}/{level(name)}/snapshot", jpeg, qos=0, retain=True)
            return True
        kind, topic, payload, snapshot = item
        info = self._link.publish(topic, payload, retain=kind == "counts",
                                  tally=self._acks if kind == "event" else None)
        if snapshot is not None:
            self._link.publish(f"{self.topic}/snapshot", snapshot, retain=True)
        if info.rc == self._link.full:
            return False
        if kind == "event":
            with self._lock:
                self._events += 1
        return True

    def close(self, wait_s: float) -> dict:
        deadline = time.monotonic() + wait_s
        figures = super().close(wait_s)
        with self._lock:
            kept = self._events
        while self._acks["acknowledged"] < kept and time.monotonic() < deadline:
            time.sleep(0.02)
        sent = self._acks["acknowledged"]
        broker.release(self._link, max(deadline - time.monotonic(), 0.5))  # `offline` gets its moment
        if sent < kept:
            log.warning("--events %s: the broker did not acknowledge %d event(s): dropped", self.url, kept - sent)
        return {**figures, "sent": sent, "dropped": self.offered - sent}


SCHEMES = ("file", "http", "https", "mqtt")


def check_url(url: object) -> str:
    """`url`'s scheme, one a sink exists for, with a host and a port it can reach; else one line naming it.
    `--events` and a preset's `events:` are checked when they load, before a model is."""
    scheme = urlparse(url).scheme.lower() if isinstance(url, str) and "://" in url else ""
    if scheme not in SCHEMES:
        raise InputError(f"events: {url!r} is not file:///path.jsonl, http(s)://... or mqtt://host[:port]/prefix")
    if scheme != "file":
        parsed = urlparse(url)
        if not parsed.hostname:
            raise InputError(f"events: {url!r} names no host ({scheme}://host[:port]/...)")
        try:
            port = parsed.port
        except ValueError:  # not a number, or past 65535
            port = -1
        if port is not None and not 0 < port < 65536:
            raise InputError(f"events: {url!r}: the port must be a number from 1 to 65535")
        if scheme == "mqtt" and ("+" in parsed.path or "#" in url):
            raise InputError(f"events: {url!r}: an MQTT prefix cannot hold the wildcards + and #")
    return scheme


def open_sink(url: str, camera: str, discovery: Discovery | None = None) -> EventSink:
    """The sink for `url`, chosen by its scheme; a broker's announces `discovery` to Home Assistant."""
    scheme = check_url(url)
    if scheme == "file":
        return JsonLinesFile(url)
    if scheme == "mqtt":
        return Mqtt(url, camera, discovery)
    return Webhook(url)


class Publisher:
    """Sends a run's events out as they are confirmed: builds each one's JSON, writes its snapshot
    (`snapshots/` in the output folder: the frame with the object's box) and hands both to every sink; and,
    to the sinks that keep state (a broker), what is in view now (`observe`, every frame). `outputs_url`: where
    a server gives the output folder's snapshots, for each event's `snapshot_url`; `in_view`: the camera's
    objects in view, where a sink keeps state; `discovery`: what a broker announces to Home Assistant;
    `recent`: the preview server's events, for its API; `object_ids`: each object's lifecycle id by track, for
    each event's `object_id`."""

    def __init__(self, urls: Sequence[str], camera: str, out_dir: Path, snapshots: bool,
                 wall_clock: Callable[[float], dt.datetime], outputs_url: str | None = None,
                 in_view: InView | None = None, discovery: Discovery | None = None,
                 recent: RecentEvents | None = None, object_ids: Mapping[int, str] | None = None) -> None:
        self.camera, self.out_dir, self.snapshots, self.outputs_url = camera, out_dir, snapshots, outputs_url
        self.recent = recent
        self._object_ids = {} if object_ids is None else object_ids  # filled as objects are confirmed
        self._wall_clock = wall_clock  # input time (s) -> when that was
        self._deadline = float("inf")  # when closing stops waiting for what is queued (see `hurry`)
        self.sinks: list[EventSink] = []
        self._stateful: list[StateSink] = []
        self._in_view: InView | None = None
        try:
            for url in urls:
                self.sinks.append(open_sink(url, camera, discovery))
        except BaseException:
            self.close(0)
            raise
        self._stateful = [sink for sink in self.sinks if sink.keeps_state]
        self._in_view = in_view if self._stateful else None

    def observe(self, frame: Frame, detections: Detections, zones: Mapping[str, Counter]) -> None:
        """Every frame: what is in view now (`zones`: each zone's occupancy by class), to the sinks that keep
        state, as often as `inview` lets it go."""
        if self._in_view is not None and (state := self._in_view.update(frame, detections, zones)) is not None:
            for sink in self._stateful:
                sink.state(state)

    def counts(self, totals: dict) -> None:
        """The running totals, to every sink that holds them."""
        for sink in self.sinks:
            sink.counts({"camera": self.camera, **totals})

    def publish(self, frame: Frame, detections: Detections, events: Sequence[Event], totals: dict) -> None:
        for event in events:
            snapshot, name = self._snapshot(frame, detections, event) if self.snapshots else (None, None)
            record = {"id": event_id(self.camera, event), "camera": self.camera,
                      "time": self._wall_clock(event.time_s).isoformat(timespec="milliseconds"),
                      "time_s": round(event.time_s, 3), "frame": event.frame, "kind": event.kind, "name": event.name,
                      "direction": event.direction, "track_id": event.track_id,
                      "object_id": self._object_ids.get(event.track_id), "class_name": event.class_name,
                      "score": None if event.score is None else round(event.score, 4),
                      "box": None if event.box is None else [round(v, 1) for v in event.box], "snapshot": name,
                      "snapshot_url": self._url(name)}
            for sink in self.sinks:
                sink.send(record, snapshot)
            if self.recent is not None:
                self.recent.add(record, self.out_dir)
        if events:
            self.counts(totals)

    def lifecycle(self, messages: Sequence[dict]) -> None:
        """Objects' `new`, `update` and `end` (`lifecycle`), to every sink and the server's API, as events; one
        that names its clip (`clip`, with --clips) gets the clip's address on the server (`clip_url`)."""
        for message in messages:
            if "clip" in message:
                message["clip_url"] = None if self.outputs_url is None else urljoin(
                    self.outputs_url, f"/api/events/{quote(message['object_id'])}/clip.mp4")
            for sink in self.sinks:
                sink.send(message, None)
            if self.recent is not None:
                self.recent.add(message, self.out_dir)

    def _url(self, snapshot: str | None) -> str | None:
        """The snapshot's address on the preview server, or None (no snapshot, or no server)."""
        if snapshot is None or self.outputs_url is None:
            return None
        return urljoin(self.outputs_url, quote(snapshot))

    def _snapshot(self, frame: Frame, detections: Detections, event: Event) -> tuple[bytes | None, str | None]:
        """The current frame with the object's box (where it is now, else where the event saw it), as JPEG."""
        if frame.image.size == 0:
            return None, None
        now = detections.xyxy[detections.track_id == event.track_id]
        data = boxed_jpeg(frame.image, now[0] if len(now) else (event.box or (0, 0, 0, 0)))
        if data is None:
            return None, None
        name = f"snapshots/{event.time_s:010.3f}_{event.kind}_{safe_name(event.name)}_{event.track_id}.jpg"
        write_atomic(self.out_dir / name, data)
        return data, name

    def hurry(self, deadline: float) -> None:
        """The run is ending: every sink delivers what it holds without waiting between retries, and `close`
        waits no later than `deadline` (time.monotonic()). Several cameras' publishers given one deadline
        drain side by side, so that N cameras stop within one `CLOSE_WAIT_S`, not N of them."""
        self._deadline = deadline
        for sink in self.sinks:
            sink.hurry()

    def close(self, wait_s: float = CLOSE_WAIT_S) -> list[dict]:
        """Every sink's `{url, sent, dropped}`, after at most `wait_s` for what is still queued (together), or
        until the deadline given to `hurry`, if that comes first."""
        deadline = min(time.monotonic() + wait_s, self._deadline)
        if self._in_view is not None:  # the values as of the last frame, and the pictures still waiting
            last = self._in_view.final()
            for sink in self._stateful:
                sink.state(last)
        self.hurry(deadline)
        return [sink.close(max(deadline - time.monotonic(), 0.0)) for sink in self.sinks]


def event_id(camera: str, event: Event) -> str:
    """One event's id, unique within a run and across its cameras, and a URL path part as it is."""
    parts = (camera, event.frame, event.track_id, event.kind, event.name, *([event.direction] if event.direction
                                                                           else []))
    return "-".join(safe_name(str(part)) for part in parts)
