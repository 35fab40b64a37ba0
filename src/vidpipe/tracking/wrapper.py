"""What a tracker wrapper shares: it adds per-track state to a tracker's rows (a class vote, a confirmation),
forwards what it does not change, and forgets the state of tracks unseen for a while."""

from __future__ import annotations

import numpy as np


class TrackerWrapper:
    """A tracker with per-track state of its own. Tracks unseen for `forget_after_s` seconds of video are
    forgotten (`_stale`), so memory stays flat on endless streams (a track lost that long has ended: trackers
    keep lost tracks for a few seconds); `reset` clears everything (`_clear` is the wrapper's own part)."""

    def __init__(self, tracker, forget_after_s: float) -> None:
        self.tracker, self.forget_after_s = tracker, forget_after_s
        self.name, self.Config = tracker.name, tracker.Config
        self._last_seen: dict[int, float] = {}

    def _stale(self, time: float) -> list[int]:
        """The tracks unseen for longer than `forget_after_s` at `time`, dropped from `_last_seen`; the caller
        drops its own state of them."""
        stale = [track for track, seen in self._last_seen.items() if time - seen > self.forget_after_s]
        for track in stale:
            del self._last_seen[track]
        return stale

    def _clear(self) -> None:
        """Drop the wrapper's own per-track state."""

    @property
    def forget_s(self) -> float:
        return self.tracker.forget_s

    def warp(self, affine: np.ndarray) -> None:
        self.tracker.warp(affine)

    @property
    def cuts(self) -> list[float]:
        return self.tracker.cuts

    def cut(self, time: float) -> None:
        self.tracker.cut(time)

    def reset(self) -> None:
        self.tracker.reset()
        self._last_seen.clear()
        self._clear()

    def params(self) -> dict:
        return self.tracker.params()
