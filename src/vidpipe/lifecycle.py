"""Each object's life as events, on Frigate's `frigate/events`: `new` when its track is confirmed, `update` when
what a user sees of it changes, `end` once it is gone; each message carries the object's state `before` and
`after`, under one `id` from `new` to `end`.

An object's id is `<start>-<camera>-<track id>`: `start` the unix time, to the millisecond, of its track's
first detection, `camera` the source's name in letters, digits, `-` and `_` (`1765000000.123-door-7`). So ids
differ across cameras and runs, as Frigate's `<start>-<random>` do, and say where they come from;
tracks.parquet's `object_id` and each line or zone event's `object_id` name the same object.

- `new`: on the frame its track is confirmed (`tracking.confirm`); `before` is its state at its first
  detection, still a `false_positive`.
- `update`: its zones change (`current_zones`, `entered_zones`), its voted class (`label`) changes, or a
  detection scores `SCORE_MARGIN` above the `top_score` last sent; at most one every `UPDATE_S` seconds of
  video per object, changes in between going out together.
- `end`: once the tracker has dropped its track (`Tracker.forget_s` of video after its last detection: its id
  cannot come back), or when the input ends; `end_time` is its last detection's, so it is never before the
  object was last seen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .detections import Detections
from .files import safe_name
from .frames import Frame

KINDS = ("new", "update", "end")
UPDATE_S = 1.0
SCORE_MARGIN = 0.05


@dataclass
class _Object:
    """One track followed from its first detection: what the last detection showed and what was last sent."""

    id: str
    track: int
    start: float  # unix seconds, and the same on the input's clock
    start_s: float
    label: str = ""
    score: float = 0.0
    top_score: float = 0.0
    box: tuple[float, ...] = ()
    seen: float = 0.0  # the last detection's time, unix seconds and input seconds
    seen_s: float = 0.0
    current_zones: tuple[str, ...] = ()
    entered_zones: list[str] = field(default_factory=list)
    confirmed: bool = False
    sent: dict = field(default_factory=dict)  # the state in the last message (before `new`: the first detection)
    sent_s: float = 0.0  # when the last message went (input seconds)

    def observe(self, label: str, score: float, box: tuple[float, ...], seen: float, seen_s: float) -> None:
        self.label, self.score, self.box, self.seen, self.seen_s = label, score, box, seen, seen_s
        self.top_score = max(self.top_score, score)

    def state(self, camera: str, ended: bool = False) -> dict:
        """The object as Frigate's `before` and `after` give it, plus vidpipe's times on the input's clock
        (`*_s`) and its track id."""
        x1, y1, x2, y2 = self.box
        return {"id": self.id, "camera": camera, "label": self.label, "score": round(self.score, 4),
                "top_score": round(self.top_score, 4), "box": [round(v, 1) for v in self.box],
                "area": round((x2 - x1) * (y2 - y1)), "frame_time": round(self.seen, 3),
                "start_time": round(self.start, 3), "end_time": round(self.seen, 3) if ended else None,
                "current_zones": list(self.current_zones), "entered_zones": list(self.entered_zones),
                "false_positive": not self.confirmed, "track_id": self.track, "time_s": round(self.seen_s, 3),
                "start_time_s": round(self.start_s, 3), "end_time_s": round(self.seen_s, 3) if ended else None}

    def changed(self) -> bool:
        """Whether a user would see a difference from the state last sent."""
        sent = self.sent
        return (self.label != sent["label"] or list(self.current_zones) != sent["current_zones"]
                or self.entered_zones != sent["entered_zones"] or self.top_score >= sent["top_score"] + SCORE_MARGIN)


class Lifecycle:
    """One camera's objects, frame by frame, turned into lifecycle messages: `{camera, time, time_s, frame,
    kind, object_id, type, before, after}` (`kind` and `type` alike: `new`, `update` or `end`; `time` when it
    was decided, ISO 8601 UTC). `ids` keeps every object's id for the run, by track (tracks.parquet)."""

    def __init__(self, camera: str, wall_clock: Callable[[float], dt.datetime], forget_s: float) -> None:
        self.camera, self._wall_clock, self.forget_s = camera, wall_clock, forget_s
        self._safe_camera = safe_name(camera)
        self.ids: dict[int, str] = {}
        self._objects: dict[int, _Object] = {}  # tracks seen and not yet gone
        self._last: tuple[int, float, dt.datetime] | None = None  # the latest frame: index, time, wall time

    def update(self, frame: Frame, detections: Detections, zones: Mapping[int, tuple[str, ...]]) -> list[dict]:
        """This frame's messages; `zones`: the zones each object is in now (as the zone events have it)."""
        wall = self._wall_clock(frame.time)
        self._last = (frame.index, frame.time, wall)
        seen = detections[detections.is_tracked & detections.detected]
        for track, label, score, box in zip(seen.track_id.tolist(), seen.track_class_name, seen.score.tolist(),
                                            seen.xyxy.tolist()):
            obj = self._objects.get(track)
            if obj is None:
                obj = self._objects[track] = _Object(self._id(wall, track), track, wall.timestamp(), frame.time)
            obj.observe(label, score, tuple(box), wall.timestamp(), frame.time)
            if not obj.sent:  # its first detection: what `new` will give as `before`
                obj.sent = obj.state(self.camera)
        messages = []
        for track in dict.fromkeys(detections.track_id[detections.is_object].tolist()):  # in the rows' order
            obj = self._objects.get(track)
            if obj is not None and not obj.confirmed:
                obj.confirmed, self.ids[track] = True, obj.id
                self._follow_zones(obj, zones)
                messages.append(self._message("new", obj))
        for obj in [o for o in self._objects.values() if o.confirmed]:
            self._follow_zones(obj, zones)
            if frame.time - obj.sent_s >= UPDATE_S and obj.changed():
                messages.append(self._message("update", obj))
        for obj in [o for o in self._objects.values() if frame.time - o.seen_s > self.forget_s + 1e-9]:
            del self._objects[obj.track]
            if obj.confirmed:
                messages.append(self._message("end", obj))
        return messages

    def close(self) -> list[dict]:
        """The input ended: `end` for every object still followed."""
        messages = [self._message("end", obj) for obj in self._objects.values() if obj.confirmed]
        self._objects.clear()
        return messages

    def _id(self, wall: dt.datetime, track: int) -> str:
        return f"{wall.timestamp():.3f}-{self._safe_camera}-{track}"

    @staticmethod
    def _follow_zones(obj: _Object, zones: Mapping[int, tuple[str, ...]]) -> None:
        obj.current_zones = zones.get(obj.track, ())
        obj.entered_zones += [zone for zone in obj.current_zones if zone not in obj.entered_zones]

    def _message(self, kind: str, obj: _Object) -> dict:
        index, time_s, wall = self._last
        after = obj.state(self.camera, ended=kind == "end")
        message = {"camera": self.camera, "time": wall.isoformat(timespec="milliseconds"), "time_s": round(time_s, 3),
                   "frame": index, "kind": kind, "object_id": obj.id, "type": kind, "before": obj.sent,
                   "after": after}
        obj.sent, obj.sent_s = after, time_s
        return message
