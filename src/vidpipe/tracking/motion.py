"""Camera motion between consecutive frames, so tracks move with the picture when the camera pans or shakes.

BoT-SORT's global motion compensation (GMC) with sparse optical flow: corners found on a small grey copy of
the previous frame are followed into the current one (pyramidal Lucas-Kanade), and a rotation, uniform scale
and translation is fitted to them with RANSAC, so moving objects (the outliers) do not pull it (where too few
corners can be followed, as between frames a second apart from a panning camera, the picture's overall shift
by phase correlation seeds their search, and they are followed again); where half as many corners as the
fit moved (by a grey-copy pixel or more) stayed in place, the picture did not move (a fixed camera over
plain ground, with an object no detector has boxed yet outnumbering the background's corners). The tracker
then moves its tracks' states by that transform before associating (`Tracker.warp`). Every frame goes
through it, also the frames `--detect-every` skips, so the motion between detector frames accumulates in the
tracks.

`auto` (the default) estimates on every frame and applies the motion while its median over the last second is
at least a pixel (on a fixed camera the estimate's own noise stays below that: people walking, compression),
and for 3 s more (a moving camera's lulls are brief, and each shift it then leaves out jolts the tracks);
after a still second past that it only compares a pair of frames once a second, and turns itself back on when the camera
starts moving. A fixed camera then pays almost nothing, and is not shaken by the estimate's noise.
"""

from __future__ import annotations

import time
from collections import deque

import cv2
import numpy as np

from ..engine import StageProfile

MODES = ("auto", "on", "off")
WIDTH = 320  # pixels of the grey copy the motion is measured on
STILL_PX = 0.5  # full-size pixels: a shift smaller than this is not applied (nothing to gain)
AUTO_PX = 1.0  # auto: a camera whose median shift over a second is below this is fixed (the estimate's noise)
MIN_ZOOM, MIN_TURN = 0.01, 0.005  # a zoom of 1%, a turn of 0.3 degrees a frame: below, the noise of the fit
OUTLINE_PX = 4  # grey-copy pixels around an object's box left out with it
MIN_BACKGROUND = 0.2  # the share of the picture outside the objects' boxes needed to fit the background alone
FIT_PX = 1.0  # grey-copy pixels: a corner this close to where the motion puts it agrees with it
STAYED_PX = 0.25  # grey-copy pixels: a corner that moved less than this stayed in place
STILL_SHARE = 0.5  # corners that stayed, against the fit's: at this share or more the picture did not move
WATCH_S = 1.0  # auto: seconds of every-frame estimates before deciding the camera is still; then the check interval
FAR_PX = 8.0  # grey-copy pixels: a phase-correlation shift from this up seeds the corners' search
HOLD_S = 3.0  # auto: a camera that moved is still compensated for this long after its median shift falls below AUTO_PX


class CameraMotion:
    """Feed every frame in order; each call returns the 2x3 affine transform taking the previous frame's pixel
    coordinates to this frame's, or None where there is no motion to apply (the first frame, a still camera,
    too few corners to follow, a change of frame size)."""

    def __init__(self, mode: str = "on") -> None:
        if mode not in MODES:
            raise ValueError(f"camera motion mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.mode = mode
        self.profile = StageProfile("motion")  # its cost, for the run's per-stage figures
        self._previous: np.ndarray | None = None  # grey copy of the previous frame
        self._scale = 1.0  # full-size pixels per grey-copy pixel
        self._recent: deque[tuple[float, float]] = deque()  # auto: (time, shift) of the last second's frames
        self._still = False  # auto: the camera was found still; frames are compared only at checks
        self._next_check = 0.0
        self._moved_at = -np.inf  # auto: when the camera was last found moving
        self.moving_frames = 0  # frames where motion was found and applied
        self._objects = np.zeros((0, 4))  # the boxes of the objects in the previous frame (full-size pixels)

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
        if self._still and self._previous is None and time_s < self._next_check:
            return None  # a still camera between two checks: nothing to do, not even a grey copy
        grey = self._grey(image)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return None
        affine = self._estimate(previous, grey)
        shift = 0.0 if affine is None else float(
            np.abs(affine[:, 2]).max() + np.abs(affine[:, :2] - np.eye(2)).max() * max(image.shape[:2]))
        if self.mode == "auto" and not self._moving(time_s, shift):
            return None
        if shift < STILL_PX:
            return None
        self.moving_frames += 1
        return affine

    def exclude(self, boxes: np.ndarray) -> None:
        """The boxes of the objects in the frame just given: corners on them move with the objects, not the
        camera, so the next estimate leaves them out (on a fixed camera with people walking, they are what
        the estimate's noise comes from)."""
        self._objects = np.asarray(boxes, np.float64).reshape(-1, 4)

    def _moving(self, time_s: float, shift: float) -> bool:
        """auto: whether the camera moves, by the median shift over the last second (the estimate's noise on
        a fixed camera stays below AUTO_PX; a pan or a hand-held camera does not)."""
        if self._still:  # a check: a pair of consecutive frames, once a second
            if shift < AUTO_PX:
                self._previous, self._next_check = None, time_s + WATCH_S
                return False
            self._still = False
            self._recent.clear()
        self._recent.append((time_s, shift))
        while self._recent[0][0] < time_s - WATCH_S:
            self._recent.popleft()
        moving = float(np.median([s for _, s in self._recent])) >= AUTO_PX
        if moving:
            self._moved_at = time_s
        elif time_s - self._moved_at <= HOLD_S:
            return True  # a moving camera's lulls (a pan turning round, a hand at rest) are brief: keep up with them
        elif self._recent[-1][0] - self._recent[0][0] >= WATCH_S * 0.9:
            self._still, self._previous, self._next_check = True, None, time_s + WATCH_S
        return moving

    def _grey(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        self._scale = max(1.0, width / WIDTH)
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._scale > 1.0:
            grey = cv2.resize(grey, (round(width / self._scale), round(height / self._scale)),
                              interpolation=cv2.INTER_AREA)
        return grey

    def _background(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """A mask of the previous frame without its objects' boxes; None where they leave too little of it."""
        if not len(self._objects):
            return None
        mask = np.full(shape[:2], 255, np.uint8)
        boxes = self._objects / self._scale
        # with a margin: an object's outline makes the strongest corners, and they move with it
        pad = np.maximum(OUTLINE_PX, 0.1 * (boxes[:, 2:] - boxes[:, :2]))
        for x1, y1, x2, y2 in np.round(np.hstack([boxes[:, :2] - pad, boxes[:, 2:] + pad])).astype(int):
            mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
        return mask if mask.mean() > 255 * MIN_BACKGROUND else None

    def _estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray | None:
        corners = cv2.goodFeaturesToTrack(previous, maxCorners=200, qualityLevel=0.01, minDistance=4, blockSize=3,
                                          mask=self._background(previous.shape))
        if corners is None or len(corners) < 8:
            return None
        affine, followed = self._follow(previous, current, corners)
        if not followed:
            # Perhaps a shift beyond what the pyramid follows (about 30 grey-copy pixels: frames a second apart
            # from a panning camera). The whole picture's shift, by phase correlation, then seeds each corner's
            # search; only here, as it costs about as much again as the rest.
            (dx, dy), _ = cv2.phaseCorrelate(np.float32(previous), np.float32(current))
            if max(abs(dx), abs(dy)) >= FAR_PX:
                affine, _ = self._follow(previous, current, corners, np.float32([dx, dy]))
        return affine

    def _follow(self, previous: np.ndarray, current: np.ndarray, corners: np.ndarray,
                shift: np.ndarray | None = None) -> tuple[np.ndarray | None, bool]:
        """The camera's motion from following `corners` into `current` (their search starting `shift` away),
        and whether enough of them could be followed to tell."""
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            previous, current, corners, None if shift is None else corners + shift, winSize=(15, 15), maxLevel=2,
            flags=0 if shift is None else cv2.OPTFLOW_USE_INITIAL_FLOW)
        ok = status.reshape(-1) == 1
        if ok.sum() < 8:
            return None, False
        source, target = corners[ok].reshape(-1, 2), moved[ok].reshape(-1, 2)
        affine, inliers = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=FIT_PX)
        if affine is None or inliers is None or inliers.sum() < 8:
            return None, False
        fitted = np.abs(source @ affine[:, :2].T + affine[:, 2] - source).max(axis=1)  # each corner's fitted move
        stayed = (np.abs(target - source).max(axis=1) < STAYED_PX).sum()
        if np.median(fitted) >= FIT_PX and stayed >= STILL_SHARE * inliers.sum():
            # Half as many corners as the fit moved stayed where they were, which the fit cannot explain: a
            # fixed camera over little texture (asphalt, sky), and the fit followed an object not yet detected
            # (a car driving in). A moving camera leaves few corners in place (an overlay, a logo), far fewer
            # than it moves. (A fit moving less than FIT_PX cannot be told from staying: a slow pan at a large
            # size, a grey-copy pixel being several of the frame's.)
            return None, True
        affine = affine.astype(np.float64)
        turn = np.arctan2(affine[1, 0], affine[0, 0])
        zoom = np.hypot(affine[0, 0], affine[1, 0])
        if abs(zoom - 1) < MIN_ZOOM and abs(turn) < MIN_TURN:
            # No real rotation or zoom, only its noise: applied, it would shrink or grow every track a little
            # each frame (a lost track most, with nothing to correct it). The fit's shift of the picture's
            # centre alone.
            centre = np.array([previous.shape[1] / 2, previous.shape[0] / 2, 1.0])
            affine = np.hstack([np.eye(2), (affine @ centre - centre[:2])[:, None]])
        affine[:, 2] *= self._scale  # the translation in full-size pixels (rotation and scale are unitless)
        return affine, True
