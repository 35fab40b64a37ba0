"""Events out, as they happen: line crossings and zone entries and exits, as JSON, to a file, a webhook or
an MQTT broker (`--events URL`, repeatable), each with an optional snapshot of what triggered it.

Each event is one JSON object: `{camera, time, time_s, frame, kind, name, direction, track_id, class_name,
score, box, snapshot}`; `time` is when it happened (ISO 8601, UTC), `time_s` the same on the input's clock,
`snapshot` the JPEG's path relative to the output folder (or null). The frame loop never waits on a
network: a webhook or a broker gets its events from a bounded queue on its own thread, and what cannot be
delivered in time is counted as dropped, in the summary.

- `file:///path/events.jsonl`: one object per line, flushed as it is written.
- `http://...`, `https://...`: a POST of the object per event, retried with back-off.
- `mqtt://host[:port]/prefix`: QoS 1 on `prefix/<camera>/events`, the running counts retained on
  `prefix/<camera>/counts`, each snapshot's JPEG bytes on `prefix/<camera>/snapshot` (needs `[mqtt]`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import cv2
import numpy as np

from .analytics import Event
from .detections import Detections
from .errors import InputError
from .files import write_atomic
from .frames import Frame

log = logging.getLogger("vidpipe")
QUEUE = 1000  # events waiting for a slow webhook or broker; beyond that they are dropped, and counted
CLOSE_WAIT_S = 3.0  # at the end of a run, how long undelivered events may hold it up
RETRIES = 3  # a webhook POST is tried this many more times, after 0.5, 1 and 2 s
HTTP_TIMEOUT_S = 5.0


class EventSink(Protocol):
    """Where events go. `send` never blocks the caller; `close` waits at most `wait_s` for what is queued."""

    url: str

    def send(self, event: dict, snapshot: bytes | None) -> None: ...

    def counts(self, totals: dict) -> None:
        """The running totals after an event (kept up to date where the sink can hold them)."""
        ...

    def close(self, wait_s: float) -> dict:
        """Deliver what is queued, then `{url, sent, dropped}`."""
        ...


class JsonLinesFile:
    """Events appended to a local file, one JSON object per line, flushed at once: `tail -f` follows them."""

    def __init__(self, url: str) -> None:
        self.url = url
        given = urlparse(url).path
        if not given:
            raise InputError(f"--events {url}: a file URL needs a path (file:///path/events.jsonl)")
        path = Path(unquote(given))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--events {url}: cannot write {path} ({exc.strerror})") from None
        self.sent = 0

    def send(self, event: dict, snapshot: bytes | None) -> None:
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        self.sent += 1

    def counts(self, totals: dict) -> None:
        pass  # a file keeps every event; its totals are the summary's

    def close(self, wait_s: float) -> dict:
        self._file.close()
        return {"url": self.url, "sent": self.sent, "dropped": 0}


class _Queued:
    """A bounded queue drained by one thread: what the network sinks share."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.sent = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(QUEUE)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._drain, name=name, daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if self._deliver(item):
                self.sent += 1
            else:
                self.dropped += 1

    def _deliver(self, item: object) -> bool:
        raise NotImplementedError

    def close(self, wait_s: float) -> dict:
        deadline = time.monotonic() + wait_s
        self._closing.set()  # back-off waits end: what is left is tried once more, or dropped
        try:
            self._queue.put(None, timeout=wait_s)  # the end mark, behind what is queued
            marked = True
        except queue.Full:
            marked = False
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():  # a server that hangs, or a long queue: the run does not wait for it
            left = self._queue.qsize() - marked + 1  # those behind the one being delivered, and that one
            log.warning("--events %s: %d event(s) not delivered in %.0f s: dropped", self.url, left, wait_s)
            self.dropped += left
        return {"url": self.url, "sent": self.sent, "dropped": self.dropped}


class Webhook(_Queued):
    """A POST of each event's JSON to a URL, from a thread: retried with back-off on a failure or a 5xx
    answer, dropped (and counted) after the last retry or when the queue is full."""

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
    """Events to an MQTT broker with paho-mqtt (QoS 1), the running counts as a retained message; the
    client connects (and reconnects) on its own thread, so a broker that is down never holds up a frame."""

    def __init__(self, url: str, camera: str) -> None:
        try:
            from paho.mqtt import client as mqtt
        except ImportError:
            raise InputError(f"--events {url}: MQTT needs paho-mqtt: pip install 'vidpipe[mqtt]'") from None
        parsed = urlparse(url)
        if not parsed.hostname:
            raise InputError(f"--events {url}: an MQTT URL is mqtt://host[:port]/prefix")
        prefix = parsed.path.strip("/") or "vidpipe"
        self.topic = f"{prefix}/{camera}"
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vidpipe-{camera}-{time.time_ns()}")
        self._client.max_queued_messages_set(QUEUE)
        self._client.reconnect_delay_set(1, 10)
        self._client.connect_async(parsed.hostname, parsed.port or 1883)
        self._client.loop_start()
        self._pending: list = []
        super().__init__(url, "vidpipe-mqtt")

    def send(self, event: dict, snapshot: bytes | None) -> None:
        self._put((f"{self.topic}/events", json.dumps(event).encode(), False))
        if snapshot is not None:
            self._put((f"{self.topic}/snapshot", snapshot, False))

    def counts(self, totals: dict) -> None:
        self._put((f"{self.topic}/counts", json.dumps(totals).encode(), True))

    def _deliver(self, item: tuple) -> bool:
        topic, payload, retain = item
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != 0:
            return False
        self._pending.append(info)  # sent once the broker acknowledges it
        return True

    def close(self, wait_s: float) -> dict:
        deadline = time.monotonic() + wait_s
        figures = super().close(wait_s)
        acknowledged = 0
        for info in self._pending:
            while not info.is_published() and time.monotonic() < deadline:
                time.sleep(0.02)
            acknowledged += info.is_published()
        self._client.disconnect()
        self._client.loop_stop()
        unacknowledged = len(self._pending) - acknowledged
        if unacknowledged:
            log.warning("--events %s: the broker did not acknowledge %d message(s): dropped", self.url,
                        unacknowledged)
        return {**figures, "sent": figures["sent"] - unacknowledged, "dropped": figures["dropped"] + unacknowledged}


SCHEMES = ("file", "http", "https", "mqtt")


def check_url(url: object) -> str:
    """`url`'s scheme, one a sink exists for; else one line (a preset's `events:` is checked when it loads)."""
    scheme = urlparse(url).scheme.lower() if isinstance(url, str) and "://" in url else ""
    if scheme not in SCHEMES:
        raise InputError(f"events: {url!r} is not file:///path.jsonl, http(s)://... or mqtt://host[:port]/prefix")
    return scheme


def open_sink(url: str, camera: str) -> EventSink:
    """The sink for `url`, chosen by its scheme."""
    scheme = check_url(url)
    if scheme == "file":
        return JsonLinesFile(url)
    if scheme == "mqtt":
        return Mqtt(url, camera)
    return Webhook(url)


class Publisher:
    """Sends a run's events out as they are confirmed: builds each one's JSON, writes its snapshot
    (`snapshots/` in the output folder: the frame with the object's box) and hands both to every sink."""

    def __init__(self, urls: Sequence[str], camera: str, out_dir: Path, snapshots: bool,
                 wall_clock: Callable[[float], dt.datetime]) -> None:
        self.camera, self.out_dir, self.snapshots = camera, out_dir, snapshots
        self._wall_clock = wall_clock  # input time (s) -> when that was
        self.sinks: list[EventSink] = []
        try:
            for url in urls:
                self.sinks.append(open_sink(url, camera))
        except BaseException:
            self.close(0)
            raise

    def publish(self, frame: Frame, detections: Detections, events: Sequence[Event], totals: dict) -> None:
        for event in events:
            snapshot, name = self._snapshot(frame, detections, event) if self.snapshots else (None, None)
            record = {"camera": self.camera, "time": self._wall_clock(event.time_s).isoformat(timespec="milliseconds"),
                      "time_s": round(event.time_s, 3), "frame": event.frame, "kind": event.kind, "name": event.name,
                      "direction": event.direction, "track_id": event.track_id, "class_name": event.class_name,
                      "score": None if event.score is None else round(event.score, 4),
                      "box": None if event.box is None else [round(v, 1) for v in event.box], "snapshot": name}
            for sink in self.sinks:
                sink.send(record, snapshot)
        if events:
            for sink in self.sinks:
                sink.counts({"camera": self.camera, **totals})

    def _snapshot(self, frame: Frame, detections: Detections, event: Event) -> tuple[bytes | None, str | None]:
        """The current frame with the object's box (where it is now, else where the event saw it), as JPEG."""
        if frame.image.size == 0:
            return None, None
        now = detections.xyxy[detections.track_id == event.track_id]
        box = now[0] if len(now) else np.asarray(event.box if event.box else (0, 0, 0, 0))
        picture = frame.image.copy()
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        thick = max(2, round(min(picture.shape[:2]) / 180))
        cv2.rectangle(picture, (x1, y1), (x2, y2), (0, 0, 255), thick)
        ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            return None, None
        name = f"snapshots/{event.time_s:010.3f}_{event.kind}_{_safe(event.name)}_{event.track_id}.jpg"
        data = jpeg.tobytes()
        write_atomic(self.out_dir / name, data)
        return data, name

    def close(self, wait_s: float = CLOSE_WAIT_S) -> list[dict]:
        """Every sink's `{url, sent, dropped}`, after at most `wait_s` for what is still queued (together)."""
        deadline = time.monotonic() + wait_s
        return [sink.close(max(deadline - time.monotonic(), 0.0)) for sink in self.sinks]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
