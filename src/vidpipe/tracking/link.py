"""Offline tracklet linking: for a file, once the whole video is known, join the pieces of one object.

A tracker decides online, frame by frame: an object hidden for longer than it keeps a lost track (ByteTrack:
2 s, relinked up to 3 s) comes back as a new track, and counts twice. For a file nothing has to be decided
before its end, so every track is summed up while the run goes (`TrackletLog`: its first and last boxes and
times, its class, its end velocity, and the mean of its boxes' appearance embeddings where the detector gives
them) and, when the input has ended, `link` joins each track that ends to at most one track that starts
later where it was heading, at its size and of its class (StrongSORT's AFLink idea, with plain gates instead
of its learned model, and its cosine appearance distance where both pieces have embeddings), away from the
picture's border and only where neither has a rival candidate. The chains of joined tracks are one object
each, under the id of their first track.

The gates were measured by bench/linking_mot17.py on MOT17 and bench/objects.py end to end (docs/evaluation.md):
without the border and rival-candidate rules the pass cost MOT17 up to 1.1 HOTA and 3 IDF1; with them it keeps
HOTA and costs 0.3 IDF1, and end to end it moved two object counts of eleven runs, one each way. That is no
win, so `--link online` is the default.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..detections import Detections

LINK_MODES = ("offline", "online", "off")  # a global pass at the end | the tracker's own relinking | neither
EDGE = 3  # detections at each end of a track that give its position, size and velocity


@dataclass(frozen=True)
class LinkSettings:
    """When a track that ends and one that starts later are one object."""

    max_gap_s: float = 6.0  # longest time between one piece's end and the next one's start
    distance: float = 0.5  # largest distance from where the first piece was heading, in box heights, plus...
    distance_per_s: float = 0.25  # ...this many heights per second of gap
    size_ratio: float = 1.4  # the pieces' heights differ by at most this factor
    appearance: float = 0.3  # where both pieces have embeddings: their cosine distance at most this...
    appearance_reach: float = 2.0  # ...and then the distance gate is this many times wider
    unique: bool = True  # join only where neither the end nor the start has a rival candidate (`_unambiguous`)
    border: float = 0.02  # a piece that ended (or started) this close to the picture's border (a fraction of
    # its size) left (or entered) the picture, and joins nothing there (< 0: no such gate)


@dataclass
class Tracklet:
    """One track as the linker sees it: its ends, its class, its mean appearance (None without embeddings)."""

    track_id: int
    class_id: int
    head: list = field(default_factory=list)  # the first EDGE (time, centre x, centre y, height)
    tail: deque = field(default_factory=lambda: deque(maxlen=EDGE))  # the last EDGE
    embedding_sum: np.ndarray | None = None  # of its boxes' embeddings, where the detector gives them
    first_box: np.ndarray | None = None  # (x1, y1, x2, y2): where it started and ended, against...
    last_box: np.ndarray | None = None
    frame_size: tuple[int, int] | None = None  # ...the picture's (width, height), where known

    def add(self, time: float, box: np.ndarray, class_id: int, embedding: np.ndarray | None) -> None:
        point = (time, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[3] - box[1])
        if self.first_box is None:
            self.first_box = box
        self.last_box = box
        if len(self.head) < EDGE:
            self.head.append(point)
        self.tail.append(point)
        self.class_id = class_id  # the track's voted class as of its latest detection
        if embedding is not None:
            self.embedding_sum = embedding.astype(np.float64) + (0 if self.embedding_sum is None else
                                                                 self.embedding_sum)

    @property
    def embedding(self) -> np.ndarray | None:
        """The mean of its boxes' embeddings, as a unit vector."""
        if self.embedding_sum is None:
            return None
        norm = float(np.linalg.norm(self.embedding_sum))
        return self.embedding_sum / norm if norm else None

    def velocity(self) -> np.ndarray:
        """Pixels per second of its centre over its last EDGE detections (0 when they share one time)."""
        (t0, x0, y0, _), (t1, x1, y1, _) = self.tail[0], self.tail[-1]
        return np.array([x1 - x0, y1 - y0]) / (t1 - t0) if t1 > t0 else np.zeros(2)


class TrackletLog:
    """Every track of a run, summed up from the tracked rows as they pass (the detected ones: predictions are
    no evidence); memory grows with the number of tracks, not frames."""

    def __init__(self) -> None:
        self.tracklets: dict[int, Tracklet] = {}

    def add(self, time: float, detections: Detections, frame_size: tuple[int, int] | None = None) -> None:
        seen = detections.is_tracked & detections.detected
        embeddings = detections.embedding  # (n, D) unit rows, where the detector gives them (else None)
        for i in np.flatnonzero(seen):
            track = int(detections.track_id[i])
            tracklet = self.tracklets.setdefault(track, Tracklet(track, int(detections.track_class[i])))
            tracklet.add(time, detections.xyxy[i], int(detections.track_class[i]),
                         None if embeddings is None else embeddings[i])
            tracklet.frame_size = frame_size

    def link(self, settings: LinkSettings | None = None, cuts: Sequence[float] = ()) -> dict[int, int]:
        return link(list(self.tracklets.values()), settings or LinkSettings(), cuts)


def link(tracklets: Sequence[Tracklet], settings: LinkSettings, cuts: Sequence[float] = ()) -> dict[int, int]:
    """{track id: the id of the first track of its chain}, only for the tracks that join an earlier one; never
    across one of `cuts` (the times the video cut to another shot).

    Each track's end joins at most one later start: candidate pairs within the gates, taken cheapest first
    (greedy: the candidates are few, and a long video's tracks need no square matrix)."""
    if len(tracklets) < 2:
        return {}
    pieces = sorted(tracklets, key=lambda t: t.head[0][0])
    starts = np.array([p.head[0][0] for p in pieces])
    following: dict[int, int] = {}
    taken: set[int] = set()
    candidates = _candidates(pieces, starts, settings)
    if len(cuts):
        shot = np.searchsorted(np.sort(np.asarray(cuts, float)), [p.head[0][0] for p in pieces], side="right")
        candidates = [c for c in candidates if shot[c[2]] == shot[c[3]]]
    if settings.border >= 0:
        candidates = [c for c in candidates if not _at_border(pieces[c[2]].last_box, pieces[c[2]].frame_size,
                                                              settings.border)
                      and not _at_border(pieces[c[3]].first_box, pieces[c[3]].frame_size, settings.border)]
    if settings.unique:
        candidates = _unambiguous(candidates, pieces)
    for *_, end, start in sorted(candidates):
        if end not in following and start not in taken:
            following[end] = start
            taken.add(start)
    new_id: dict[int, int] = {}
    for first in (i for i in following if i not in taken):  # walk each chain from its first piece
        piece = first
        while piece in following:
            piece = following[piece]
            new_id[pieces[piece].track_id] = pieces[first].track_id
    return new_id


def _candidates(pieces: Sequence[Tracklet], starts: np.ndarray, settings: LinkSettings) -> list[tuple]:
    """(cost, gap, end piece, start piece) of every pair within the gates (the shorter gap first where costs
    tie); the cost is the distance from where the first piece was heading over its gate, averaged with the
    appearance distance over its gate where both pieces have embeddings."""
    head = np.array([np.mean(p.head, axis=0) for p in pieces])  # time, x, y, height at each start
    embeddings = [p.embedding for p in pieces]
    pairs = []
    for a, piece in enumerate(pieces):
        end_t, end_x, end_y, end_h = np.mean(piece.tail, axis=0)
        last_t = piece.tail[-1][0]
        lo, hi = np.searchsorted(starts, [last_t, last_t + settings.max_gap_s], side="right")
        later = np.arange(lo, hi)
        if not len(later):
            continue
        gap = starts[later] - last_t
        heading = np.array([end_x, end_y]) + piece.velocity() * (head[later, 0] - end_t)[:, None]
        height = (end_h + head[later, 3]) / 2
        distance = np.hypot(*(heading - head[later, 1:3]).T) / np.maximum(height, 1e-6)
        reach = settings.distance + settings.distance_per_s * gap
        sizes = np.maximum(end_h, head[later, 3]) <= settings.size_ratio * np.minimum(end_h, head[later, 3])
        classes = np.array([pieces[b].class_id == piece.class_id for b in later])
        appearance = _appearance(embeddings[a], [embeddings[b] for b in later])
        known = ~np.isnan(appearance)
        alike = known & (appearance <= settings.appearance)
        reach = np.where(alike, reach * settings.appearance_reach, reach)
        allowed = (gap > 0) & sizes & classes & (distance <= reach) & ~(known & ~alike)
        cost = np.where(known, (distance / reach + appearance / settings.appearance) / 2, distance / reach)
        pairs += [(float(cost[k]), float(gap[k]), a, int(later[k])) for k in np.flatnonzero(allowed)]
    return pairs


def _unambiguous(candidates: list[tuple], pieces: Sequence[Tracklet]) -> list[tuple]:
    """The pairs where the end's first candidate start and the start's last candidate end name each other, and
    no other candidate of either is in view at the same time as that one (two objects, where a guess would
    join the wrong one as often as the right one). Candidates one after another are one chain, not a choice."""
    start_of = [p.head[0][0] for p in pieces]
    end_of = [p.tail[-1][0] for p in pieces]
    starts_for: dict[int, list[int]] = {}
    ends_for: dict[int, list[int]] = {}
    for *_, end, start in candidates:
        starts_for.setdefault(end, []).append(start)
        ends_for.setdefault(start, []).append(end)
    chosen_start = {end: first for end, options in starts_for.items()
                    for first in [min(options, key=start_of.__getitem__)]
                    if all(start_of[o] > end_of[first] for o in options if o != first)}
    chosen_end = {start: last for start, options in ends_for.items()
                  for last in [max(options, key=end_of.__getitem__)]
                  if all(end_of[o] < start_of[last] for o in options if o != last)}
    return [c for c in candidates if chosen_start.get(c[2]) == c[3] and chosen_end.get(c[3]) == c[2]]


def _at_border(box, size, margin: float) -> bool:
    if size is None:
        return False
    mx, my = margin * size[0], margin * size[1]
    return bool(box[0] <= mx or box[1] <= my or box[2] >= size[0] - mx or box[3] >= size[1] - my)


def _appearance(mine: np.ndarray | None, others: Sequence[np.ndarray | None]) -> np.ndarray:
    """Cosine distance from one mean embedding to each of `others` (NaN where either is missing)."""
    out = np.full(len(others), np.nan)
    if mine is None:
        return out
    for k, theirs in enumerate(others):
        if theirs is not None and len(theirs) == len(mine):
            out[k] = 1.0 - float(mine @ theirs)
    return out


def linked_ids(track_id: np.ndarray, links: Mapping[int, int]) -> np.ndarray:
    """Each row's linked id: `links[track]` where the track joined an earlier one, else its own id."""
    track_id = np.asarray(track_id, np.int64)
    if not links:
        return track_id.copy()
    keys = np.array(sorted(links), np.int64)
    values = np.array([links[k] for k in keys], np.int64)
    at = np.minimum(np.searchsorted(keys, track_id), len(keys) - 1)
    return np.where(keys[at] == track_id, values[at], track_id)
