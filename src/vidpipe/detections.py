"""The detections record: one frame's objects as parallel numpy arrays, plus box geometry on them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

NO_TRACK = -1  # track id of a detection no tracker has claimed


@dataclass(frozen=True)
class Detections:
    """Boxes of one frame, row i of every array describing object i.

    Arrays rather than a list of objects, so filtering, IoU and table writing are vectorised. `names`
    maps class ids to names and is shared by every record a detector produces.
    """

    xyxy: np.ndarray  # (n, 4) float32, source-image pixels
    score: np.ndarray  # (n,) float32
    class_id: np.ndarray  # (n,) int64
    names: Sequence[str]
    track_id: np.ndarray | None = None  # (n,) int64; NO_TRACK where untracked
    track_class: np.ndarray | None = None  # (n,) int64: the class voted over the row's whole track so far
    detected: np.ndarray | None = None  # (n,) bool: False for a tracker's prediction on a skipped frame
    # The class and score of a near-identical box of another class merged into this row (`merge_duplicates`):
    # -1 and 0 where none. The track's class vote still counts it.
    merged_class: np.ndarray | None = None  # (n,) int64
    merged_score: np.ndarray | None = None  # (n,) float32
    # Whether the row's track is an object yet (`tracking.confirm`): False while a track has not passed the
    # confirmation rule, so nothing counts it. True where no rule ran (untracked rows, a tracker's raw output).
    confirmed: np.ndarray | None = None  # (n,) bool
    # Each row's appearance (`detectors.appearance`): (n, D) float32 unit rows, None where not computed. The
    # tracker compares them where motion cannot decide (an object back from behind an occluder).
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        n = len(xyxy)
        score = np.asarray(self.score, dtype=np.float32).reshape(-1)
        class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        track_id = (
            np.full(n, NO_TRACK, dtype=np.int64)
            if self.track_id is None
            else np.asarray(self.track_id, dtype=np.int64).reshape(-1)
        )
        # Until a vote says otherwise (an untracked row, a fresh track), a row's class is its own.
        track_class = class_id if self.track_class is None else np.asarray(self.track_class, np.int64).reshape(-1)
        detected = np.ones(n, bool) if self.detected is None else np.asarray(self.detected, bool).reshape(-1)
        merged_class = (np.full(n, -1, np.int64) if self.merged_class is None
                        else np.asarray(self.merged_class, np.int64).reshape(-1))
        merged_score = (np.zeros(n, np.float32) if self.merged_score is None
                        else np.asarray(self.merged_score, np.float32).reshape(-1))
        confirmed = np.ones(n, bool) if self.confirmed is None else np.asarray(self.confirmed, bool).reshape(-1)
        for label, arr in (("score", score), ("class_id", class_id), ("track_id", track_id),
                           ("track_class", track_class), ("detected", detected), ("merged_class", merged_class),
                           ("merged_score", merged_score), ("confirmed", confirmed)):
            if len(arr) != n:
                raise ValueError(f"Detections: {label} has {len(arr)} rows, xyxy has {n}")
        if n and (class_id.min() < 0 or class_id.max() >= len(self.names)):
            raise ValueError(f"Detections: class ids must lie in [0, {len(self.names)})")
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "class_id", class_id)
        object.__setattr__(self, "track_id", track_id)
        object.__setattr__(self, "track_class", track_class)
        object.__setattr__(self, "detected", detected)
        object.__setattr__(self, "merged_class", merged_class)
        object.__setattr__(self, "merged_score", merged_score)
        object.__setattr__(self, "confirmed", confirmed)
        if self.embedding is not None:
            embedding = np.asarray(self.embedding, np.float32)
            if embedding.ndim != 2 or len(embedding) != n:
                raise ValueError(f"Detections: embedding must be ({n}, D), got {embedding.shape}")
            object.__setattr__(self, "embedding", embedding)

    @classmethod
    def empty(cls, names: Sequence[str]) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), names)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | Sequence[int]) -> Detections:
        """Rows by boolean mask, index array or slice."""
        return replace(
            self,
            xyxy=self.xyxy[index],
            score=self.score[index],
            class_id=self.class_id[index],
            track_id=self.track_id[index],
            track_class=self.track_class[index],
            detected=self.detected[index],
            merged_class=self.merged_class[index],
            merged_score=self.merged_score[index],
            confirmed=self.confirmed[index],
            embedding=None if self.embedding is None else self.embedding[index],
        )

    def with_track_ids(self, track_id: np.ndarray) -> Detections:
        return replace(self, track_id=track_id, track_class=None)

    @property
    def class_name(self) -> np.ndarray:
        """The class name of every row."""
        return np.asarray(self.names, dtype=object)[self.class_id] if len(self) else np.zeros(0, object)

    @property
    def track_class_name(self) -> np.ndarray:
        """The voted class name of every row: the track's class, which does not flicker as `class_name` may."""
        return np.asarray(self.names, dtype=object)[self.track_class] if len(self) else np.zeros(0, object)

    def class_counts(self) -> dict[str, int]:
        """Objects per class name in this record (confirmed rows only): the frames table's `n_<class>`, the live
        page's counts, MQTT's objects in view."""
        return dict(Counter(self.class_name[self.confirmed].tolist()))

    @property
    def is_tracked(self) -> np.ndarray:
        return self.track_id != NO_TRACK

    @property
    def is_object(self) -> np.ndarray:
        """The rows that are objects: tracked, and their track confirmed. Everything that counts objects (the
        summary, the live totals, MQTT, lines and zones) counts these rows only."""
        return self.is_tracked & self.confirmed

    def to_supervision(self):
        """This record as a `supervision.Detections`, for supervision's annotators, zones and line counters.

        Class names go to `data["class_name"]`, as supervision's own model adapters put them; `tracker_id` is
        None when no row is tracked, as supervision expects of untracked detections.
        """
        import supervision as sv

        return sv.Detections(xyxy=self.xyxy.copy(), confidence=self.score.copy(), class_id=self.class_id.copy(),
                             tracker_id=self.track_id.copy() if self.is_tracked.any() else None,
                             data={"class_name": self.class_name.astype(str)})

    @classmethod
    def from_supervision(cls, detections, names: Sequence[str]) -> Detections:
        """A `supervision.Detections` as vidpipe's record; `names` maps its class ids to names (a missing
        confidence counts as 1, a missing tracker id as untracked)."""
        n = len(detections.xyxy)
        if detections.class_id is None:
            raise ValueError("Detections.from_supervision: the supervision record has no class_id")
        score = np.ones(n, np.float32) if detections.confidence is None else detections.confidence
        track_id = None if detections.tracker_id is None else detections.tracker_id
        return cls(detections.xyxy, score, detections.class_id, names, track_id)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (n, 4) with every box in `b` (m, 4), xyxy; (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


DUPLICATE_IOU = 0.85  # boxes of two classes this alike are one object (a pickup called car and truck)


def merge_duplicates(detections: Detections, iou: float = DUPLICATE_IOU) -> Detections:
    """Boxes of different classes on one object (IoU >= `iou`) become one row: the higher score keeps its
    box and class, and the best other class and its score go into `merged_class` / `merged_score`, so a
    track's class vote still hears them. Same-class overlaps are the detector's NMS business, not this.
    `iou` 0 turns the merge off."""
    if not iou or len(detections) < 2:
        return detections
    overlap = box_iou(detections.xyxy, detections.xyxy)
    alike = (overlap >= iou) & (detections.class_id[:, None] != detections.class_id[None, :])
    if not alike.any():
        return detections
    keep = np.ones(len(detections), bool)
    merged_class, merged_score = detections.merged_class.copy(), detections.merged_score.copy()
    for i in np.argsort(-detections.score, kind="stable"):
        if not keep[i]:
            continue
        losers = np.flatnonzero(alike[i] & keep)
        losers = losers[detections.score[losers] <= detections.score[i]]
        if len(losers):
            best = losers[np.argmax(detections.score[losers])]
            if detections.score[best] > merged_score[i]:
                merged_class[i], merged_score[i] = detections.class_id[best], detections.score[best]
            keep[losers] = False
    return replace(detections, merged_class=merged_class, merged_score=merged_score)[keep]
