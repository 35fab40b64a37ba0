"""One class per track: a score-weighted vote over each track's detections so far.

A detector may call the same car `car` in one frame and `cell phone` in the next. The tracker keeps the
object; the vote keeps its class: every detection adds its score to its class's tally for the track, and
the track's class is the heaviest tally. Early on one confident frame decides; as the track ages the vote
settles and a stray low-score label no longer moves it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..detections import Detections, merge_duplicates
from .wrapper import TrackerWrapper


class ClassVote(TrackerWrapper):
    """Wraps a tracker: its output rows get `track_class`, the class voted over their track so far.

    With `merge_iou`, boxes of two classes on one object (a pickup the detector calls both car and truck)
    become one detection before the tracker sees them (`merge_duplicates`), so they make one track, and the
    other class still counts in that track's vote. The detector's own output is left as it is: merging
    there would cost detection AP (docs/evaluation.md).

    Tallies of tracks unseen for `forget_after_s` seconds of video are dropped, so memory stays flat on
    endless streams (a track lost that long has ended: trackers keep lost tracks for a few seconds).
    """

    def __init__(self, tracker, forget_after_s: float = 60.0, merge_iou: float = 0.0) -> None:
        super().__init__(tracker, forget_after_s)
        self.merge_iou = merge_iou
        self._tallies: dict[int, np.ndarray] = {}

    def update(self, detections: Detections, time: float | None = None,
               frame_size: tuple[int, int] | None = None) -> Detections:
        tracked = self.tracker.update(merge_duplicates(detections, self.merge_iou), time, frame_size)
        return self.vote(tracked, time)

    def vote(self, detections: Detections, time: float | None = None) -> Detections:
        """Add this frame's tracked rows to their tracks' tallies; return the rows with their tracks' classes."""
        classes = detections.class_id.copy()
        n_classes = len(detections.names)
        for i in np.flatnonzero(detections.is_tracked):
            track = int(detections.track_id[i])
            tally = self._tallies.get(track)
            if tally is None:
                tally = self._tallies[track] = np.zeros(n_classes)
            tally[detections.class_id[i]] += float(detections.score[i])
            if detections.merged_class[i] >= 0:  # the other class of a duplicate box merged into this one
                tally[detections.merged_class[i]] += float(detections.merged_score[i])
            classes[i] = int(np.argmax(tally))
            if time is not None:
                self._last_seen[track] = time
        if time is not None:
            for track in self._stale(time):
                del self._tallies[track]
        return replace(detections, track_class=classes)

    def predict(self, time: float) -> Detections:
        """The tracker's predictions for a skipped frame, with each track's vote as it stands (no new evidence)."""
        predicted = self.tracker.predict(time)
        classes = predicted.class_id.copy()
        for i, track in enumerate(predicted.track_id.tolist()):
            if track in self._tallies:
                classes[i] = int(np.argmax(self._tallies[track]))
        return replace(predicted, track_class=classes)

    def _clear(self) -> None:
        self._tallies.clear()
