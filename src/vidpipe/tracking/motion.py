"""Camera motion between consecutive frames, so tracks move with the picture when the camera pans or shakes.

BoT-SORT's global motion compensation (GMC) with sparse optical flow: corners found on a small grey copy of
the previous frame are followed into the current one (pyramidal Lucas-Kanade), and a rotation, uniform
scale and translation is fitted to them with RANSAC, so moving objects (the outliers) do not pull it. The
tracker then moves its tracks' states by that transform before associating (`Tracker.warp`). Every frame
goes through it, also the frames `--detect-every` skips, so the motion between detector frames accumulates
in the tracks.

`auto` estimates on every frame for the first second; where the camera has not moved by more than a
fraction of a pixel it only looks again once a second (a grey copy of each frame is all it keeps), and turns
itself back on when the camera starts moving. A fixed camera then pays almost nothing.
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from ..engine import StageProfile

MODES = ("auto", "on", "off")
WIDTH = 480  # pixels of the grey copy the motion is measured on
STILL_PX = 0.5  # a camera whose frames move less than this (full-size pixels) counts as still
WATCH_S = 1.0  # auto: seconds of every-frame estimates before deciding the camera is still; then the check interval


class CameraMotion:
    """Feed every frame in order; each call returns the 2x3 affine transform taking the previous frame's pixel
    coordinates to this frame's, or None where there is no motion to apply (the first frame, a still camera,
    too few corners to follow, a change of frame size)."""

    def __init__(self, mode: str = "auto") -> None:
        if mode not in MODES:
            raise ValueError(f"camera motion mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.profile = StageProfile("motion")  # its cost, for the run's per-stage figures
        self._previous: np.ndarray | None = None  # grey copy of the previous frame
        self._scale = 1.0  # full-size pixels per grey-copy pixel
        self._active = True  # estimating on every frame (auto: until the camera has been still for WATCH_S)
        self._still_since: float | None = None
        self._next_check = 0.0  # auto, inactive: when to look again
        self.moving_frames = 0  # frames where motion was found and applied

    def __call__(self, image: np.ndarray, time_s: float) -> np.ndarray | None:
        if self.mode == "off" or image.size == 0:
            return None
        start = time.perf_counter()
        try:
            return self._step(image, time_s)
        finally:
            self.profile.busy_s += time.perf_counter() - start
            self.profile.items += 1

    def _step(self, image: np.ndarray, time_s: float) -> np.ndarray | None:
        grey = self._grey(image)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            self._still_since = None
            return None
        if not self._active:
            if time_s < self._next_check:
                return None  # a still camera: look again at the next check
            self._next_check = time_s + WATCH_S
        affine = self._estimate(previous, grey)
        moved = 0.0 if affine is None else float(
            np.abs(affine[:, 2]).max() + np.abs(affine[:, :2] - np.eye(2)).max() * max(image.shape[:2]))
        if moved < STILL_PX:
            if self.mode == "auto" and self._active:
                self._still_since = time_s if self._still_since is None else self._still_since
                if time_s - self._still_since >= WATCH_S:
                    self._active, self._next_check = False, time_s + WATCH_S
            return None
        self._active, self._still_since = True, None
        self.moving_frames += 1
        return affine

    def _grey(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = max(1.0, width / WIDTH)
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._scale > 1.0:
            grey = cv2.resize(grey, (round(width / self._scale), round(height / self._scale)),
                              interpolation=cv2.INTER_AREA)
        return grey

    def _estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
        corners = cv2.goodFeaturesToTrack(previous, maxCorners=400, qualityLevel=0.01, minDistance=4, blockSize=3)
        if corners is None or len(corners) < 8:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, current, corners, None, winSize=(15, 15), maxLevel=3)
        ok = status.reshape(-1) == 1
        if ok.sum() < 8:
            return None
        affine, inliers = cv2.estimateAffinePartial2D(corners[ok], moved[ok], method=cv2.RANSAC,
                                                      ransacReprojThreshold=1.0)
        if affine is None or inliers is None or inliers.sum() < 8:
            return None
        affine = affine.astype(np.float64)
        affine[:, 2] *= self._scale  # the translation in full-size pixels (rotation and scale are unitless)
        return affine
