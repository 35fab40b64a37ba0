"""What a camera sees now, Frigate style: the objects of each class in the current frame, in each zone, and the
best recent picture of each class. State, not events: a broker keeps the latest of each (retained) for a
dashboard that connects later, and none of it counts in `events_out`.

The objects are those the frames table counts (`n_<class>`: with a tracker, the confirmed tracks in the frame)
and, per zone, its occupancy by class (the frames table's `<zone>_n`, split by class). A class is reported
from the start when `--classes` names it, else from the first frame it is seen in; from then on it always
has a value, 0 once its objects have left.

Bounded: a topic goes out at most every `CHANGE_S` when its value changes (changes in between coalesce to the
latest), and at least every `HEARTBEAT_S` even when unchanged; each class's picture at most
every `SNAPSHOT_EVERY_S`, when a view scoring higher than the one sent comes, or any view once the one sent is
older than `RECENT_S`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .annotate import boxed_jpeg
from .detections import Detections
from .frames import Frame

CHANGE_S = 0.5
HEARTBEAT_S = 5.0
SNAPSHOT_EVERY_S = 1.0
RECENT_S = 30.0


def level(name: str) -> str:
    """`name` as one level of an MQTT topic: no `/`, and none of the wildcards `+` and `#`."""
    return name.replace("/", "-").replace("+", "-").replace("#", "-")


@dataclass(frozen=True)
class State:
    """What to send now: `values` by topic under the camera (`car`, `driveway/car`), each class's picture
    (JPEG), and every class known so far (for announcements: Home Assistant's discovery)."""

    values: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, bytes] = field(default_factory=dict)
    classes: tuple[str, ...] = ()


@dataclass
class _View:
    score: float
    at: float  # when it was seen (the clock's time)
    image: np.ndarray | None = None
    box: np.ndarray | None = None


class InView:
    """One camera's objects in view and best views, turned into the `State` updates worth sending."""

    def __init__(self, classes: Sequence[str] | None, zones: Mapping[str, Sequence[str] | None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`classes`: the run's `--classes` (None: those seen); `zones`: each zone's classes (None: any)."""
        self._classes: list[str] = list(classes or [])
        self._zones = dict(zones)
        self._clock = clock
        self._values: dict[str, int] = {}  # every topic's value now
        self._sent: dict[str, tuple[int, float]] = {}  # every topic's value last sent, and when
        self._best: dict[str, _View] = {}  # by class: the view sent
        self._pending: dict[str, _View] = {}  # by class: a better view, waiting for its turn
        self._pictured: dict[str, float] = {}  # by class: when its picture last went out

    def update(self, frame: Frame, detections: Detections, zones: Mapping[str, Counter]) -> State | None:
        """This frame's counts (`zones`: each zone's occupancy by class); what to send now, if anything."""
        now = self._clock()
        counts = detections.class_counts()
        for name in [*counts, *(c for occupancy in zones.values() for c in occupancy)]:
            if name not in self._classes:
                self._classes.append(name)
        self._values = {level(name): counts.get(name, 0) for name in self._classes}
        for zone, classes in self._zones.items():
            occupancy = zones.get(zone, Counter())
            for name in self._classes:
                if classes is None or name in classes:
                    self._values[f"{level(zone)}/{level(name)}"] = occupancy.get(name, 0)
        self._offer(frame, detections, now)
        values = self._due(now)
        snapshots = self._pictures(now)
        return State(values, snapshots, tuple(self._classes)) if values or snapshots else None

    def final(self) -> State:
        """Every value as of the last frame, and any picture still waiting: the run's last word."""
        for name in self._pending:
            self._pictured[name] = -float("inf")
        return State(dict(self._values), self._pictures(self._clock()), tuple(self._classes))

    def _due(self, now: float) -> dict[str, int]:
        """The values to send now: each topic's when it changed and its last send is `CHANGE_S` old, or when
        its last send is `HEARTBEAT_S` old."""
        due = {}
        for topic, value in self._values.items():
            sent, at = self._sent.get(topic, (None, -float("inf")))
            if now - at >= HEARTBEAT_S or (value != sent and now - at >= CHANGE_S):
                due[topic] = value
                self._sent[topic] = (value, now)
        return due

    def _offer(self, frame: Frame, detections: Detections, now: float) -> None:
        """Each class's highest-scoring object of this frame, kept if it beats the view sent (or that one is
        no longer recent) and the view already waiting."""
        names = detections.class_name
        for name in set(names.tolist()):
            rows = np.flatnonzero(names == name)
            row = rows[np.argmax(detections.score[rows])]
            score = float(detections.score[row])
            best, pending = self._best.get(name), self._pending.get(name)
            if (best is None or score > best.score or now - best.at > RECENT_S) and (
                    pending is None or score > pending.score):
                self._pending[name] = _View(score, now, frame.image, detections.xyxy[row].copy())

    def _pictures(self, now: float) -> dict[str, bytes]:
        out = {}
        for name, view in list(self._pending.items()):
            if now - self._pictured.get(name, -float("inf")) < SNAPSHOT_EVERY_S:
                continue
            del self._pending[name]
            jpeg = boxed_jpeg(view.image, view.box) if view.image is not None and view.image.size else None
            if jpeg is not None:
                out[name] = jpeg
                self._pictured[name] = now
                self._best[name] = _View(view.score, view.at)  # the picture itself is not kept
        return out
