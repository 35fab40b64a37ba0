"""The preview server's small HTTP API, on Frigate's routes, and the token it asks for beyond this machine.

- `/api/<camera>/latest.jpg`: the camera's latest annotated frame (the picture the stream shows, boxes drawn:
  Frigate's `latest.jpg?bbox=1`);
- `/api/events?after=&camera=&label=&limit=`: the recent events (line and zone events, and the objects'
  `new`, `update` and `end`), newest first, the same JSON objects the `--events` sinks get, from a ring of the
  last `KEPT` of the run (all cameras together);
- `/api/events/<id>/snapshot.jpg`: an event's snapshot (with `--snapshots`);
- `/api/events/<object id>/clip.mp4`: an object's clip (with `--clips`), once finished.

Bound to an address other than loopback, every route asks for the token (`--serve-token`, or
`VIDPIPE_SERVE_TOKEN`), as `Authorization: Bearer <token>` or `?token=` (an <img> tag and Home Assistant's
generic camera cannot send headers); the server refuses to start without one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import json
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path

from .errors import InputError

KEPT = 1000  # events the API remembers, newest first; older ones are in the output folder's events table
TOKEN_ENV = "VIDPIPE_SERVE_TOKEN"
Answer = tuple[int, str, bytes]
NOT_FOUND: Answer = (404, "text/plain", b"not found")


def loopback(host: str) -> bool:
    """Whether `host` is this machine only (127.0.0.0/8, ::1, localhost): no other machine can connect."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name (or every address, ''): other machines may reach it
        return False


def check_token(host: str, token: str | None) -> None:
    """A server open beyond this machine needs a token: one line otherwise, before anything is opened."""
    if not token and not loopback(host):
        raise InputError(f"--serve {host}: a server reachable from other machines needs a token (--serve-token, "
                         f"or {TOKEN_ENV}); or serve on 127.0.0.1 only")


def authorized(token: str | None, header: str | None, query: Mapping[str, list[str]]) -> bool:
    """Whether a request carries `token` (no token: every request is), compared in constant time."""
    if not token:
        return True
    given = [header[7:].strip()] if header and header.startswith("Bearer ") else []
    given += query.get("token", [])
    return any(hmac.compare_digest(g.encode(), token.encode()) for g in given)


def _time(text: str) -> float:
    """`after=`: a Unix time, or an ISO 8601 time (UTC where it names no zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"after={text!r} is neither a Unix time nor an ISO 8601 time") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


class RecentEvents:
    """The last `KEPT` events of the run, each with the output folder its snapshot path is relative to;
    written by every camera's publisher, read by the server's threads."""

    def __init__(self, kept: int = KEPT) -> None:
        self._events: deque[tuple[dict, Path]] = deque(maxlen=kept)
        self._lock = threading.Lock()

    def add(self, event: dict, folder: Path) -> None:
        with self._lock:
            self._events.append((event, folder))

    def query(self, params: Mapping[str, list[str]]) -> Answer:
        """`/api/events`: newest first (by `time`: when it happened), filtered by `after`, `camera`, `label`, at
        most `limit`."""
        one = {key: values[-1] for key, values in params.items()}
        try:
            after = _time(one["after"]) if "after" in one else None
            limit = int(one.get("limit", KEPT))
            if limit < 0:
                raise ValueError(f"limit={limit} is below 0")
        except ValueError as exc:
            return 400, "text/plain", str(exc).encode()
        with self._lock:
            events = [event for event, _ in reversed(self._events)]
        events.sort(key=lambda e: e["time"], reverse=True)  # an exit found when its track is dropped comes late
        chosen = [e for e in events if (after is None or dt.datetime.fromisoformat(e["time"]).timestamp() > after)
                  and one.get("camera", e["camera"]) == e["camera"]
                  and one.get("label", _label(e)) == _label(e)][:limit]
        return 200, "application/json", json.dumps(chosen).encode()

    def snapshot(self, event_id: str) -> Answer:
        """`/api/events/<id>/snapshot.jpg`: the event's JPEG, or 404 (no such event, or no snapshot)."""
        with self._lock:
            found = next(((e, folder) for e, folder in self._events if e.get("id") == event_id), None)
        return _file(found, "snapshot", "image/jpeg")

    def clip(self, object_id: str) -> Answer:
        """`/api/events/<object id>/clip.mp4`: the object's clip, or 404 (no such object in the ring, no clip, or
        one not finished yet: its final name appears only once complete)."""
        with self._lock:
            found = next(((e, folder) for e, folder in reversed(self._events)
                          if e.get("object_id") == object_id and e.get("clip")), None)
        return _file(found, "clip", "video/mp4")


def _label(event: dict) -> str:
    """The class a `label=` filter matches: a line or zone event's `class_name`, a lifecycle event's label."""
    return event["class_name"] if "class_name" in event else event["after"]["label"]


def _file(found: tuple[dict, Path] | None, key: str, kind: str) -> Answer:
    """The file an event names under `key` (relative to its output folder), or 404."""
    if found is None or not found[0].get(key):
        return NOT_FOUND
    try:
        return 200, kind, (found[1] / found[0][key]).read_bytes()
    except OSError:  # not there (yet), or removed since
        return NOT_FOUND


def route(path: str, query: str, recent: RecentEvents, latest: Callable[[str], bytes | None]) -> Answer | None:
    """The API's answer for a request's `path` (as sent, still %-encoded), or None: not an API route."""
    if not path.startswith("/api/"):
        return None
    parts = [urllib.parse.unquote(p) for p in path[len("/api/"):].split("/")]
    if any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
        return NOT_FOUND  # a traversal, encoded or not, or an empty part
    if parts == ["events"]:
        return recent.query(urllib.parse.parse_qs(query))
    if len(parts) == 3 and parts[0] == "events" and parts[2] == "snapshot.jpg":
        return recent.snapshot(parts[1])
    if len(parts) == 3 and parts[0] == "events" and parts[2] == "clip.mp4":
        return recent.clip(parts[1])
    if len(parts) == 2 and parts[1] == "latest.jpg" and (jpeg := latest(parts[0])) is not None:
        return 200, "image/jpeg", jpeg
    return NOT_FOUND
