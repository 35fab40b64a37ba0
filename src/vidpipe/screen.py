"""Masks and per-class filters: detections dropped before tracking, so they never become objects, events or
counts (Frigate's motion masks' object counterpart and its `filters:`).

- A **mask** is a polygon (`--mask x1,y1,x2,y2,x3,y3,...`, points as a zone's: pixels, or fractions of the
  frame when every value lies in [0, 1]). A detection whose box's bottom centre (where it stands, as zones
  count by default and as Frigate does) lies inside a mask, or on its border, is dropped.
- A **filter** per class: `min_score`, and `min_area` / `max_area` of the box, in pixels, or as a fraction of
  the frame's area when below 1 (`--filter person:min_score=0.5,min_area=2000`).

Each detection is dropped for the first reason that applies (masks first, then min_score, min_area, max_area),
and counted under it: `Screen.dropped`, the summary's `filtered`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .analytics import Region
from .detections import Detections
from .detectors import resolve_classes
from .errors import InputError

LIMITS = ("min_score", "min_area", "max_area")


@dataclass(frozen=True)
class ClassFilter:
    """What one class's detections must meet; None: no limit."""

    min_score: float | None = None
    min_area: float | None = None  # pixels, or a fraction of the frame's area when below 1
    max_area: float | None = None

    @classmethod
    def of(cls, name: str, given: object) -> ClassFilter:
        """From a preset's mapping, or the command line's `min_score=0.5,min_area=2000`; checked."""
        if isinstance(given, str):
            pairs = [item.partition("=") for item in given.split(",") if item.strip()]
            if any(not sep for _, sep, _ in pairs):
                raise InputError(f"--filter takes CLASS:key=value,... (keys: {', '.join(LIMITS)}), got {given!r}")
            given = {key.strip(): value.strip() for key, _, value in pairs}
        if not isinstance(given, dict) or not given or set(given) - set(LIMITS):
            raise InputError(f"filters: {name}: give any of {', '.join(LIMITS)}, got {given!r}")
        try:
            values = {key: float(value) for key, value in given.items()}
        except (TypeError, ValueError):
            raise InputError(f"filters: {name}: {given!r}: the limits are numbers") from None
        for key, value in values.items():
            if not np.isfinite(value) or value < 0:
                raise InputError(f"filters: {name}: {key} must be a number >= 0, got {given[key]!r}")
        if values.get("min_score", 0) > 1:
            raise InputError(f"filters: {name}: min_score is a score from 0 to 1, got {given['min_score']!r}")
        low, high = values.get("min_area"), values.get("max_area")
        if low is not None and high is not None and (low < 1) == (high < 1) and low > high:
            raise InputError(f"filters: {name}: min_area {given['min_area']!r} is above max_area "
                             f"{given['max_area']!r}")
        return cls(**values)


def parse_filters(given: object) -> dict[str, ClassFilter]:
    """A preset's `{person: {min_score: 0.5}}`, or the command line's `['person:min_score=0.5', ...]`."""
    if isinstance(given, (list, tuple)):
        mapping: dict = {}
        for item in given:
            name, sep, limits = str(item).partition(":")
            if not sep or not name.strip():
                raise InputError(f"--filter takes CLASS:key=value,... (keys: {', '.join(LIMITS)}), got {item!r}")
            mapping[name.strip()] = limits
        given = mapping
    if not isinstance(given, dict):
        raise InputError(f"filters must map class names to their limits, got {given!r}")
    return {str(name): value if isinstance(value, ClassFilter) else ClassFilter.of(str(name), value)
            for name, value in given.items()}


def parse_masks(given: object) -> list[Region]:
    """Masks from `--mask x1,y1,...` (each), or a preset's list of such strings or {name, points}; the zones'
    checks (3 or more points, a border that does not cross itself, within the frame's reach)."""
    if not isinstance(given, (list, tuple)):
        raise InputError(f"masks must be a list of polygons, got {given!r}")
    masks = []
    for number, mask in enumerate(given, 1):
        named = isinstance(mask, Region) or ("=" in mask if isinstance(mask, str) else "name" in mask)
        region = Region.parse(mask, "mask") if isinstance(mask, str) else Region.of(mask, "mask")
        masks.append(region if named else replace(region, name=f"mask {number}"))
    return masks


class Screen:
    """Drops the detections inside a mask or outside their class's limits, counting each reason."""

    def __init__(self, masks: Sequence[Region], filters: Mapping[str, ClassFilter], names: Sequence[str]) -> None:
        self.masks = list(masks)
        self.limits = {resolve_classes([name], names)[0]: (name, limits) for name, limits in filters.items()}
        self.dropped: Counter = Counter()  # "mask 1", "person min_score", ...
        self._polygons: dict[tuple[int, int], list[np.ndarray]] = {}
        self._hatches: dict[tuple[int, int], np.ndarray] = {}

    def __bool__(self) -> bool:
        return bool(self.masks or self.limits)

    def __call__(self, detections: Detections, width: int, height: int) -> Detections:
        if not len(detections):
            return detections
        keep = np.ones(len(detections), bool)
        boxes = detections.xyxy.astype(np.float64)
        feet = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]], axis=1)
        for mask, polygon in zip(self.masks, self._polygons_for(width, height)):
            inside = keep & np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0
                                      for x, y in feet])
            self._drop(keep, inside, mask.name)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        for class_id, (name, limits) in self.limits.items():
            ours = detections.class_id == class_id
            for key in LIMITS:
                value = getattr(limits, key)
                if value is None:
                    continue
                if key == "min_score":
                    below = detections.score < value
                else:
                    bound = value * width * height if value < 1 else value
                    below = area < bound if key == "min_area" else area > bound
                self._drop(keep, keep & ours & below, f"{name} {key}")  # counted under its first reason
        return detections if keep.all() else detections[keep]

    def _drop(self, keep: np.ndarray, which: np.ndarray, reason: str) -> None:
        count = int(which.sum())
        if count:
            self.dropped[reason] += count
            keep &= ~which

    def _polygons_for(self, width: int, height: int) -> list[np.ndarray]:
        """The masks in pixels of a `width` x `height` frame (fractions follow the frame's size)."""
        if (width, height) not in self._polygons:
            self._polygons[(width, height)] = [m.in_pixels(width, height).astype(np.float32) for m in self.masks]
        return self._polygons[(width, height)]

    def draw(self, canvas: np.ndarray) -> None:
        """The masks, hatched and outlined in grey (under the boxes): where detections are not taken."""
        height, width = canvas.shape[:2]
        if (width, height) not in self._hatches:  # drawn once per frame size
            step = max(8, round(min(width, height) / 40))
            lines, inside = np.zeros((height, width), np.uint8), np.zeros((height, width), np.uint8)
            for offset in range(-height, width, step):
                cv2.line(lines, (offset, height), (offset + height, 0), 255, 1)
            cv2.fillPoly(inside, [p.astype(np.int32) for p in self._polygons_for(width, height)], 255)
            self._hatches[(width, height)] = (lines > 0) & (inside > 0)
        canvas[self._hatches[(width, height)]] = (128, 128, 128)
        for polygon in self._polygons_for(width, height):
            cv2.polylines(canvas, [polygon.astype(np.int32)], True, (160, 160, 160), 2, cv2.LINE_AA)

    def figures(self) -> dict:
        """For the summary: the masks and filters as given, and how many detections each reason dropped."""
        return {"masks": [{"name": m.name, "points": [list(p) for p in m.points]} for m in self.masks],
                "filters": {name: {k: v for k, v in vars(limits).items() if v is not None}
                            for name, limits in self.limits.values()},
                "dropped": dict(self.dropped)}
