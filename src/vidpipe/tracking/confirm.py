"""Which tracks are objects: a track counts once it is confirmed, by Frigate's true-positive rule.

A tracker starts a track from one confident box and keeps it through low-score ones, so a reflection, a
shadow or a second box on a passing car makes a short track that is no object. Frigate reports an object
only once the median of its recent scores reaches a threshold (`compute_score`, `_is_false_positive` in
frigate/track/tracked_object.py); here a track is confirmed once it has been detected in at least
`min_frames` frames and the median of its latest `window` detection scores is at least `min_score`. Once
confirmed, always confirmed. Unconfirmed tracks stay in `tracks.parquet` (`confirmed` false) and are drawn, but
every answer (the summary's objects per class, the terminal, report.html, the live totals, MQTT, line and
zone events) counts objects only (`Detections.is_object`).

The shipped gates were chosen end to end, with the shipped YOLOv8n on the sample clips against counts made by
watching them (bench/objects.py, README): see `CONFIRM_FRAMES` and `CONFIRM_SCORE`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from ..detections import Detections
from ..errors import InputError
from .wrapper import TrackerWrapper

CONFIRM_FRAMES = 5  # detections a track needs before it is an object
CONFIRM_SCORE = 0.5  # ...with the median of its latest WINDOW scores at least this
WINDOW = 10  # Frigate's score history


@dataclass(frozen=True)
class ConfirmRule:
    """Frigate's true-positive rule: at least `min_frames` detections, the median of the latest `window`
    scores at least `min_score`."""

    min_frames: int = CONFIRM_FRAMES
    min_score: float = CONFIRM_SCORE
    window: int = WINDOW

    def __post_init__(self) -> None:
        if self.min_frames < 1 or self.window < 1:
            raise InputError(f"confirmation: min_frames and window must be >= 1, got {self.min_frames}, {self.window}")
        if not 0.0 <= self.min_score <= 1.0:
            raise InputError(f"confirmation: min_score must lie in [0, 1], got {self.min_score}")

    def confirms(self, detected: int, scores) -> bool:
        """Whether a track detected `detected` times, its latest scores `scores`, is an object."""
        return detected >= self.min_frames and float(np.median(scores)) >= self.min_score


class Confirmation(TrackerWrapper):
    """Wraps a tracker: its rows get `confirmed`, whether their track is an object as of this frame.

    Predicted rows (`--detect-every`) carry their track's state but are no evidence. A track unseen for
    `forget_after_s` seconds of video is forgotten, so memory stays flat on endless streams.
    """

    def __init__(self, tracker, rule: ConfirmRule | None = None, forget_after_s: float = 60.0) -> None:
        super().__init__(tracker, forget_after_s)
        self.rule = rule or ConfirmRule()
        self._scores: dict[int, deque] = {}
        self._detected: dict[int, int] = {}
        self._confirmed: set[int] = set()

    def update(self, detections: Detections, time: float | None = None,
               frame_size: tuple[int, int] | None = None) -> Detections:
        tracked = self.tracker.update(detections, time, frame_size)
        for i in np.flatnonzero(tracked.is_tracked & tracked.detected):
            track = int(tracked.track_id[i])
            scores = self._scores.setdefault(track, deque(maxlen=self.rule.window))
            scores.append(float(tracked.score[i]))
            self._detected[track] = self._detected.get(track, 0) + 1
            if time is not None:
                self._last_seen[track] = time
            if track not in self._confirmed and self.rule.confirms(self._detected[track], scores):
                self._confirmed.add(track)
        if time is not None:
            for track in self._stale(time):
                del self._scores[track], self._detected[track]
                self._confirmed.discard(track)
        return self._flagged(tracked)

    def predict(self, time: float) -> Detections:
        return self._flagged(self.tracker.predict(time))

    def confirmed(self, track: int) -> bool:
        """Whether track `track` has been confirmed: the one answer to "is this an object"."""
        return track in self._confirmed

    def _flagged(self, detections: Detections) -> Detections:
        return replace(detections, confirmed=np.isin(detections.track_id, list(self._confirmed)))

    def _clear(self) -> None:
        for state in (self._scores, self._detected, self._confirmed):
            state.clear()
