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
  at the first observation on the new side.
- The class of a track is its voted class (`Detections.track_class`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .detections import Detections
from .errors import InputError
from .frames import Frame

ANCHORS = ("bottom-center", "center")
DIRECTIONS = ("in", "out")
DEFAULT_HYSTERESIS_S = 0.5


@dataclass(frozen=True)
class Event:
    """A line crossing (`cross`, with its direction) or a zone visit starting or ending (`enter`, `exit`)."""

    frame: int
    time_s: float
    track_id: int
    class_name: str
    kind: str
    name: str
    direction: str | None = None


@dataclass(frozen=True)
class Region:
    """A counting line (2 points) or a zone (3 or more), as configured: pixels, or fractions of the frame
    when every coordinate lies in [0, 1]."""

    name: str
    points: tuple[tuple[float, float], ...]
    classes: tuple[str, ...] | None = None

    @classmethod
    def parse(cls, text: str, kind: str) -> Region:
        """`NAME=x1,y1,x2,y2[,...]` from the command line."""
        name, _, coordinates = text.partition("=")
        try:
            values = [float(v) for v in coordinates.split(",")]
        except ValueError:
            values = []
        if not name.strip() or not values or len(values) % 2:
            raise InputError(f"--{kind} takes NAME=x1,y1,x2,y2{',x3,y3,...' if kind == 'zone' else ''}, got {text!r}")
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
        needed = 2 if kind == "line" else 3
        if (len(points) != 2) if kind == "line" else (len(points) < 3):
            raise InputError(f"{kind} {spec.get('name')!r}: needs {'exactly 2' if needed == 2 else '3 or more'} "
                             f"points, got {len(points)}")
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


class LineCounter:
    """Counts tracks crossing a line segment, per direction and class; `update` returns the frame's crossings."""

    def __init__(self, name: str, start: Sequence[float], end: Sequence[float], classes: Sequence[str] | None = None,
                 anchor: str = "bottom-center") -> None:
        self.name, self.anchor = name, anchor
        self.start, self.end = np.asarray(start, np.float64), np.asarray(end, np.float64)
        self.classes = set(classes) if classes else None
        self.counts: dict[str, Counter] = {d: Counter() for d in DIRECTIONS}
        self._last: dict[int, np.ndarray] = {}  # each track's last anchor off the line
        self._counted: set[tuple[int, str]] = set()

    def side(self, point: np.ndarray) -> int:
        return int(np.sign(_cross(self.start, self.end, point)))

    def update(self, frame: Frame, detections: Detections) -> list[Event]:
        events = []
        tracked = detections[detections.is_tracked]
        for track, point, name in zip(tracked.track_id.tolist(), anchor_points(tracked, self.anchor),
                                      tracked.track_class_name):
            side = self.side(point)
            if side == 0:
                continue  # on the line: it has not crossed until it leaves on one side
            last = self._last.get(track)
            self._last[track] = point
            if last is None or self.side(last) == side or not segments_intersect(last, point, self.start, self.end):
                continue
            direction = "in" if side > 0 else "out"
            if (track, direction) in self._counted or (self.classes and name not in self.classes):
                continue
            self._counted.add((track, direction))
            self.counts[direction][name] += 1
            events.append(Event(frame.index, frame.time, track, name, "cross", self.name, direction))
        return events

    def figures(self) -> dict:
        return {direction: dict(self.counts[direction].most_common()) for direction in DIRECTIONS}


@dataclass
class _Presence:
    inside: bool = False
    since: float | None = None  # when a visit began
    candidate_since: tuple[int, float] | None = None  # (frame, time) the anchor first showed on the other side
    candidate_seen: int = 0
    last_time: float = 0.0
    last_frame: int = 0


class Zone:
    """Enter and exit events, dwell times and per-frame occupancy of a polygon."""

    def __init__(self, name: str, polygon: Sequence[Sequence[float]], classes: Sequence[str] | None = None,
                 anchor: str = "bottom-center", hysteresis_s: float = DEFAULT_HYSTERESIS_S) -> None:
        self.name, self.anchor, self.hysteresis_s = name, anchor, hysteresis_s
        self.polygon = np.asarray(polygon, np.float32)
        self.classes = set(classes) if classes else None
        self.visits: list[float] = []  # dwell time of each finished visit, seconds
        self.occupancy: Counter = Counter()  # this frame's tracks inside, by class
        self.peak_occupancy = 0
        self._tracks: dict[int, _Presence] = defaultdict(_Presence)
        self._names: dict[int, str] = {}

    def contains(self, point: np.ndarray) -> bool:
        return cv2.pointPolygonTest(self.polygon, (float(point[0]), float(point[1])), False) >= 0

    def update(self, frame: Frame, detections: Detections) -> list[Event]:
        events = []
        self.occupancy = Counter()
        tracked = detections[detections.is_tracked]
        for track, point, name in zip(tracked.track_id.tolist(), anchor_points(tracked, self.anchor),
                                      tracked.track_class_name):
            if self.classes and name not in self.classes:
                continue
            self._names[track] = name
            state = self._tracks[track]
            state.last_time, state.last_frame = frame.time, frame.index
            if self.contains(point) == state.inside:
                state.candidate_since, state.candidate_seen = None, 0
            else:
                if state.candidate_since is None:
                    state.candidate_since = (frame.index, frame.time)
                state.candidate_seen += 1
                first_frame, first_time = state.candidate_since
                if state.candidate_seen >= 2 and frame.time - first_time >= self.hysteresis_s:
                    events.append(self._flip(track, state, first_frame, first_time, name))
            if state.inside:
                self.occupancy[name] += 1
        self.peak_occupancy = max(self.peak_occupancy, sum(self.occupancy.values()))
        return events

    def _flip(self, track: int, state: _Presence, frame: int, time: float, name: str) -> Event:
        state.inside = not state.inside
        state.candidate_since, state.candidate_seen = None, 0
        if state.inside:
            state.since = time
            return Event(frame, time, track, name, "enter", self.name)
        self.visits.append(time - state.since)
        return Event(frame, time, track, name, "exit", self.name)

    def close(self) -> list[Event]:
        """Visits still open when the input ends close at their track's last observation."""
        events = []
        for track, state in self._tracks.items():
            if state.inside:
                state.inside = False
                self.visits.append(state.last_time - state.since)
                events.append(Event(state.last_frame, state.last_time, track, self._names[track], "exit", self.name))
        return events

    def figures(self) -> dict:
        dwell = np.asarray(self.visits, np.float64)
        return {"visits": len(dwell), "mean_dwell_s": round(float(dwell.mean()), 3) if len(dwell) else None,
                "max_dwell_s": round(float(dwell.max()), 3) if len(dwell) else None,
                "peak_occupancy": self.peak_occupancy}


class Heatmap:
    """Where tracked anchors were, accumulated on a coarse grid, drawn over a frame of the video."""

    def __init__(self, width: int, height: int, anchor: str = "bottom-center", cell: int = 8) -> None:
        self.anchor, self.cell = anchor, cell
        self.size = (width, height)  # of the first frames: the grid's and the background's
        self.grid = np.zeros((height // cell + 1, width // cell + 1), np.float64)
        self.background: np.ndarray | None = None
        self._scale = np.ones(2)  # from the frames now arriving to the first frames' pixels

    def resize(self, width: int, height: int) -> None:
        self._scale = np.asarray(self.size, np.float64) / [width, height]

    def update(self, frame: Frame, detections: Detections) -> None:
        if self.background is None:
            self.background = frame.image.copy()
        tracked = detections[detections.is_tracked]
        if len(tracked):
            points = (anchor_points(tracked, self.anchor) * self._scale // self.cell).astype(int)
            rows = np.clip(points[:, 1], 0, self.grid.shape[0] - 1)
            cols = np.clip(points[:, 0], 0, self.grid.shape[1] - 1)
            np.add.at(self.grid, (rows, cols), 1)

    def render(self) -> np.ndarray:
        """The heatmap over the first frame, one colour scale (observations per cell) with its legend."""
        image = self.background if self.background is not None else np.zeros((360, 640, 3), np.uint8)
        h, w = image.shape[:2]
        grid = cv2.GaussianBlur(self.grid, (0, 0), 1.5)
        peak = float(grid.max()) or 1.0
        scaled = cv2.resize((grid / peak * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
        colored = cv2.applyColorMap(scaled, cv2.COLORMAP_JET)
        alpha = (scaled.astype(np.float32) / 255 * 0.7)[..., None]
        out = (image * (1 - alpha) + colored * alpha).astype(np.uint8)
        bar = cv2.applyColorMap(np.linspace(255, 0, 120, dtype=np.uint8)[:, None].repeat(14, 1), cv2.COLORMAP_JET)
        x, y = w - 60, 20
        out[y:y + 120, x:x + 14] = bar
        for value, offset in ((peak, 0), (0, 120)):
            cv2.putText(out, f"{value:.0f}", (x + 18, y + offset + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (255, 255, 255), 1, cv2.LINE_AA)
        return out


@dataclass
class Analytics:
    """Every line and zone of a run, fed tracked frames; gathers the events for `events.parquet`."""

    lines: list[LineCounter] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    heatmap: Heatmap | None = None
    events: list[Event] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)  # as configured: the lines', then the zones'

    @classmethod
    def build(cls, lines: Sequence[Region], zones: Sequence[Region], width: int, height: int, anchor: str,
              hysteresis_s: float, heatmap: bool) -> Analytics:
        return cls(
            [LineCounter(r.name, *r.in_pixels(width, height), classes=r.classes, anchor=anchor) for r in lines],
            [Zone(r.name, r.in_pixels(width, height), r.classes, anchor, hysteresis_s) for r in zones],
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
        if self.heatmap:
            self.heatmap.resize(width, height)
        return fixed

    def __bool__(self) -> bool:
        return bool(self.lines or self.zones or self.heatmap)

    def update(self, frame: Frame, detections: Detections) -> None:
        for counter in [*self.lines, *self.zones]:
            self.events += counter.update(frame, detections)
        if self.heatmap:
            self.heatmap.update(frame, detections)

    def close(self) -> None:
        for zone in self.zones:
            self.events += zone.close()

    def occupancy(self) -> dict[str, int]:
        """This frame's tracks inside each zone (the frames table's `<zone>_n` columns)."""
        return {zone_column(zone.name): sum(zone.occupancy.values()) for zone in self.zones}

    def draw(self, canvas: np.ndarray) -> None:
        """The lines with their running in/out counts and the zones shaded with their occupancy."""
        scale = max(0.5, min(canvas.shape[:2]) / 800)
        thick = max(2, round(min(canvas.shape[:2]) / 240))
        for zone in self.zones:
            points = zone.polygon.astype(np.int32)
            shade = canvas.copy()
            cv2.fillPoly(shade, [points], (0, 200, 255))
            cv2.addWeighted(shade, 0.25, canvas, 0.75, 0, dst=canvas)
            cv2.polylines(canvas, [points], True, (0, 200, 255), thick, cv2.LINE_AA)
            _text(canvas, f"{zone.name}: {sum(zone.occupancy.values())}", points.min(axis=0), scale)
        for line in self.lines:
            a, b = line.start.astype(int), line.end.astype(int)
            cv2.line(canvas, tuple(a), tuple(b), (255, 255, 255), thick + 2, cv2.LINE_AA)
            cv2.line(canvas, tuple(a), tuple(b), (255, 0, 255), thick, cv2.LINE_AA)
            n_in, n_out = sum(line.counts["in"].values()), sum(line.counts["out"].values())
            _text(canvas, f"{line.name}: in {n_in}  out {n_out}", np.minimum(a, b), scale)

    def live_counts(self) -> dict:
        """For the live page: each line's in/out totals and each zone's occupancy."""
        return {**{line.name: {d: sum(line.counts[d].values()) for d in DIRECTIONS} for line in self.lines},
                **{zone.name: {"inside": sum(zone.occupancy.values())} for zone in self.zones}}


def _text(canvas: np.ndarray, text: str, corner: np.ndarray, scale: float) -> None:
    x, y = int(corner[0]), max(int(corner[1]) - 6, 16)
    (w, h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    x = min(max(x, 0), max(canvas.shape[1] - w - 6, 0))
    cv2.rectangle(canvas, (x, y - h - 4), (x + w + 6, y + baseline), (0, 0, 0), cv2.FILLED)
    cv2.putText(canvas, text, (x + 3, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
