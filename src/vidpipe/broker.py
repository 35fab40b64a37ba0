"""One connection to an MQTT broker per process and prefix, shared by every camera that publishes under it, and
the availability that goes with it (Frigate's `available`).

`<prefix>/available` reads `online` (retained) from the moment the connection is up, and again after each
reconnection; `offline` when the run ends cleanly, and `offline` from the broker itself, as the connection's
last will, when vidpipe vanishes without saying so: a process killed (`kill -9`, a crash) at once, as its socket
closes; a machine or network that goes away once the broker misses 1.5 keep-alive intervals (`KEEPALIVE_S`).

A run holds the connection from its first user to its last (`acquire`, `release`; a many-camera run holds it
for the whole run, so a camera that ends early does not take the others offline). Its own thread connects and
reconnects, so a broker that is down never holds up a frame: paho keeps what is published meanwhile (QoS 1, up
to `QUEUE` messages) and sends it once the broker is back. One warning when the broker goes away, one when it
is back, whatever the number of cameras.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from urllib.parse import urlparse

from .errors import InputError

log = logging.getLogger("vidpipe")
QUEUE = 1000  # messages paho keeps while the broker is away; beyond that a publish is refused
KEEPALIVE_S = 5  # the broker notices a vidpipe that vanished with its network within 1.5x this
EARLY_S = 5.0  # an acknowledgement older than this found for a new message is an old message's (ids are reused)
ONLINE, OFFLINE = b"online", b"offline"


class Link:
    """A paho client connected to one broker, its last will `offline` on `<prefix>/available`."""

    def __init__(self, url: str) -> None:
        try:
            from paho.mqtt import client as mqtt
        except ImportError:
            raise InputError(f"--events {url}: MQTT needs paho-mqtt: pip install 'vidpipe[mqtt]'") from None
        parsed = urlparse(url)
        self.url, self.prefix = url, parsed.path.strip("/") or "vidpipe"
        self.available = f"{self.prefix}/available"
        self.full = mqtt.MQTT_ERR_QUEUE_SIZE  # the one answer of `publish` that means paho did not keep it
        self.users = 0
        # Who waits for each acknowledgement, by message id (paho's ids are 16-bit, reused). An acknowledgement
        # that comes before its message is watched (a fast broker) waits in `_early` for a moment.
        self._watched: dict[int, Counter] = {}
        self._early: dict[int, float] = {}
        self._lock = threading.Lock()
        self._away = self._leaving = False
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"vidpipe-{time.time_ns()}")
        self._client.will_set(self.available, OFFLINE, qos=1, retain=True)
        self._client.on_connect, self._client.on_connect_fail = self._connected, self._unreachable
        self._client.on_disconnect, self._client.on_publish = self._disconnected, self._published
        self._client.max_queued_messages_set(QUEUE)
        self._client.reconnect_delay_set(1, 10)
        self._client.connect_async(parsed.hostname, parsed.port or 1883, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, tally: Counter | None = None):
        """paho's message info (`rc`, `mid`); `tally["acknowledged"]` counts up when the broker acknowledges it.
        QoS 0 is for state that the next update replaces: paho does not keep it while the broker is away."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if tally is not None and info.rc != self.full:
            with self._lock:
                early = self._early.pop(info.mid, None)
                if early is not None and time.monotonic() - early < EARLY_S:
                    tally["acknowledged"] += 1
                else:
                    self._watched[info.mid] = tally
        return info

    def _connected(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        client.publish(self.available, ONLINE, qos=1, retain=True)  # again after a reconnection: the will fired
        if self._away:
            self._away = False
            log.warning("--events %s: the broker is back; the events kept meanwhile are being sent", self.url)

    def _published(self, client, userdata, mid: int, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        with self._lock:
            tally = self._watched.pop(mid, None)
            if tally is not None:
                tally["acknowledged"] += 1
                return
            now = time.monotonic()
            if len(self._early) > 1000:  # QoS 0 messages are "acknowledged" as they are sent: forget the old
                self._early = {m: t for m, t in self._early.items() if now - t < EARLY_S}
            self._early[mid] = now

    def _disconnected(self, client, userdata, flags, reason_code, properties) -> None:
        if not (self._leaving or self._away):
            self._away = True
            log.warning("--events %s: the broker went away; events are kept (up to %d messages) and sent when it "
                        "is back", self.url, QUEUE)

    def _unreachable(self, client, userdata) -> None:
        if not self._away:
            self._away = True
            log.warning("--events %s: cannot reach the broker; events are kept (up to %d messages) and sent when "
                        "it answers", self.url, QUEUE)

    def close(self, wait_s: float) -> None:
        """`offline` (retained), waited for at most `wait_s`, then a clean disconnection (no last will)."""
        deadline = time.monotonic() + wait_s
        tally: Counter = Counter()
        self.publish(self.available, OFFLINE, retain=True, tally=tally)
        while not tally and not self._away and time.monotonic() < deadline:
            time.sleep(0.02)
        self._leaving = True
        self._client.disconnect()
        self._client.loop_stop()


_links: dict[tuple, Link] = {}
_lock = threading.Lock()


def _key(url: str) -> tuple:
    parsed = urlparse(url)
    return parsed.hostname, parsed.port or 1883, parsed.path.strip("/") or "vidpipe"


def acquire(url: str) -> Link:
    """The process's connection for `url`'s broker and prefix, opened by its first user."""
    with _lock:
        link = _links.get(_key(url))
        if link is None:
            link = _links[_key(url)] = Link(url)
        link.users += 1
        return link


def release(link: Link, wait_s: float) -> None:
    """One user less; the last one says `offline` and closes the connection."""
    with _lock:
        link.users -= 1
        if link.users:
            return
        del _links[_key(link.url)]
    link.close(wait_s)


class Held:
    """The connections of a run's `mqtt://` URLs, held open from start to end (a context manager)."""

    def __init__(self, urls: list[str]) -> None:
        self._links = [acquire(url) for url in urls if urlparse(url).scheme.lower() == "mqtt"]

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc) -> None:
        for link in self._links:
            release(link, 1.0)
