"""ByteTrack (Zhang et al., 2022): associate every detection box, the low-score ones too.

High-score detections are matched to tracks first; low-score ones then keep otherwise unmatched tracks
alive (occluded objects score low); new tracks start only from high-score detections. Three departures from
the original for occlusions: a lost track is remembered for 2 s rather than 1 s, it stops changing size
while lost, and a new track takes the id of a track lost up to 3 s ago when it starts close to where that
track was heading, at its size and of its class (online tracklet linking). A fourth for objects that leave
the picture and come back (a panning camera): given the picture's size, boxes its border cuts are followed
as cut, not as objects shrinking and moving. On MOT17 (bench/trackers_mot17.py) they give 3 HOTA and 3.4
IDF1 more than ultralytics' ByteTrack and a quarter fewer ID switches; relinking's share is 0.5 HOTA, 0.6
IDF1 and 151 to 128 switches. All track state lives in a few numpy arrays (one row per track), so
prediction and correction are one vectorised step per frame. Time comes from the frames' timestamps, so
skipped or dropped frames don't break the motion model, and the lost-track buffer is measured in seconds of
video. Where detections carry embeddings (`appearance`), looks decide what motion cannot: a confirmed track no
box overlapped is re-found by appearance, and relinking requires the looks to agree (`_refind`, `_relink`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import lap
import numpy as np

from ..detections import Detections, box_iou
from ..errors import InputError
from .kalman import BoxKalmanFilter, xywh_to_xyxy, xyxy_to_xywh

TENTATIVE, TRACKED, LOST, RETIRED = 0, 1, 2, 3  # RETIRED: lost past the buffer, kept only for relinking
_NEVER = 1e6  # the cost of a pair kept out of a matching round (far above any accepted cost)
# Relinking gates: a new track continues a lost one whose predicted centre is within RELINK_HEIGHTS of its own,
# plus RELINK_HEIGHTS_PER_S per second lost (in mean box heights), and whose height is within RELINK_SIZE times.
# Tight on purpose: on MOT17 looser gates (0.5 heights + 0.25/s, 1.4x) join as many pairs of people as pieces
# of one, and cost IDF1 (docs/evaluation.md).
RELINK_HEIGHTS, RELINK_HEIGHTS_PER_S, RELINK_SIZE = 0.25, 0.1, 1.25
BORDER_PX = 2.0  # a box side this close to the picture's border, or past it, is where the border cut the object
# Where a new track may start depends on the detector's scores. The shipped YOLOv8n's lie between 0.25 and 0.8
# on the sample clips, and starting tracks there at 0.25 made twice the objects people count (bench/objects.py:
# 0.55 brings every watched clip within 15%). MOT17's det.txt scores sit near 1 (median 1.0, 10th percentile
# 0.75), and there 0.25 scores best (HOTA 50.89, IDF1 59.82; 0.55 gives 50.84, 59.71): `eval mot` on det.txt
# and the MOT17 benches start tracks at DET_TXT_NEW_TRACK_THRESH.
NEW_TRACK_THRESH, DET_TXT_NEW_TRACK_THRESH = 0.55, 0.25
# Appearance (detections' `embedding`, `detectors.appearance`) decides only where motion cannot: a confirmed track
# no box overlapped is re-found by the nearest embedding within a loose motion gate (REFIND_HEIGHTS mean box
# heights plus REFIND_HEIGHTS_PER_S per second lost, a height within REFIND_SIZE times), and relinking requires it.
# A track's appearance is an EMA of its confident detections' embeddings (BoT-SORT's, StrongSORT's).
REFIND_HEIGHTS, REFIND_HEIGHTS_PER_S, REFIND_SIZE, REFIND_MIN_PX = 1.0, 0.5, 1.5, 32
APPEARANCE_EMA = 0.9
APPEARANCES = ("detector", "off")


@dataclass(frozen=True)
class ByteTrackConfig:
    """ByteTrack's parameters; the shipped defaults are also written out in `pipelines/default.yaml`."""

    track_high_thresh: float = 0.25  # detections at or above this are matched first
    track_low_thresh: float = 0.1  # detections below this are ignored
    new_track_thresh: float = NEW_TRACK_THRESH  # an unmatched detection starts a track at or above this
    match_thresh: float = 0.8  # highest cost (1 - IoU, score-fused) accepted in the first association
    low_match_thresh: float = 0.5  # highest cost (1 - IoU) accepted when matching low-score detections
    unconfirmed_match_thresh: float = 0.7  # highest cost for a new track's second detection
    track_buffer: int = 60  # frames a lost track is kept, at 30 fps (2 s); scaled to the video's frame rate
    fuse_score: bool = True  # weigh IoU by detection score in the first association
    class_consistent: bool = True  # own class first, other classes after (a new track: its own class only)
    cross_class_iou: float = 0.7  # ...and to another class's box only this alike (the IoU NMS calls one object)
    relink_s: float = 3.0  # a new track may take the id of one lost up to this long ago that it continues (0: off)
    appearance: str = "detector"  # detector: each box's embedding from the detector's own features | off
    appearance_thresh: float = 0.3  # highest cosine distance at which two embeddings are one object

    def __post_init__(self) -> None:
        for name in ("track_high_thresh", "track_low_thresh", "new_track_thresh", "match_thresh",
                     "low_match_thresh", "unconfirmed_match_thresh", "cross_class_iou", "appearance_thresh"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"bytetrack: {name} must lie in [0, 1], got {value}")
        if self.track_low_thresh > self.track_high_thresh:
            raise InputError("bytetrack: track_low_thresh must not exceed track_high_thresh")
        if self.track_buffer < 0:
            raise InputError(f"bytetrack: track_buffer must be >= 0, got {self.track_buffer}")
        if not self.relink_s >= 0:
            raise InputError(f"bytetrack: relink_s must be >= 0, got {self.relink_s}")
        if self.appearance not in APPEARANCES:
            raise InputError(f"bytetrack: appearance must be one of {', '.join(APPEARANCES)}, got {self.appearance!r}")

    @property
    def min_score(self) -> float:
        """The lowest detection score ByteTrack uses: the detector must keep boxes down to it."""
        return self.track_low_thresh

    @classmethod
    def from_dict(cls, params: dict) -> ByteTrackConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InputError(f"bytetrack: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**params)


class ByteTrack:
    """Multi-object tracker; `update` once per frame, in order. Ids start at 1 and are per instance."""

    name = "bytetrack"
    Config = ByteTrackConfig

    def __init__(self, fps: float = 30.0, config: ByteTrackConfig | None = None, **params) -> None:
        if config is not None and params:
            raise TypeError("pass either a ByteTrackConfig or keyword parameters, not both")
        self.config = config or ByteTrackConfig.from_dict(params)
        if fps <= 0:
            raise InputError(f"bytetrack: fps must be positive, got {fps}")
        self.fps = float(fps)
        self.max_lost_s = self.config.track_buffer / 30.0  # matched by overlap for this long...
        self.forget_s = max(self.max_lost_s, self.config.relink_s)  # ...and kept for relinking this long
        self._kf = BoxKalmanFilter()
        self.reset()

    def reset(self) -> None:
        """Forget every track; the next id is 1 again."""
        self._mean = np.zeros((0, 8))
        self._cov = np.zeros((0, 8, 8))
        self._state = np.zeros(0, np.int8)
        self._id = np.zeros(0, np.int64)  # 0 until confirmed
        self._last_seen = np.zeros(0)  # seconds
        self._class = np.zeros(0, np.int64)  # the class each track began with, and its latest detection's score
        self._score = np.zeros(0, np.float32)
        self._feat = np.zeros((0, 0), np.float32)  # each track's appearance (unit rows; zero rows: none yet)
        self._names: tuple[str, ...] = ()
        self._frame_size: tuple[int, int] | None = None  # the current picture's (width, height), where known
        self._next_id = 1
        self._time: float | None = None
        self.cuts: list[float] = []  # when the video cut to another shot (`cut`)

    def cut(self, time: float) -> None:
        """The video cut to another shot before the frame at `time`: every track ends here, lost ones too (none
        is matched or relinked to an object of the next shot); ids go on from where they were."""
        self._remove(np.ones(len(self._state), bool))
        self.cuts.append(time)

    def params(self) -> dict:
        return asdict(self.config)

    def update(self, detections: Detections, time: float | None = None,
               frame_size: tuple[int, int] | None = None) -> Detections:
        """Associate one frame's detections; returns those that belong to a confirmed track, with ids.

        `time` is the frame's timestamp in seconds (default: one frame after the previous call). `frame_size`
        is the picture's (width, height): with it, boxes the picture's border cuts are matched and followed as
        cut (an object walking out of view, or a camera panning away from it, keeps its track's size and
        speed, so the track is where the object is when it comes back into view).
        """
        cfg = self.config
        self._names = tuple(detections.names)
        self._frame_size = frame_size
        time, first_frame = self._advance(time)
        score = detections.score
        det_track, failed, rest_high = self._associate_all(detections)
        matched = np.flatnonzero(det_track >= 0)
        rows = det_track[matched]
        self._mean[rows], self._cov[rows] = self._kf.update(
            self._mean[rows], self._cov[rows], xyxy_to_xywh(self._uncut(detections.xyxy[matched], rows))
        )
        self._state[rows] = TRACKED
        self._last_seen[rows] = time
        self._score[rows] = score[matched]  # a track keeps the class it began with: the class it matches first
        self._learn_appearance(rows, detections, matched)

        # new tracks from unmatched confident detections; at the first frame they are confirmed at once
        new = rest_high[score[rest_high] >= cfg.new_track_thresh]
        first_new_row = len(self._state)
        self._add_tracks(detections.xyxy[new], TRACKED if first_frame else TENTATIVE, time, detections.class_id[new],
                         score[new])
        self._learn_appearance(np.arange(first_new_row, len(self._state)), detections, new)
        if first_frame:
            det_track[new] = np.arange(first_new_row, first_new_row + len(new))

        relinked = self._relink(time)
        self._assign_ids()
        out_ids = np.zeros(len(detections), np.int64)
        out_ids[det_track >= 0] = self._id[det_track[det_track >= 0]]
        output = detections.with_track_ids(out_ids)[out_ids > 0]

        self._forget(failed, relinked, time)
        return output

    def _associate_all(self, detections: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ByteTrack's three association rounds. Returns the track row each detection joins (-1: none), the
        tentative tracks that found no second detection, and the high-score detections left unmatched."""
        cfg, score = self.config, detections.score
        keep = score >= cfg.track_low_thresh
        high = np.flatnonzero(keep & (score >= cfg.track_high_thresh))
        low = np.flatnonzero(keep & (score < cfg.track_high_thresh))
        boxes, classes = detections.xyxy, detections.class_id
        det_track = np.full(len(detections), -1)  # row of the track each detection joins

        # 1. confirmed tracks (tracked or recently lost) against high-score detections
        confirmed = np.flatnonzero((self._state == TRACKED) | (self._state == LOST))
        pairs, rest_tracks, rest_high = self._associate(confirmed, high, boxes, classes, score, cfg.match_thresh,
                                                         cfg.fuse_score)
        det_track[pairs[:, 1]] = pairs[:, 0]
        # 2. tracks still unmatched that were tracked last frame, against low-score detections
        tracked = rest_tracks[self._state[rest_tracks] == TRACKED]
        pairs, unmatched, _ = self._associate(tracked, low, boxes, classes, score, cfg.low_match_thresh, False)
        det_track[pairs[:, 1]] = pairs[:, 0]
        # A track that just lost sight of its object keeps moving at its last speed but stops growing or
        # shrinking: size velocity extrapolated over an occlusion yields boxes nothing can match again.
        self._mean[unmatched[self._state[unmatched] == TRACKED], 6:] = 0.0
        self._state[unmatched] = LOST
        pairs, rest_high = self._refind(np.setdiff1d(rest_tracks, pairs[:, 0]), rest_high, detections)
        det_track[pairs[:, 1]] = pairs[:, 0]
        # 3. tentative tracks (seen once) against the remaining high-score detections
        tentative = np.flatnonzero(self._state == TENTATIVE)
        # (its own class only: a track seen once is confirmed by a second sighting of the same kind, so a
        # one-frame misreading, a `person` box on a car, does not seed the track the object then keeps)
        pairs, failed, rest_high = self._associate(
            tentative, rest_high, boxes, classes, score, cfg.unconfirmed_match_thresh, cfg.fuse_score, across=False
        )
        det_track[pairs[:, 1]] = pairs[:, 0]
        return det_track, failed, rest_high

    def _advance(self, time: float | None) -> tuple[float, bool]:
        """Every track predicted at `time` (default: one frame after the last); returns the time, and whether
        this is the first frame."""
        first_frame = self._time is None
        if time is None:
            time = 0.0 if first_frame else self._time + 1.0 / self.fps
        elif not first_frame and time < self._time:  # the source's clock went back (its timestamps restarted):
            shift = time - self._time - 1.0 / self.fps  # count it as one frame, and every track keeps its age
            self._last_seen += shift
            self._time += shift
        steps = 1.0 if first_frame else (time - self._time) * self.fps
        self._time = time
        self._mean, self._cov = self._kf.predict(self._mean, self._cov, steps)
        return time, first_frame

    def _forget(self, failed: np.ndarray, relinked: np.ndarray, time: float) -> None:
        """Tentative tracks that found no second detection and lost tracks a new one took over are dropped; lost
        tracks past the buffer are only kept for relinking, and dropped past that too."""
        drop = np.zeros(len(self._state), bool)
        drop[failed] = drop[relinked] = True
        gone = time - self._last_seen
        self._state[(self._state == LOST) & (gone > self.max_lost_s + 1e-9)] = RETIRED
        drop |= (self._state == RETIRED) & (gone > self.forget_s + 1e-9)
        self._remove(drop)

    def warp(self, affine: np.ndarray) -> None:
        """The camera moved: carry every track with the picture (BoT-SORT's GMC). `affine` (2x3) takes the
        previous frame's pixel coordinates to the current frame's; centres and their velocities turn and
        shift with it, sizes scale with it."""
        if not len(self._mean):
            return
        turn = np.asarray(affine, np.float64)[:, :2]
        scale = np.sqrt(abs(np.linalg.det(turn)))
        transform = np.zeros((8, 8))
        transform[0:2, 0:2] = transform[4:6, 4:6] = turn
        transform[2:4, 2:4] = transform[6:8, 6:8] = scale * np.eye(2)
        self._mean = self._mean @ transform.T
        self._mean[:, :2] += np.asarray(affine, np.float64)[:, 2]
        self._cov = transform @ self._cov @ transform.T

    def predicted_boxes(self) -> np.ndarray:
        """Where each track is expected in the current frame (xyxy), for drawing or debugging."""
        return xywh_to_xyxy(self._mean[:, :4])

    def predict(self, time: float) -> Detections:
        """The confirmed, currently tracked objects where the motion model expects them at `time`, for a frame
        the detector skipped (`--detect-every`). Nothing changes: the next `update` continues from the last
        detector frame, as if the skipped frames had not been there. Rows carry each track's latest class and
        score, and `detected` False."""
        rows = np.flatnonzero((self._state == TRACKED) & (self._id > 0))
        if not self._names:
            return Detections.empty(("object",))
        if not len(rows):
            return Detections.empty(self._names)
        steps = 0.0 if self._time is None else (time - self._time) * self.fps
        mean, _ = self._kf.predict(self._mean[rows].copy(), self._cov[rows].copy(), steps)
        return Detections(xywh_to_xyxy(mean[:, :4]), self._score[rows], self._class[rows], self._names,
                          self._id[rows], detected=np.zeros(len(rows), bool))

    def _associate(self, tracks, dets, boxes, class_id, score, max_cost, fuse, across: bool = True):
        """Optimal one-to-one matching of track rows to detection rows under `max_cost`; with
        `class_consistent`, first among pairs of the same class, then across classes for what is left (a
        cyclist's person track keeps the person box; a car the detector calls a truck for a frame keeps its
        track).

        Returns (pairs (k, 2) of [track row, detection row], unmatched track rows, unmatched detection rows).
        """
        if not len(tracks) or not len(dets):
            return np.zeros((0, 2), int), tracks, dets
        # A track seen last frame is compared as the picture shows it, cut by its border like the detector's box;
        # a lost one whole, also past the border (as BoT-SORT compares): cut to the picture, a lost track mostly
        # out of view leaves a sliver at the border that any box there overlaps a little.
        expected = xywh_to_xyxy(self._mean[tracks, :4])
        seen = self._state[tracks] != LOST
        expected[seen] = self._in_picture(expected[seen])
        iou = box_iou(expected, boxes[dets])
        cost = 1.0 - (iou * score[dets][None, :] if fuse else iou)
        if not self.config.class_consistent:
            return self._match(tracks, dets, cost, max_cost)
        same = self._class[tracks][:, None] == class_id[dets][None, :]
        pairs, rest_tracks, rest_dets = self._match(tracks, dets, np.where(same, cost, _NEVER), max_cost)
        if not (across and len(rest_tracks) and len(rest_dets)):
            return pairs, rest_tracks, rest_dets
        keep_t, keep_d = np.isin(tracks, rest_tracks), np.isin(dets, rest_dets)
        # Across classes only where the boxes all but coincide: a class flicker on one object, not a hop to
        # a neighbour of another class (the person riding the bicycle, the car beside the motorcycle).
        near = iou[np.ix_(keep_t, keep_d)] >= self.config.cross_class_iou
        across_cost = np.where(near, cost[np.ix_(keep_t, keep_d)], _NEVER)
        across, rest_tracks, rest_dets = self._match(rest_tracks, rest_dets, across_cost, max_cost)
        return np.concatenate([pairs, across]), rest_tracks, rest_dets

    def _relink(self, time: float) -> np.ndarray:
        """Tracks confirmed this frame take over lost tracks they continue (within `relink_s`, the RELINK_
        gates, same class; an optimal one-to-one assignment by distance). Returns the lost rows taken over."""
        new = np.flatnonzero((self._state == TRACKED) & (self._id == 0))
        lost = np.flatnonzero(((self._state == LOST) | (self._state == RETIRED))
                              & (time - self._last_seen <= self.config.relink_s + 1e-9))
        if not len(new) or not len(lost):
            return np.zeros(0, int)
        # the lost tracks as predicted for this frame, against the new ones
        allowed, cost = self._motion_gate(lost, self._mean[new, :4], self._class[new], time, RELINK_HEIGHTS,
                                          RELINK_HEIGHTS_PER_S, RELINK_SIZE)
        allowed, cost = self._weigh_appearance(allowed, cost, lost, self._feat[new])
        pairs, _, _ = self._match(lost, new, np.where(allowed, cost, _NEVER), 2.0)
        self._id[pairs[:, 1]] = self._id[pairs[:, 0]]
        return pairs[:, 0]

    def _motion_gate(self, tracks: np.ndarray, boxes: np.ndarray, class_id: np.ndarray, time: float, heights: float,
                     per_s: float, size: float) -> tuple[np.ndarray, np.ndarray]:
        """Which of `boxes` (xywh, their classes) each of `tracks` (lost since `_last_seen`) may continue: of its
        class, its predicted centre within `heights` mean box heights plus `per_s` per second lost, its height
        within `size` times. Returns that mask and the distances as a fraction of their limit, (tracks, boxes)."""
        was = self._mean[tracks, :4]
        height = np.maximum((was[:, None, 3] + boxes[None, :, 3]) / 2, 1.0)  # a box may be 0 px high at the border
        distance = np.hypot(was[:, None, 0] - boxes[None, :, 0], was[:, None, 1] - boxes[None, :, 1]) / height
        limit = heights + per_s * (time - self._last_seen[tracks])[:, None]
        taller, shorter = np.maximum(was[:, None, 3], boxes[None, :, 3]), np.minimum(was[:, None, 3], boxes[None, :, 3])
        allowed = (distance <= limit) & (taller <= size * shorter) & (self._class[tracks][:, None] == class_id[None, :])
        return allowed, distance / limit

    def _appearance_of(self, embedding: np.ndarray | None) -> np.ndarray | None:
        """Detections' embeddings where the tracker uses them (appearance on, the tracks' kind), else None."""
        if self.config.appearance == "off" or embedding is None or not embedding.shape[1]:
            return None
        if self._feat.shape[1] != embedding.shape[1]:  # the first embeddings (or another embedder's): start over
            self._feat = np.zeros((len(self._state), embedding.shape[1]), np.float32)
        return embedding

    def _learn_appearance(self, rows: np.ndarray, detections: Detections, dets: np.ndarray) -> None:
        """Tracks `rows` take in the embeddings of their detections `dets` (confident ones only: a half-hidden
        object's low-score box shows mostly its occluder), as an EMA; a track's first embedding is its own."""
        embedding = self._appearance_of(detections.embedding)
        confident = detections.score[dets] >= self.config.track_high_thresh
        if embedding is None or not confident.any():
            return
        rows, new = rows[confident], embedding[dets[confident]]
        old = self._feat[rows]
        mixed = np.where(np.any(old, axis=1, keepdims=True), APPEARANCE_EMA * old + (1 - APPEARANCE_EMA) * new, new)
        self._feat[rows] = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)

    def _refind(self, tracks: np.ndarray, dets: np.ndarray, detections: Detections) -> tuple[np.ndarray, np.ndarray]:
        """Confirmed tracks no box overlapped (an object back from behind an occluder, or moved with the camera)
        against the high-score detections left: the nearest embeddings within a loose motion gate. Returns the
        pairs (track row, detection row) and the detections left."""
        embedding = self._appearance_of(detections.embedding)
        if embedding is None or not len(tracks) or not len(dets):
            return np.zeros((0, 2), int), dets
        # A box the border cuts is an object coming into view (a new one), and a small box's features are a
        # cell or two of the coarse maps: too alike between objects to tell them apart.
        box = detections.xyxy[dets]
        width, height = self._frame_size or (np.inf, np.inf)
        inside = dets[(box[:, :2] > BORDER_PX).all(axis=1) & (box[:, 2] < width - BORDER_PX)
                      & (box[:, 3] < height - BORDER_PX) & (box[:, 3] - box[:, 1] >= REFIND_MIN_PX)]
        allowed, _ = self._motion_gate(tracks, xyxy_to_xywh(detections.xyxy[inside]), detections.class_id[inside],
                                       self._time, REFIND_HEIGHTS, REFIND_HEIGHTS_PER_S, REFIND_SIZE)
        allowed &= np.any(self._feat[tracks], axis=1)[:, None]
        cost = np.where(allowed, 1.0 - self._feat[tracks] @ embedding[inside].T, _NEVER)
        pairs, _, _ = self._match(tracks, inside, cost, self.config.appearance_thresh)
        return pairs, np.setdiff1d(dets, pairs[:, 1])

    def _weigh_appearance(self, allowed: np.ndarray, cost: np.ndarray, tracks: np.ndarray,
                          feat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A motion gate and cost between `tracks` and candidates of appearance `feat`: where both appearances
        are known, the pair must also look alike (within `appearance_thresh`), and the cost adds that distance
        as a fraction of it."""
        if self.config.appearance == "off" or not feat.shape[1]:
            return allowed, cost
        known = np.any(self._feat[tracks], axis=1)[:, None] & np.any(feat, axis=1)[None, :]
        distance = (1.0 - self._feat[tracks] @ feat.T) / max(self.config.appearance_thresh, 1e-6)
        return allowed & (~known | (distance <= 1.0)), cost + np.where(known, distance, 0.0)

    def _in_picture(self, boxes: np.ndarray) -> np.ndarray:
        """Expected boxes as the picture shows them: cut by its border, as the detector's boxes are."""
        if self._frame_size is None:
            return boxes
        width, height = self._frame_size
        return np.clip(boxes, 0.0, [width, height, width, height])

    def _uncut(self, boxes: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Detections the picture's border cut, with each cut side put back where the track expects it (where
        that lies beyond the border): a box shrinking into the border is the object leaving view, not the
        object shrinking and moving, and the Kalman filter would learn that speed and keep it while lost."""
        if self._frame_size is None or not len(rows):
            return boxes
        width, height = self._frame_size
        expected = xywh_to_xyxy(self._mean[rows, :4])
        cut = np.column_stack([boxes[:, :2] <= BORDER_PX, boxes[:, 2] >= width - BORDER_PX,
                               boxes[:, 3] >= height - BORDER_PX])
        beyond = np.column_stack([expected[:, :2] < boxes[:, :2], expected[:, 2:] > boxes[:, 2:]])
        return np.where(cut & beyond, expected, boxes)

    @staticmethod
    def _match(tracks, dets, cost, max_cost):
        _, track_to_det, _ = lap.lapjv(cost, extend_cost=True)  # ByteTrack's solver; imports in 2 ms, scipy's 500
        ti = np.flatnonzero(track_to_det >= 0)
        di = track_to_det[ti]
        ok = cost[ti, di] <= max_cost
        ti, di = ti[ok], di[ok]
        pairs = np.stack([tracks[ti], dets[di]], axis=1)
        return pairs, np.delete(tracks, ti), np.delete(dets, di)

    def _add_tracks(self, boxes_xyxy: np.ndarray, state: int, time: float, class_id: np.ndarray,
                    score: np.ndarray) -> None:
        mean, cov = self._kf.initiate(xyxy_to_xywh(boxes_xyxy))
        n = len(mean)
        self._class = np.concatenate([self._class, class_id.astype(np.int64)])
        self._score = np.concatenate([self._score, score.astype(np.float32)])
        self._mean = np.concatenate([self._mean, mean])
        self._cov = np.concatenate([self._cov, cov])
        self._state = np.concatenate([self._state, np.full(n, state, np.int8)])
        self._id = np.concatenate([self._id, np.zeros(n, np.int64)])
        self._last_seen = np.concatenate([self._last_seen, np.full(n, time)])
        self._feat = np.concatenate([self._feat, np.zeros((n, self._feat.shape[1]), np.float32)])

    def _assign_ids(self) -> None:
        """Give each newly confirmed track the next id, so ids count confirmed objects only."""
        new = np.flatnonzero((self._state == TRACKED) & (self._id == 0))
        self._id[new] = np.arange(self._next_id, self._next_id + len(new))
        self._next_id += len(new)

    def _remove(self, drop: np.ndarray) -> None:
        if drop.any():
            keep = ~drop
            self._mean, self._cov = self._mean[keep], self._cov[keep]
            self._state, self._id, self._last_seen = self._state[keep], self._id[keep], self._last_seen[keep]
            self._class, self._score, self._feat = self._class[keep], self._score[keep], self._feat[keep]
