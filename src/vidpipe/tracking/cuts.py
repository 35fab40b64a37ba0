"""Cuts between shots, in edited video (a montage, a news clip, most uploads): where the picture changes to
another shot, every track ends, so no id joins the objects of two shots and none is relinked across the cut.

PySceneDetect's ContentDetector (the mean change of hue, saturation and lightness between consecutive frames,
cut at 27 on its 0-255 scale) on a 320-pixel copy: 0.4-0.6 ms a frame. On the sample clips at their own
rates, the street montage's five cuts score 37-60 and are each found on their frame, while the camera clips
never pass 20 (a car filling a third of the parking lot's picture: 19.8). Frames further apart change more
(the parking lot at 6 fps passes 27 with no cut), so a cut is only decided between frames at most MAX_GAP_S
apart: sampled frames (`--sample-fps`) keep the tracker's own judgement.

`auto` (the default) looks for cuts in files only: a camera's picture changes as much when a light goes on or
it switches to infrared, and there ending every track would count each object again.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..engine import StageProfile

WIDTH = 320  # pixels of the copy compared
THRESHOLD = 27.0  # ContentDetector's default: the street montage's cuts score 37-60, camera clips at most 20
MIN_SHOT_S = 0.3  # a shot lasts at least this (a flash, two changes in a row, is not two cuts)
MAX_GAP_S = 0.1  # frames further apart than this are not compared (a 10 fps camera's frames are)
MODES = ("auto", "on", "off")  # auto: files, not live sources (cameras, streams)


def scene_cuts(mode: str, live: bool, fps: float) -> SceneCuts | None:
    """The cut detector for one input under `mode`, or None where cuts are not looked for."""
    return SceneCuts(fps) if mode == "on" or (mode == "auto" and not live) else None


class SceneCuts:
    """Feed every frame the tracker sees, in order; each call says whether the video cut to another shot
    between the previous frame and this one."""

    def __init__(self, fps: float) -> None:
        self.fps = float(fps) if fps > 0 else 30.0  # (PySceneDetect's timecodes take no int rate)
        self._detector = _content_detector(self.fps)
        self._shape: tuple[int, ...] | None = None  # of the copies compared
        self._previous_s: float | None = None
        self._frames = 0  # the detector counts frames itself: a looped or sampled source's index jumps
        self.profile = StageProfile("cuts")  # its cost, for the run's per-stage figures

    def __call__(self, image: np.ndarray, time_s: float) -> bool:
        from scenedetect import FrameTimecode

        start = time.perf_counter()
        height, width = image.shape[:2]
        small = cv2.resize(image, (WIDTH, max(1, round(WIDTH * height / width))), interpolation=cv2.INTER_AREA) \
            if width > WIDTH else image
        if small.shape != self._shape:  # the stream changed its frame size: compare from this frame on
            self._detector, self._shape, self._previous_s = _content_detector(self.fps), small.shape, None
        found = self._detector.process_frame(FrameTimecode(self._frames, fps=self.fps), small)
        self._frames += 1
        near = self._previous_s is not None and time_s - self._previous_s <= MAX_GAP_S + 1e-6
        self._previous_s = time_s
        self.profile.busy_s += time.perf_counter() - start
        self.profile.items += 1
        return bool(found) and near


def _content_detector(fps: float):
    from scenedetect.detectors import ContentDetector  # a quarter of a second to import: only when tracking

    return ContentDetector(threshold=THRESHOLD, min_scene_len=max(1, round(MIN_SHOT_S * fps)))
