"""Trackers: give each detection the id of the object it belongs to, frame after frame.

A tracker is one class in the `TRACKERS` registry with a `Config`: a frozen dataclass of its parameters
(their defaults, `from_dict(params)` that names unknown ones, and `min_score`, the lowest detection score it
uses). A pipeline's `trackers:` mapping holds each tracker's parameters under its name.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import ClassVar, Protocol, runtime_checkable

from ..detections import Detections
from ..errors import InputError
from .bytetrack import DET_TXT_NEW_TRACK_THRESH, ByteTrack, ByteTrackConfig
from .confirm import Confirmation, ConfirmRule
from .cuts import SceneCuts
from .motion import CameraMotion
from .votes import ClassVote


@runtime_checkable
class Tracker(Protocol):
    """Stateful per video: call `update` once per processed frame, in order."""

    name: str
    Config: ClassVar[type]
    forget_s: float  # seconds of video after a track's last detection past which its id never comes back
    cuts: list[float]  # when the video cut to another shot (`cut`), in seconds

    def update(self, detections: Detections, time: float | None = None,
               frame_size: tuple[int, int] | None = None) -> Detections:
        """The frame's tracked detections, with `track_id` set (ids >= 1). `frame_size` (width, height), where
        known, tells boxes cut by the picture's border from objects that shrink."""
        ...

    def predict(self, time: float) -> Detections:
        """Where the tracked objects are expected at `time`, on a frame the detector skipped; state unchanged."""
        ...

    def warp(self, affine) -> None:
        """The camera moved between the previous frame and the next: move every track's state by the 2x3
        affine transform `affine` (previous frame's pixels to the next's), before `update` or `predict`."""
        ...

    def cut(self, time: float) -> None:
        """The video cut to another shot before the frame at `time`: every track ends (`cuts.SceneCuts`)."""
        ...

    def reset(self) -> None: ...

    def params(self) -> dict: ...


TRACKERS: dict[str, type] = {"bytetrack": ByteTrack}
NO_TRACKER = "none"


def tracker_defaults() -> dict[str, dict]:
    """Every tracker's parameters at their defaults, by tracker name."""
    return {name: asdict(cls.Config()) for name, cls in TRACKERS.items()}


def tracker_config(name: str, params: dict | None = None):
    """Tracker `name`'s parameters, checked (an unknown tracker or parameter is an InputError)."""
    if name not in TRACKERS:
        raise InputError(f"unknown tracker {name!r} (available: {', '.join([*TRACKERS, NO_TRACKER])})")
    return TRACKERS[name].Config.from_dict(params or {})


def det_txt_params(name: str, params: dict) -> dict:
    """Tracker `name`'s parameters for MOT17's det.txt (another detector's boxes, scores near 1): ByteTrack
    starts tracks there at the gate chosen on them, where the pipeline leaves `new_track_thresh` at its default
    (the gate chosen for the shipped detector)."""
    if name != "bytetrack" or params.get("new_track_thresh", ByteTrackConfig.new_track_thresh) != \
            ByteTrackConfig.new_track_thresh:
        return params
    return {**params, "new_track_thresh": DET_TXT_NEW_TRACK_THRESH}


def create_tracker(name: str, fps: float, params: dict | None = None, vote: bool = False,
                   merge_iou: float = 0.0, confirm: ConfirmRule | None = None) -> Tracker | None:
    """A fresh tracker `name` for a video at `fps`; None for `none`. With `vote`, its rows also carry their
    track's voted class (`ClassVote`), and boxes of two classes at least `merge_iou` alike are merged first;
    with `confirm`, whether their track is an object yet (`Confirmation`)."""
    if name == NO_TRACKER:
        return None
    config = tracker_config(name, params)
    tracker = TRACKERS[name](fps=fps, config=config)
    tracker = ClassVote(tracker, merge_iou=merge_iou) if vote else tracker
    return Confirmation(tracker, confirm) if confirm else tracker


__all__ = ["DET_TXT_NEW_TRACK_THRESH", "ByteTrack", "ByteTrackConfig", "CameraMotion", "ClassVote", "ConfirmRule",
           "Confirmation", "NO_TRACKER", "TRACKERS", "SceneCuts", "Tracker", "create_tracker", "det_txt_params",
           "tracker_config", "tracker_defaults"]
