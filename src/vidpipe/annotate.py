"""Drawing detections on frames: boxes, `person #12 0.87` labels and optional motion trails.

Colours stay with a track id for the whole video (with the class when untracked); labels sit on a filled
patch of the box colour with black or white text, whichever contrasts, so they read on any background;
line widths and text size follow the frame size. Only OpenCV's built-in Hershey font is used, so nothing
is ever downloaded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

import cv2
import numpy as np

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


def color_for(track_id: int, class_id: int) -> tuple[int, int, int]:
    """Stable colour: by track id when tracked, else by class."""
    key = track_id if track_id > 0 else class_id
    return tuple(int(c) for c in PALETTE[key % len(PALETTE)])


class Annotator:
    """Draws one frame's detections; keeps the recent centres of each track when trails are on."""

    def __init__(self, trails: bool = False, trail_length: int = 30,
                 overlay: Callable[[], Sequence[str]] | None = None) -> None:
        self.trails = trails
        self.trail_length = trail_length
        self.overlay = overlay  # lines of status text (fps, latency...) for the top-left corner
        self._history: dict[int, deque] = {}
        self._frames_since_seen: dict[int, int] = {}

    def annotate(self, image: np.ndarray, detections: Detections) -> np.ndarray:
        """A copy of `image` with `detections` drawn on it."""
        canvas = image.copy()
        base = min(canvas.shape[:2])
        line = max(2, round(base / 180))  # 2 px at 360p, 6 px at 1080p: the same look at any size
        font_scale = max(0.4, base / 900)
        text_thickness = max(1, round(base / 360))
        if self.trails:
            self._draw_trails(canvas, detections, line)
        names = detections.class_name
        for i in range(len(detections)):
            x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
            track = int(detections.track_id[i])
            color = color_for(track, int(detections.class_id[i]))
            cv2.rectangle(canvas, (x1, y1), (x2, y2), color, line)  # axis-aligned: no need for (4x dearer) LINE_AA
            tag = f" #{track}" if track > 0 else ""
            label = f"{names[i]}{tag} {detections.score[i]:.2f}"
            _draw_label(canvas, label, (x1, y1), color, font_scale, text_thickness)
        if self.overlay:
            draw_overlay(canvas, self.overlay(), font_scale, text_thickness)
        return canvas

    def _draw_trails(self, canvas: np.ndarray, detections: Detections, line: int) -> None:
        seen = set()
        for box, track, class_id in zip(detections.xyxy, detections.track_id, detections.class_id):
            if track <= 0:
                continue
            track = int(track)
            seen.add(track)
            centre = (int((box[0] + box[2]) / 2), int((box[1] + box[3]) / 2))
            self._history.setdefault(track, deque(maxlen=self.trail_length)).append(centre)
            points = np.array(self._history[track], dtype=np.int32)
            if len(points) > 1:
                cv2.polylines(canvas, [points], False, color_for(track, int(class_id)), line, cv2.LINE_AA)
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


def _draw_label(canvas, text, corner, color, scale, thickness) -> None:
    (w, h), baseline = cv2.getTextSize(text, FONT, scale, thickness)
    pad = max(2, h // 4)
    x, y = corner
    x = min(max(x, 0), max(canvas.shape[1] - w - 2 * pad, 0))
    top = y - h - baseline - 2 * pad
    if top < 0:  # no room above the box: put the label just inside it
        top = max(y, 0)
    cv2.rectangle(canvas, (x, top), (x + w + 2 * pad, top + h + baseline + 2 * pad), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(canvas, text, (x + pad, top + pad + h), FONT, scale, ink, thickness, cv2.LINE_AA)
