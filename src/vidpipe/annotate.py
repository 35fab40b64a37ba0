"""Drawing detections on frames: boxes, `person #12 0.87` labels and optional motion trails.

A label names the track's voted class (which does not flicker from frame to frame), its id and the frame's
score, or any subset of the three. Colours stay with a track id for the whole video (or follow the class);
labels sit on a filled patch of the box colour with black or white text, whichever contrasts, so they read
on any background; a label that would cover another moves inside or below its box. In a crowd, a label
that would still cover another label, or more than a label's worth of other boxes, is drawn smaller, and
else left out (the box stays), as is one on a box much smaller than the label: the most confident objects
keep theirs. Line widths and text size follow the frame size (text stays readable at 640 px). Only
OpenCV's built-in Hershey font is used, so nothing is ever downloaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from .analytics import anchor_points
from .detections import Detections

# 20 well-separated colours (BGR), after Tableau's palette.
PALETTE = np.array(
    [
        (180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
        (75, 86, 140), (194, 119, 227), (127, 127, 127), (34, 189, 188), (207, 190, 23),
        (232, 199, 174), (120, 187, 255), (138, 223, 152), (150, 152, 255), (213, 176, 197),
        (148, 156, 196), (210, 182, 247), (199, 199, 199), (141, 219, 219), (229, 218, 158),
    ],
    dtype=np.uint8,
)
FONT = cv2.FONT_HERSHEY_SIMPLEX
LABEL_PARTS = ("class", "id", "score")  # in the order they are written: `car #3 0.87`
COLOR_BY = ("track", "class")


def color_for(track_id: int, class_id: int, by: str = "track") -> tuple[int, int, int]:
    """Stable colour: by track id when tracked (unless `by` is class), else by class."""
    key = track_id if track_id > 0 and by == "track" else class_id
    return tuple(int(c) for c in PALETTE[key % len(PALETTE)])


class Annotator:
    """Draws one frame's detections; keeps the recent anchor points of each track when trails are on (the
    point lines and zones count, so a trail shows what they saw)."""

    def __init__(self, trails: bool = False, trail_length: int = 30,
                 overlay: Callable[[], Sequence[str]] | None = None, labels: Sequence[str] = LABEL_PARTS,
                 color_by: str = "track", underlay: Callable[[np.ndarray], None] | None = None,
                 topmost: Callable[[np.ndarray], None] | None = None, anchor: str = "bottom-center") -> None:
        self.trails = trails
        self.trail_length = trail_length
        self.overlay = overlay  # lines of status text (fps, latency...) for the top-left corner
        self.labels = [part for part in LABEL_PARTS if part in labels]
        self.underlay = underlay  # draws under the boxes (counting lines and zones)
        self.topmost = topmost  # draws over the labels (the lines' and zones' names, whole)
        self.anchor = anchor
        self.color_by = color_by
        self._history: dict[int, deque] = {}
        self._frames_since_seen: dict[int, int] = {}

    def annotate(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        """A copy of `image` with `detections` drawn on it."""
        canvas = image.copy()
        base = min(canvas.shape[:2])
        line = max(2, round(base / 180))  # 2 px at 360p, 6 px at 1080p: the same look at any size
        font_scale = max(0.5, base / 800)  # 11 px tall text at 360p and below, 30 px at 1080p
        text_thickness = max(1, round(base / 400))
        if self.underlay:
            self.underlay(canvas)
        if self.trails:
            self._draw_trails(canvas, detections, line)
        boxes = np.round(detections.xyxy).astype(int).tolist()
        colors = [color_for(int(t), int(c), self.color_by)
                  for t, c in zip(detections.track_id, detections.track_class)]
        for (x1, y1, x2, y2), color in zip(boxes, colors):
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, line)  # axis-aligned: no need for (4x dearer) LINE_AA
        if self.labels:  # on top of every box, the most confident first: it gets the best place
            names, placed = detections.track_class_name, []
            for i in np.argsort(-detections.score, kind="stable"):
                text = self._label(names[i], int(detections.track_id[i]), float(detections.score[i]))
                others = boxes[:i] + boxes[i + 1:]
                _draw_label(canvas, text, boxes[i], colors[i], font_scale, text_thickness, placed, others)
        if self.topmost:
            self.topmost(canvas)
        if self.overlay:
            draw_overlay(canvas, self.overlay(), font_scale, text_thickness)
        return canvas

    def _label(self, name: str, track: int, score: float) -> str:
        parts = {"class": name, "id": f"#{track}" if track > 0 else "", "score": f"{score:.2f}"}
        return " ".join(parts[p] for p in self.labels if parts[p])

    def _draw_trails(self, canvas: np.ndarray, detections: Detections, line: int) -> None:
        seen = set()
        for point, track, class_id in zip(anchor_points(detections, self.anchor), detections.track_id,
                                          detections.track_class):
            if track <= 0:
                continue
            track = int(track)
            seen.add(track)
            self._history.setdefault(track, deque(maxlen=self.trail_length)).append((int(point[0]), int(point[1])))
            points = np.array(self._history[track], dtype=np.int32)
            if len(points) > 1:
                cv2.polylines(canvas, [points], False, color_for(track, int(class_id), self.color_by), line,
                              cv2.LINE_AA)
        for track in list(self._history):
            self._frames_since_seen[track] = 0 if track in seen else self._frames_since_seen.get(track, 0) + 1
            if self._frames_since_seen[track] > self.trail_length:
                del self._history[track], self._frames_since_seen[track]


def draw_overlay(canvas: np.ndarray, lines: Sequence[str], scale: float, thickness: int) -> None:
    """Status lines, white on a dark translucent panel in the top-left corner."""
    if not lines:
        return
    sizes = [cv2.getTextSize(line, FONT, scale, thickness) for line in lines]
    pad = max(4, sizes[0][0][1] // 2)
    line_height = max(h + b for (_, h), b in sizes) + pad
    width = max(w for (w, _), _ in sizes) + 2 * pad
    height = line_height * len(lines) + pad
    panel = canvas[:height, :width]
    panel[:] = (panel * 0.35).astype(canvas.dtype)
    for i, line in enumerate(lines):
        y = pad + line_height * i + sizes[i][0][1]
        cv2.putText(canvas, line, (pad, y), FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)


def _draw_label(canvas, text, box, color, scale, thickness, placed: list, others: Sequence) -> None:
    """A label on a filled patch: above the box; where that covers a label already placed (or leaves the
    frame), inside the box's top, then below the box, then a line further out either way. Where every place
    covers a label, or more than a label's area of `others` (the other boxes), or the box is much smaller
    than the label, it is tried at 0.6 of the size and else left out. `placed` collects the patches drawn."""
    if not text:
        return
    for size in (scale, 0.6 * scale):
        weight = max(1, round(thickness * size / scale))
        (w, h), baseline = cv2.getTextSize(text, FONT, size, weight)
        pad = max(2, h // 4)
        width, height = w + 2 * pad, h + baseline + 2 * pad
        x1, y1, x2, y2 = box
        if width > 3 * max(x2 - x1, 1) or height > 1.5 * max(y2 - y1, 1):
            continue  # a far-away object: its label would hide it and its neighbours
        x = min(max(x1, 0), max(canvas.shape[1] - width, 0))
        candidates = [y1 - height, y1, y2, y1 - 2 * height, y2 + height, y1 + height]
        fits = [top for top in candidates if 0 <= top <= canvas.shape[0] - height] or [
            max(min(y1, canvas.shape[0] - height), 0)]

        # the first place, in that order, that covers no label and at most a label's worth of other boxes
        top = next((t for t in fits if _clear((x, t, x + width, t + height), placed, others)), None)
        if top is not None:
            break
    else:
        return
    placed.append((x, top, x + width, top + height))
    cv2.rectangle(canvas, (x, top), (x + width, top + height), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + pad, top + pad + h), FONT, size, ink, weight, cv2.LINE_AA)


def _clear(patch: tuple, placed: list, others: Sequence) -> bool:
    """A label's patch covers no label already placed and at most its own area of other boxes."""
    area = (patch[2] - patch[0]) * (patch[3] - patch[1])
    return not any(_overlap(patch, p) for p in placed) and sum(_overlap(patch, o) for o in others) <= area


def _overlap(a: tuple, b: tuple) -> int:
    """Area shared by two rectangles (x1, y1, x2, y2)."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def boxed_jpeg(image: np.ndarray, box: Sequence[float]) -> bytes | None:
    """`image` with one red box on it, as JPEG (quality 85): an event's or a class's snapshot. None if OpenCV
    cannot encode it."""
    picture = image.copy()
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    thick = max(2, round(min(picture.shape[:2]) / 180))
    cv2.rectangle(picture, (x1, y1), (x2, y2), (0, 0, 255), thick)
    ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return jpeg.tobytes() if ok else None
