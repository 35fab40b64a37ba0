"""Appearance-free tracklet linking (StrongSORT's AFLink idea, plain gates instead of its learned model),
measured on MOT17: it is not part of vidpipe, because on MOT17 it costs HOTA and IDF1, with or without the
tracker's own online relinking (`relink_s`), which it runs on top of.

A tracklet that ends and one that starts a little later, where the first one's motion would have taken it,
at about its size (and of its class), are taken for one object: each end joins at most one start (an optimal
assignment) and the chains take the first piece's id. vidpipe's ByteTrack runs on each sequence's
det/det.txt, its tracks are linked with each setting, and every version is scored by the same code as
`vidpipe eval mot` (TrackEval HOTA, py-motmetrics IDF1 and ID switches).

    pip install -e '.[eval]'
    python bench/linking_mot17.py ../shared/data/mot/MOT17/train
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import lap
import numpy as np
from machine import describe

from vidpipe.evaluation import mot
from vidpipe.evaluation.motchallenge import MotSequence, read_mot_file
from vidpipe.tracking import ByteTrack

EDGE = 3  # observations at each end of a tracklet that give its position, size and velocity


@dataclass(frozen=True)
class LinkSettings:
    max_gap_s: float = 3.0  # longest time between one piece's end and the next one's start
    distance: float = 0.75  # largest distance from where the first piece was heading, in box heights, plus...
    distance_per_s: float = 0.5  # ...this many heights per second of gap
    size_ratio: float = 1.4  # the pieces' heights differ by at most this factor


def link(track_id: np.ndarray, time_s: np.ndarray, xyxy: np.ndarray, class_id: np.ndarray | None = None,
         settings: LinkSettings = LinkSettings()) -> dict[int, int]:
    """For rows of tracked boxes (any order), the id each track should carry: {old id: new id}, only for the
    ids that change. `class_id` (the track's class) keeps pieces of different classes apart."""
    track_id, time_s = np.asarray(track_id), np.asarray(time_s, np.float64)
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    classes = np.zeros(len(track_id), np.int64) if class_id is None else np.asarray(class_id)
    pieces = _pieces(track_id, time_s, xyxy, classes)
    if len(pieces) < 2:
        return {}
    ids = np.array([p[0] for p in pieces])
    start_t, end_t = np.array([p[1] for p in pieces]), np.array([p[2] for p in pieces])
    start_c, end_c = np.array([p[3] for p in pieces]), np.array([p[4] for p in pieces])
    start_h, end_h = np.array([p[5] for p in pieces]), np.array([p[6] for p in pieces])
    velocity, cls = np.array([p[7] for p in pieces]), np.array([p[8] for p in pieces])

    gap = start_t[None, :] - end_t[:, None]  # [end piece, start piece]
    heading = end_c[:, None, :] + velocity[:, None, :] * gap[..., None]
    height = (end_h[:, None] + start_h[None, :]) / 2
    distance = np.linalg.norm(heading - start_c[None, :, :], axis=2) / height
    allowed = ((gap > 0) & (gap <= settings.max_gap_s) & (cls[:, None] == cls[None, :])
               & (np.maximum(end_h[:, None], start_h[None, :]) <= settings.size_ratio
                  * np.minimum(end_h[:, None], start_h[None, :]))
               & (distance <= settings.distance + settings.distance_per_s * gap))
    if not allowed.any():
        return {}
    cost = np.where(allowed, distance / (settings.distance + settings.distance_per_s * np.maximum(gap, 0)), 2.0)
    _, end_to_start, _ = lap.lapjv(cost, extend_cost=True)
    following = {}
    for end, start in enumerate(end_to_start):
        if start >= 0 and allowed[end, start]:
            following[int(ids[end])] = int(ids[start])
    new_id: dict[int, int] = {}
    starts = set(following.values())
    for first in (i for i in following if i not in starts):  # walk each chain from its first piece
        piece = first
        while piece in following:
            piece = following[piece]
            new_id[piece] = first
    return new_id


def _pieces(track_id, time_s, xyxy, classes) -> list[tuple]:
    """(id, start time, end time, start centre, end centre, start height, end height, end velocity per second,
    class) of every track."""
    order = np.lexsort((time_s, track_id))
    track_id, time_s, xyxy, classes = track_id[order], time_s[order], xyxy[order], classes[order]
    bounds = np.flatnonzero(np.diff(track_id)) + 1
    pieces = []
    for rows in np.split(np.arange(len(track_id)), bounds):
        if not len(rows):
            continue
        centre = (xyxy[rows, :2] + xyxy[rows, 2:]) / 2
        height = xyxy[rows, 3] - xyxy[rows, 1]
        head, tail = rows[:EDGE], rows[-EDGE:]
        span = time_s[tail[-1]] - time_s[tail[0]]
        velocity = (centre[-1] - centre[-len(tail)]) / span if span > 0 else np.zeros(2)
        pieces.append((int(track_id[rows[0]]), time_s[rows[0]], time_s[rows[-1]], centre[:len(head)].mean(axis=0),
                       centre[-len(tail):].mean(axis=0), float(height[:len(head)].mean()),
                       float(height[-len(tail):].mean()), velocity, int(np.bincount(classes[rows]).argmax())))
    return pieces


SETTINGS = [LinkSettings(), LinkSettings(max_gap_s=2, distance=0.5, distance_per_s=0.25),
            LinkSettings(max_gap_s=5, distance=1.0, distance_per_s=0.5),
            LinkSettings(max_gap_s=1.5, distance=0.3, distance_per_s=0.1),
            LinkSettings(max_gap_s=3, distance=0.3, distance_per_s=0.1, size_ratio=1.2)]


def linked(run: mot.TrackedSequence, settings: LinkSettings, folder: Path) -> mot.TrackedSequence:
    rows = read_mot_file(run.tracks_file).copy()
    xyxy = np.hstack([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]])
    mapping = link(rows[:, 1].astype(int), (rows[:, 0] - 1) / run.sequence.fps, xyxy, None, settings)
    rows[:, 1] = [mapping.get(int(i), int(i)) for i in rows[:, 1]]
    out = folder / f"{run.sequence.name}.txt"
    np.savetxt(out, rows, fmt="%d,%d,%.2f,%.2f,%.2f,%.2f,%.3f,%d,%d,%d")
    return mot.TrackedSequence(run.sequence, out, run.frames, run.tracker_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path, help="a MOT17 train folder (sequences with det/ and gt/)")
    args = parser.parse_args()
    print(describe())
    work = Path(tempfile.mkdtemp(prefix="vidpipe-linking-"))
    runs = []
    for folder in sorted(p for p in args.train.iterdir() if (p / "gt" / "gt.txt").is_file()):
        sequence = MotSequence.open(folder)
        runs.append(mot.track(sequence, ByteTrack(fps=sequence.fps), sequence.detections(),
                              work / f"{sequence.name}.txt"))
    print("\n| linking | HOTA | IDF1 | ID sw. |\n|---|---|---|---|")
    rows = [("none (vidpipe)", runs)]
    for n, settings in enumerate(SETTINGS):
        (work / str(n)).mkdir()
        rows.append((f"gap <= {settings.max_gap_s:g} s, {settings.distance:g} + {settings.distance_per_s:g}/s "
                     f"heights, size x{settings.size_ratio:g}", [linked(r, settings, work / str(n)) for r in runs]))
    for name, version in rows:
        combined = mot.score(version).iloc[-1]
        print(f"| {name} | {combined['HOTA']:.2f} | {combined['IDF1']:.2f} | {combined['IDSW']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
