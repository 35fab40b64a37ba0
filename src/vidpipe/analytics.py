"""Counting lines, zones with occupancy and dwell time, and heatmaps, from tracked detections.

Every counter works on tracks, not on single frames:
- A **line** counts a track when the path of its anchor point between two consecutive observations crosses
  the line *segment* (its end points included), so a crossing between detector frames (`--stride`, a
  dropped frame) is still found. The direction is the side the anchor ends on: `in` where
  cross(end - start, anchor - start) > 0, which for a line drawn left to right in the picture means moving
  down across it; `out` the other way. A track counts at most once per direction per line, so a track lost
  and found again under the same id, or jittering on the line, never counts twice.
- A **zone** (a polygon) records enter and exit events per track with dwell times from the frames'
  timestamps (right for fractional and variable frame rates), and its occupancy per class in every frame. A
  change of side counts only once the anchor has stayed on the new side for `hysteresis_s` (0.5 s by
  default, at least two observations), so flicker at the border makes no extra visits; the event is dated
  at the first observation on the new side. A track lost inside exits, dated at its last observation, once
  the tracker has dropped it (`drop`), or when the input ends.
- The class of a track is its voted class (`Detections.track_class`), held from its first event on: once a
  line or zone has reported a track, all its later events, counts, visits and occupancy name that class, so
  an automation pairing a track's entry with its exit sees one class, even where the vote moves on later.
- Only objects count: a track's rows count from the frame its track is confirmed (`tracking.confirm`) on, and
  a track never confirmed crosses no line and visits no zone.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import cv2
import numpy as np

from .detections import Detections
from .errors import InputError
from .frames import Frame

ANCHORS = ("bottom-center", "center")
DIRECTIONS = ("in", "out")
DEFAULT_HYSTERESIS_S = 0.5
DEFAULT_LINE_MARGIN = 0.5  # a crossing is sure once the anchor is this many box heights past the line
# A point given in pixels lies within this of the frame's origin: 6x the widest picture FFmpeg's H.264 decoder
# takes (16384), and far below where the geometry's squares overflow a float (1e154).
MAX_PIXELS = 100_000

log = logging.getLogger("vidpipe")


@dataclass(frozen=True)
class Event:
    """A line crossing (`cross`, with its direction) or a zone visit starting or ending (`enter`, `exit`),
    with the score and box of the observation it is dated at."""

    frame: int
    time_s: float
    track_id: int
    class_name: str
    kind: str
    name: str
    direction: str | None = None
    score: float | None = None
    box: tuple[float, float, float, float] | None = None


class Sighting(NamedTuple):
    """One observation of a track: when, how sure, where."""

    frame: int
    time: float
    score: float
    box: tuple[float, float, float, float]


def sighting(frame: Frame, detections: Detections, row: int) -> Sighting:
    """Row `row` of `detections`, seen in `frame`."""
    return Sighting(frame.index, frame.time, float(detections.score[row]), tuple(detections.xyxy[row].tolist()))


@dataclass(frozen=True)
class Region:
    """A counting line (2 points) or a zone (3 or more), as configured: pixels, or fractions of the frame
    when every coordinate lies in [0, 1]."""

    name: str
    points: tuple[tuple[float, float], ...]
    classes: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str, kind: str) -> Region:
        """`NAME=x1,y1,x2,y2[,...]` from the command line (a mask's name is optional: `mask`)."""
        name, _, coordinates = text.partition("=") if kind != "mask" or "=" in text else ("mask", "=", text)
        try:
            values = [float(v) for v in coordinates.split(",")]
        except ValueError:
            values = []
        if not name.strip() or not values or len(values) % 2:
            form = "x1,y1,x2,y2,x3,y3,... (or NAME=x1,...)" if kind == "mask" else \
                f"NAME=x1,y1,x2,y2{',x3,y3,...' if kind == 'zone' else ''}"
            raise InputError(f"--{kind} takes {form}, got {text!r}")
        return cls.of({"name": name.strip(), "points": list(zip(values[::2], values[1::2]))}, kind)

    @classmethod
    def of(cls, spec: dict | Region, kind: str) -> Region:
        """A checked region from a preset's mapping (`name`, `points`, optional `classes`)."""
        if isinstance(spec, Region):
            return spec
        if not isinstance(spec, dict) or set(spec) - {"name", "points", "classes"} or "points" not in spec:
            raise InputError(f"a {kind} is a mapping with name, points and optionally classes, got {spec!r}")
        try:
            points = tuple((float(x), float(y)) for x, y in spec["points"])
        except (TypeError, ValueError):
            raise InputError(f"{kind} {spec.get('name')!r}: points must be [x, y] pairs") from None
        if not np.isfinite(points).all():
            raise InputError(f"{kind} {spec.get('name')!r}: points must be finite numbers, got {spec['points']!r}")
        if (np.abs(points) > MAX_PIXELS).any():
            raise InputError(f"{kind} {spec.get('name')!r}: points must be fractions of the frame (0 to 1) or pixels "
                             f"within {MAX_PIXELS:,} of its corner, got {spec['points']!r}")
        needed = 2 if kind == "line" else 3
        if (len(points) != 2) if kind == "line" else (len(points) < 3):
            raise InputError(f"{kind} {spec.get('name')!r}: needs {'exactly 2' if needed == 2 else '3 or more'} "
                             f"points, got {len(points)}")
        problem = _degenerate(np.asarray(points, np.float64), kind)
        if problem:
            raise InputError(f"{kind} {spec.get('name')!r}: {problem} ({spec['points']!r})")
        classes = spec.get("classes")
        if isinstance(classes, str):
            classes = [c.strip() for c in classes.split(",") if c.strip()]
        return cls(str(spec.get("name") or kind), points, tuple(classes) if classes else None)

    @property
    def fractional(self) -> bool:
        """Given as fractions of the frame (every value in [0, 1]): it follows the frame's size."""
        points = np.asarray(self.points, np.float64)
        return bool((points >= 0).all() and (points <= 1).all())

    def in_pixels(self, width: int, height: int) -> np.ndarray:
        """The points in pixels of a `width` x `height` frame (fractions when every value lies in [0, 1])."""
        points = np.asarray(self.points, np.float64)
        return points * [width, height] if self.fractional else points


def _degenerate(points: np.ndarray, kind: str) -> str | None:
    """Why a line or zone cannot count anything, if it cannot: a zero-length line, a zone of zero area or one
    whose border crosses itself (inside and outside would be ambiguous)."""
    if kind == "line":
        return "its two points are the same: a line needs length" if (points[0] == points[1]).all() else None
    n = len(points)
    for i in range(n):
        for j in range(i + 2, n):
            if (j + 1) % n == i:
                continue  # neighbouring edges share a corner
            if segments_intersect(points[i], points[(i + 1) % n], points[j], points[(j + 1) % n]):
                return f"its border crosses itself (edges {i + 1} and {j + 1}): list the corners in order round it"
    x, y = points[:, 0], points[:, 1]
    if abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) < 1e-12:
        return "it has no area: its points lie on one line"
    return None


def _outside_frame(points: np.ndarray, width: int, height: int) -> bool:
    """Whether a line (2 points) or a zone's polygon misses the `width` x `height` picture altogether: no point
    inside it, no edge across its border, and (for a zone) no corner of the picture inside the zone."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float64)
    if ((points >= 0) & (points <= [width, height])).all(axis=1).any():
        return False
    edges = list(zip(points, np.roll(points, -1, axis=0)))[: 1 if len(points) == 2 else None]
    if any(segments_intersect(a, b, c, d) for a, b in edges for c, d in zip(corners, np.roll(corners, -1, axis=0))):
        return False
    if len(points) > 2:
        polygon = points.astype(np.float32)
        return all(cv2.pointPolygonTest(polygon, (float(x), float(y)), False) < 0 for x, y in corners)
    return True


def check_names(lines: Sequence[Region], zones: Sequence[Region]) -> None:
    """Lines and zones are named in events, tables and the report: two with one name would mix their counts."""
    seen: dict[str, str] = {}
    for kind, regions in (("line", lines), ("zone", zones)):
        for region in regions:
            if region.name in seen:
                other = seen[region.name]
                raise InputError(f"two {kind}s are named {region.name!r}: give each its own name" if other == kind
                                 else f"a line and a zone are both named {region.name!r}: give each its own name")
            seen[region.name] = kind


def zone_column(name: str) -> str:
    """The frames table's occupancy column of zone `name`."""
    return f"{name}_n"


def anchor_points(detections: Detections, anchor: str) -> np.ndarray:
    """Where each box counts: the middle of its bottom edge (where an object stands) or its centre."""
    x = (detections.xyxy[:, 0] + detections.xyxy[:, 2]) / 2
    y = detections.xyxy[:, 3] if anchor == "bottom-center" else (detections.xyxy[:, 1] + detections.xyxy[:, 3]) / 2
    return np.stack([x, y], axis=1).astype(np.float64)


def _cross(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def _on_segment(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> bool:
    """r lies within the bounding box of segment pq (used once r is known to be collinear)."""
    return min(p[0], q[0]) <= r[0] <= max(p[0], q[0]) and min(p[1], q[1]) <= r[1] <= max(p[1], q[1])


def segments_intersect(p1: np.ndarray, p2: np.ndarray, q1: np.ndarray, q2: np.ndarray) -> bool:
    """Whether segment p1p2 meets segment q1q2, end points included."""
    d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
    d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
    if ((d1 > 0) != (d2 > 0) and d1 != 0 and d2 != 0) and ((d3 > 0) != (d4 > 0) and d3 != 0 and d4 != 0):
        return True
    return any(d == 0 and _on_segment(a, b, c) for d, a, b, c in
               ((d1, q1, q2, p1), (d2, q1, q2, p2), (d3, p1, p2, q1), (d4, p1, p2, q2)))


@dataclass
class _Side:
    """A track's confirmed side of a line and a crossing waiting for its confirmation."""

    side: int  # +1 or -1: where the anchor was last confirmed
    last: np.ndarray  # its last anchor off the line
    seen: float  # when it was last observed
    name: str  # its voted class then
    pending: tuple[Sighting, int] | None = None  # its first sighting on the other side, and how many since


class LineCounter:
    """Counts tracks crossing a line segment, per direction and class; `update` returns the crossings it
    confirmed on this frame.

    A crossing is found on the anchor's path between two observations, so one between detector frames
    counts. It is confirmed once the anchor has stayed on the new side for `hysteresis_s` (and at least two
    observations), has gone past the line by `margin` times its box's height, or was last seen on the new side
    and has not been seen for `hysteresis_s` (lost, or out of the picture); it is dated at the first
    observation on the new side. A track that comes back before that was hovering on the line and counts
    nothing. `hysteresis_s=0` counts at once. A track counts at most once per direction: objects that crossed,
    not passes.
    """

    def __init__(self, name: str, start: Sequence[float], end: Sequence[float], classes: Sequence[str] | None = None,
                 anchor: str = "bottom-center", hysteresis_s: float = DEFAULT_HYSTERESIS_S,
                 margin: float = DEFAULT_LINE_MARGIN) -> None:
        self.name, self.anchor, self.hysteresis_s, self.margin = name, anchor, hysteresis_s, margin
        self.start, self.end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        self.classes = set(classes) if classes else None
        self.counts: dict[str, Counter] = {d: Counter() for d in DIRECTIONS}
        self._tracks: dict[int, _Side] = {}
        self._pending: set[int] = set()
        self._counted: set[tuple[int, str]] = set()

    def side(self, point: np.ndarray) -> int:
        return int(np.sign(_cross(self.start, self.end, point)))

    def distance(self, point: np.ndarray) -> float:
        """How far `point` lies from the line through the segment, in pixels."""
        return abs(_cross(self.start, self.end, point)) / (float(np.hypot(*(self.end - self.start))) or 1.0)

    def update(self, frame: Frame, detections: Detections) -> list[Event]:
        events = []
        tracked = detections[detections.is_tracked]
        heights = tracked.xyxy[:, 3] - tracked.xyxy[:, 1]
        for row, (track, point, name, height) in enumerate(zip(tracked.track_id.tolist(),
                                                               anchor_points(tracked, self.anchor),
                                                               tracked.track_class_name, heights.tolist())):
            side = self.side(point)
            state = self._tracks.get(track)
            if state is not None:
                state.seen, state.name = frame.time, name
            if side == 0:
                continue  # on the line: it has not crossed until it leaves on one side
            if state is None:
                self._tracks[track] = _Side(side, point, frame.time, name)
                continue
            last, state.last = state.last, point
            if side == state.side:
                state.pending = None  # back before it was confirmed: hovering on the line
                self._pending.discard(track)
                continue
            if state.pending is None:
                if not segments_intersect(last, point, self.start, self.end):
                    state.side = side  # went round an end of the segment: no crossing
                    continue
                state.pending = (sighting(frame, tracked, row), 0)
                self._pending.add(track)
            first, seen = state.pending
            state.pending = (first, seen + 1)
            held = seen + 1 >= 2 and frame.time - first.time >= self.hysteresis_s
            if held or self.hysteresis_s == 0 or self.distance(point) >= self.margin * height:
                events += self._confirm(track, state)
        for track in [t for t in self._pending if frame.time - self._tracks[t].seen >= self.hysteresis_s]:
            events += self._confirm(track, self._tracks[track])  # gone while on the new side
        return events

    def close(self) -> list[Event]:
        """The input ended: crossings still waiting stand (the anchor was last seen on the new side)."""
        return [event for track in list(self._pending) for event in self._confirm(track, self._tracks[track])]

    def _confirm(self, track: int, state: _Side) -> list[Event]:
        first, _ = state.pending
        state.side, state.pending = -state.side, None
        self._pending.discard(track)
        direction = "in" if state.side > 0 else "out"
        if (track, direction) in self._counted or (self.classes and state.name not in self.classes):
            return []
        self._counted.add((track, direction))
        self.counts[direction][state.name] += 1
        return [Event(first.frame, first.time, track, state.name, "cross", self.name, direction, first.score,
                      first.box)]

    def figures(self) -> dict:
        return {direction: dict(self.counts[direction].most_common()) for direction in DIRECTIONS}


@dataclass(frozen=True)
class Visit:
    """One track's stay in a zone. `cut_at_start`: it was already inside when first seen, at the start of the
    input or when its track began away from the picture's edge, so its entry was not seen; `cut_at_end`: it
    was still inside when last seen, at the end of the input or when its track was lost away from the edge,
    so its exit was not seen. (A zone lies in the picture: an object that comes in or goes out across the
    picture's edge enters or leaves it there.) Only complete visits, neither, give dwell times."""

    track_id: int
    class_name: str
    zone: str
    enter_frame: int
    enter_time_s: float
    exit_frame: int
    exit_time_s: float
    cut_at_start: bool
    cut_at_end: bool

    @property
    def dwell_s(self) -> float:
        return self.exit_time_s - self.enter_time_s

    @property
    def complete(self) -> bool:
        return not (self.cut_at_start or self.cut_at_end)


@dataclass
class _Presence:
    first_frame: int  # when the zone first saw the track
    born_at_edge: bool  # its box then touched the picture's edge: it came into the picture
    inside: bool = False
    at_edge: bool = False  # its box touched the picture's edge when last seen
    entered: tuple[int, float] | None = None  # (frame, time) the visit began
    candidate_since: Sighting | None = None  # when the anchor first showed on the other side
    candidate_seen: int = 0
    last: Sighting | None = None


class Zone:
    """Enter and exit events, visits with their dwell times, and per-frame occupancy of a polygon."""

    def __init__(self, name: str, polygon: Sequence[Sequence[float]], classes: Sequence[str] | None = None,
                 anchor: str = "bottom-center", hysteresis_s: float = DEFAULT_HYSTERESIS_S,
                 frame_size: tuple[int, int] | None = None) -> None:
        self.name, self.anchor, self.hysteresis_s = name, anchor, hysteresis_s
        self.polygon = np.asarray(polygon, np.float32)
        self.frame_size = frame_size  # (width, height): boxes at its edge come into or leave the picture
        self._first_frame: int | None = None  # the input's first and latest frames
        self._latest_frame = 0
        self.classes = set(classes) if classes else None
        self.visits: list[Visit] = []  # finished visits, in the order they ended
        self.occupancy: Counter = Counter()  # this frame's tracks inside, by class
        self.peak_occupancy = 0
        self.entries = 0  # visits begun so far
        self.inside: set[int] = set()  # the tracks inside now, as the enter and exit events have it
        self._tracks: dict[int, _Presence] = {}
        self._names: dict[int, str] = {}

    def contains(self, point: np.ndarray) -> bool:
        return cv2.pointPolygonTest(self.polygon, (float(point[0]), float(point[1])), False) >= 0

    def update(self, frame: Frame, detections: Detections) -> list[Event]:
        events = []
        self.occupancy = Counter()
        self._first_frame = frame.index if self._first_frame is None else self._first_frame
        self._latest_frame = frame.index
        tracked = detections[detections.is_tracked]
        for row, (track, point, name, edge) in enumerate(zip(tracked.track_id.tolist(),
                                                             anchor_points(tracked, self.anchor),
                                                             tracked.track_class_name, self._at_edge(tracked.xyxy))):
            if self.classes and name not in self.classes:
                continue
            self._names[track] = name
            state = self._tracks.setdefault(track, _Presence(frame.index, edge and frame.index != self._first_frame))
            state.last, state.at_edge = sighting(frame, tracked, row), edge
            if self.contains(point) == state.inside:
                state.candidate_since, state.candidate_seen = None, 0
            else:
                if state.candidate_since is None:
                    state.candidate_since = state.last
                state.candidate_seen += 1
                if state.candidate_seen >= 2 and frame.time - state.candidate_since.time >= self.hysteresis_s:
                    events.append(self._flip(track, state, state.candidate_since, name))
            if state.inside:
                self.occupancy[name] += 1
        self.peak_occupancy = max(self.peak_occupancy, sum(self.occupancy.values()))
        return events

    def _flip(self, track: int, state: _Presence, at: Sighting, name: str) -> Event:
        state.inside = not state.inside
        state.candidate_since, state.candidate_seen = None, 0
        kind = "enter" if state.inside else "exit"
        if state.inside:
            state.entered = (at.frame, at.time)
            self.entries += 1
            self.inside.add(track)
        else:
            self.inside.discard(track)
            self._finish(track, state, at.frame, at.time, cut=False)
        return Event(at.frame, at.time, track, name, kind, self.name, None, at.score, at.box)

    def _at_edge(self, xyxy: np.ndarray) -> np.ndarray:
        """Which boxes touch the picture's edge (within 1% of its size)."""
        if self.frame_size is None:
            return np.zeros(len(xyxy), bool)
        width, height = self.frame_size
        mx, my = max(2.0, 0.01 * width), max(2.0, 0.01 * height)
        return ((xyxy[:, 0] <= mx) | (xyxy[:, 1] <= my) | (xyxy[:, 2] >= width - mx) | (xyxy[:, 3] >= height - my))

    def _finish(self, track: int, state: _Presence, frame: int, time: float, cut: bool) -> None:
        enter_frame, enter_time = state.entered
        cut_at_start = enter_frame == state.first_frame and not state.born_at_edge
        self.visits.append(Visit(track, self._names[track], self.name, enter_frame, enter_time, frame, time,
                                 cut_at_start, cut))

    def close(self) -> list[Event]:
        """Visits still open when the input ends close at their track's last observation: cut, unless the
        track was lost at the picture's edge before the input's end (it left the picture)."""
        return [self._lost(track, state) for track, state in self._tracks.items() if state.inside]

    def drop(self, track: int) -> list[Event]:
        """The tracker has dropped `track` (its id cannot come back): a visit it left open closes now, as at
        the input's end, rather than when the input ends (never, on an endless stream), and the zone forgets it."""
        state = self._tracks.pop(track, None)
        events = [self._lost(track, state)] if state is not None and state.inside else []
        self._names.pop(track, None)
        return events

    def _lost(self, track: int, state: _Presence) -> Event:
        """The exit of a track last seen inside, at its last observation."""
        state.inside = False
        self.inside.discard(track)
        last = state.last
        left = state.at_edge and last.frame < self._latest_frame
        self._finish(track, state, last.frame, last.time, cut=not left)
        return Event(last.frame, last.time, track, self._names[track], "exit", self.name, None, last.score, last.box)

    def figures(self) -> dict:
        """Visits, and dwell times over the complete ones only: a cut visit's length is not its dwell."""
        return visit_figures(self.visits) | {"peak_occupancy": self.peak_occupancy}


def visit_figures(visits: Sequence[Visit]) -> dict:
    """Visits, complete and cut, and the mean, median and max dwell of the complete ones (None without)."""
    dwell = np.asarray([v.dwell_s for v in visits if v.complete], np.float64)
    mean, median, peak = (round(float(f(dwell)), 3) if len(dwell) else None for f in (np.mean, np.median, np.max))
    return {"visits": len(visits), "complete_visits": len(dwell), "cut_visits": len(visits) - len(dwell),
            "mean_dwell_s": mean, "median_dwell_s": median, "max_dwell_s": peak}


class Heatmap:
    """Where tracked anchors were, accumulated on a coarse grid, drawn over a frame of the video, in seconds
    of presence per cell (observations times the mean interval between processed frames)."""

    def __init__(self, width: int, height: int, anchor: str = "bottom-center", cell: int = 8) -> None:
        self.anchor, self.cell = anchor, cell
        self.size = (width, height)  # of the first frames: the grid's and the background's
        self.grid = np.zeros((height // cell + 1, width // cell + 1), np.float64)
        self.background: np.ndarray | None = None
        self._scale = np.ones(2)  # from the frames now arriving to the first frames' pixels
        self._times: list[float] = []  # the first and the latest frame's time
        self._frames = 0

    def resize(self, width: int, height: int) -> None:
        self._scale = np.asarray(self.size, np.float64) / [width, height]

    def update(self, frame: Frame, detections: Detections) -> None:
        if self.background is None:
            self.background = frame.image.copy()
        self._times = [self._times[0] if self._times else frame.time, frame.time]
        self._frames += 1
        tracked = detections[detections.is_tracked]
        if len(tracked):
            points = (anchor_points(tracked, self.anchor) * self._scale // self.cell).astype(int)
            rows = np.clip(points[:, 1], 0, self.grid.shape[0] - 1)
            cols = np.clip(points[:, 0], 0, self.grid.shape[1] - 1)
            np.add.at(self.grid, (rows, cols), 1)

    @property
    def interval_s(self) -> float:
        """The mean time between processed frames: what one observation stands for."""
        return (self._times[1] - self._times[0]) / (self._frames - 1) if self._frames > 1 else 0.0

    def render(self) -> np.ndarray:
        """The heatmap over the first frame, with its colour scale (seconds per cell) in a strip to its right."""
        image = self.background if self.background is not None else np.zeros((360, 640, 3), np.uint8)
        h, w = image.shape[:2]
        seconds = cv2.GaussianBlur(self.grid, (0, 0), 1.5) * (self.interval_s or 1.0)
        peak = float(seconds.max()) or 1.0
        scaled = cv2.resize((seconds / peak * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        colored = cv2.applyColorMap(scaled, cv2.COLORMAP_JET)
        alpha = (scaled.astype(np.float32) / 255 * 0.7)[..., None]
        out = (image * (1 - alpha) + colored * alpha).astype(np.uint8)
        return np.hstack([out, self._legend(h, w, peak)])

    def _legend(self, h: int, w: int, peak: float) -> np.ndarray:
        """A dark strip as tall as the scene, beside it so it covers none of it: a colour bar, its ends and
        middle labelled, and its unit (on two lines, to keep the strip narrow)."""
        scale = max(0.45, min(h, w) / 900)
        thick = max(1, round(scale * 1.5))
        unit = ["seconds per", f"{self.cell}px cell"]
        unit_w, text_h = np.max([cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0] for t in unit], 0)
        pad = max(6, round(8 * scale))
        room = h - 5 * pad - 3 * text_h  # what the strip has left for the bar once its unit is written under it
        bar_h, bar_w = max(1, min(max(80, h // 3), room)), max(12, w // 60)
        labels = [(peak, 0), (peak / 2, bar_h // 2), (0.0, bar_h)]
        label_w = max(cv2.getTextSize(f"{v:.1f}", cv2.FONT_HERSHEY_SIMPLEX, scale, thick)[0][0] for v, _ in labels)
        strip = np.full((h, max(bar_w + pad + label_w, unit_w) + 2 * pad, 3), 32, np.uint8)
        strip[pad:pad + bar_h, pad:pad + bar_w] = cv2.applyColorMap(
            np.linspace(255, 0, bar_h, dtype=np.uint8)[:, None].repeat(bar_w, 1), cv2.COLORMAP_JET)
        for value, offset in labels:
            cv2.putText(strip, f"{value:.1f}", (2 * pad + bar_w, pad + offset + text_h // 2),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        for row, text in enumerate(unit):
            cv2.putText(strip, text, (pad, bar_h + 3 * pad + 2 * text_h + row * (text_h + pad)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
        return strip


@dataclass
class Analytics:
    """Every line and zone of a run, fed tracked frames; gathers the events for `events.parquet`."""

    lines: list[LineCounter] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    heatmap: Heatmap | None = None
    events: list[Event] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)  # as configured: the lines', then the zones'
    scene: np.ndarray | None = None  # the latest frame (not a copy), to show the lines and zones on
    held: dict[int, int] = field(default_factory=dict)  # track -> the class id its first event named

    @classmethod
    def build(cls, lines: Sequence[Region], zones: Sequence[Region], width: int, height: int, anchor: str,
              zone_hysteresis_s: float, line_hysteresis_s: float, heatmap: bool) -> Analytics:
        for kind, regions in (("line", lines), ("zone", zones)):
            for region in regions:
                if _outside_frame(region.in_pixels(width, height), width, height):
                    log.warning("%s %r lies wholly outside the %dx%d frame: it will count nothing", kind,
                                region.name, width, height)
        return cls(
            [LineCounter(r.name, *r.in_pixels(width, height), r.classes, anchor, line_hysteresis_s) for r in lines],
            [Zone(r.name, r.in_pixels(width, height), r.classes, anchor, zone_hysteresis_s, (width, height))
             for r in zones],
            Heatmap(width, height, anchor) if heatmap else None,
            regions=[*lines, *zones],
        )

    def resize(self, width: int, height: int) -> list[str]:
        """Follow a change of the frame size: lines and zones given as fractions are placed anew, the heatmap
        maps the new frames onto its grid; returns the names of those given in pixels, which stay put."""
        fixed = []
        for counter, region in zip([*self.lines, *self.zones], self.regions):
            if not region.fractional:
                fixed.append(region.name)
            elif isinstance(counter, LineCounter):
                counter.start, counter.end = region.in_pixels(width, height)
            else:
                counter.polygon = region.in_pixels(width, height).astype(np.float32)
        for zone in self.zones:
            zone.frame_size = (width, height)
        if self.heatmap:
            self.heatmap.resize(width, height)
        return fixed

    def __bool__(self) -> bool:
        return bool(self.lines or self.zones or self.heatmap)

    def update(self, frame: Frame, detections: Detections) -> None:
        """One frame's objects: rows of tracks not yet confirmed count nowhere (`Detections.is_object`)."""
        detections = detections[detections.is_object]
        if self.lines or self.zones:
            self.scene = frame.image
            detections = self._with_held_classes(detections)
        for counter in [*self.lines, *self.zones]:
            events = counter.update(frame, detections)
            for event in events:
                self.held.setdefault(event.track_id, list(detections.names).index(event.class_name))
            self.events += events
        if self.heatmap:
            self.heatmap.update(frame, detections)

    def close(self) -> None:
        for counter in [*self.lines, *self.zones]:
            self.events += counter.close()

    def merge_linked(self, links: Mapping[int, int]) -> None:
        """The offline linking found tracks of one object (`links`: {track: linked id}): a crossing of a line by
        one of its tracks in the direction its previous counted crossing of that line took, by another of its
        tracks, with no crossing back between, is one crossing counted twice (an object cannot cross a line the
        same way twice without crossing back): it is dropped, from the events and the line's counts. Zone
        events and visits stay per track."""
        if not links:
            return
        last: dict[tuple[str, int], Event] = {}  # (line, object) -> its latest counted crossing
        kept = []
        for event in sorted(self.events, key=lambda e: (e.frame, e.time_s)):
            key = (event.name, links.get(event.track_id, event.track_id))
            before = last.get(key) if event.kind == "cross" else None
            if before and before.direction == event.direction and before.track_id != event.track_id:
                line = next(line for line in self.lines if line.name == event.name)
                line.counts[event.direction] -= Counter({event.class_name: 1})  # a class at 0 is no longer listed
                continue
            if event.kind == "cross":
                last[key] = event
            kept.append(event)
        self.events = kept

    def drop(self, tracks: Sequence[int]) -> None:
        """Tracks the tracker has dropped: the zones close the visits they left open (`Zone.drop`)."""
        for zone in self.zones:
            for track in tracks:
                self.events += zone.drop(track)

    def _with_held_classes(self, detections: Detections) -> Detections:
        """The rows of tracks already reported carry the class their first event named, not today's vote."""
        rows = [i for i, track in enumerate(detections.track_id.tolist()) if track in self.held]
        if not rows:
            return detections
        classes = detections.track_class.copy()
        classes[rows] = [self.held[int(detections.track_id[i])] for i in rows]
        return replace(detections, track_class=classes)

    def describe(self) -> list[dict]:
        """Each line and zone as configured (points in pixels, or fractions of the frame), for the summary."""
        kinds = ["line"] * len(self.lines) + ["zone"] * len(self.zones)
        return [{"kind": kind, "name": r.name, "points": [list(p) for p in r.points],
                 "classes": list(r.classes) if r.classes else None} for kind, r in zip(kinds, self.regions)]

    def picture(self) -> np.ndarray | None:
        """The latest frame with the lines and zones drawn on it, named, with their final figures."""
        if self.scene is None:
            return None
        canvas = self.scene.copy()
        self.draw(canvas)
        self.draw_names(canvas)
        return canvas

    def visits(self) -> list[Visit]:
        """Every zone's finished visits (all of them once `close` has run)."""
        return [visit for zone in self.zones for visit in zone.visits]

    def zones_of(self) -> dict[int, tuple[str, ...]]:
        """The zones each track is inside now, in the order they were given (tracks in none left out)."""
        inside: dict[int, tuple[str, ...]] = {}
        for zone in self.zones:
            for track in zone.inside:
                inside[track] = (*inside.get(track, ()), zone.name)
        return inside

    def occupancy(self) -> dict[str, int]:
        """This frame's tracks inside each zone (the frames table's `<zone>_n` columns)."""
        return {zone_column(zone.name): sum(zone.occupancy.values()) for zone in self.zones}

    def draw(self, canvas: np.ndarray) -> None:
        """The lines, and the zones shaded (under the boxes)."""
        thick = max(2, round(min(canvas.shape[:2]) / 240))
        for zone in self.zones:
            points = zone.polygon.astype(np.int32)
            shade = canvas.copy()
            cv2.fillPoly(shade, [points], (0, 200, 255))
            cv2.addWeighted(shade, 0.25, canvas, 0.75, 0, dst=canvas)
            cv2.polylines(canvas, [points], True, (0, 200, 255), thick, cv2.LINE_AA)
        for line in self.lines:
            a, b = line.start.astype(int), line.end.astype(int)
            cv2.line(canvas, tuple(a), tuple(b), (255, 255, 255), thick + 2, cv2.LINE_AA)
            cv2.line(canvas, tuple(a), tuple(b), (255, 0, 255), thick, cv2.LINE_AA)

    def draw_names(self, canvas: np.ndarray) -> None:
        """Each zone's name and occupancy, each line's name and running counts (over the boxes and labels,
        so a name is never covered, and never cut: the text shrinks to fit the frame)."""
        scale = max(0.5, min(canvas.shape[:2]) / 800)
        for zone in self.zones:
            at = _pole(zone.polygon.tobytes(), *canvas.shape[:2])
            _text(canvas, f"{zone.name}: {sum(zone.occupancy.values())}", at, scale, centered=True)
        for line in self.lines:
            n_in, n_out = sum(line.counts["in"].values()), sum(line.counts["out"].values())
            _text(canvas, f"{line.name}: in {n_in}  out {n_out}", np.minimum(line.start, line.end), scale)

    def live_counts(self) -> dict:
        """For the live page: each line's in/out totals so far, each zone's occupancy now and visits so far."""
        return {"lines": {line.name: {d: sum(line.counts[d].values()) for d in DIRECTIONS} for line in self.lines},
                "zones": {zone.name: {"inside": sum(zone.occupancy.values()),
                                      "entries": zone.entries}
                          for zone in self.zones}}


@functools.lru_cache(maxsize=64)
def _pole(polygon: bytes, height: int, width: int) -> np.ndarray:
    """The point of a zone's visible part farthest from its border and the frame's edges (its pole of
    inaccessibility, to the pixel): where its name sits inside it, even in a triangle or a concave zone,
    whose bounding box's corner or centroid can lie outside. Cached: zones move only when the frame resizes."""
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [np.round(np.frombuffer(polygon, np.float32).reshape(-1, 2)).astype(np.int32)], 255)
    mask[[0, -1], :] = mask[:, [0, -1]] = 0
    y, x = np.unravel_index(np.argmax(cv2.distanceTransform(mask, cv2.DIST_L2, 5)), mask.shape)
    return np.array([x, y])


def _text(canvas: np.ndarray, text: str, at: np.ndarray, scale: float, centered: bool = False) -> None:
    """White text on black, centred on `at` or just above it, kept whole inside the frame."""
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if w + 6 > canvas.shape[1]:
        scale *= (canvas.shape[1] - 6) / (w + 6)
        (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if centered:
        x, y = int(at[0]) - (w + 6) // 2, max(int(at[1]) + (h + 4 - baseline) // 2, h + 4)
    else:
        x, y = int(at[0]), max(int(at[1]) - 6, h + 4)
    x, y = min(max(x, 0), max(canvas.shape[1] - w - 6, 0)), min(y, canvas.shape[0] - baseline - 1)
    cv2.rectangle(canvas, (x, y - h - 4), (x + w + 6, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x + 3, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
