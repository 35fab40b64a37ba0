"""Offline tracklet linking (`vidpipe.tracking.link`, `--link offline`) measured on MOT17 det.txt.

vidpipe's ByteTrack runs on each sequence's det/det.txt (with its own online relinking, `relink_s`: `--link
online`, and without it: `--link off`), its tracks are linked offline with each setting (without relinking:
the shipped one), and every version is scored by the same code as `vidpipe eval mot` (TrackEval HOTA,
py-motmetrics IDF1 and ID switches). det.txt has no pixels, so no appearance embeddings: this measures the
motion gates alone. The targets are the tracker's own scores (HOTA 50.89, IDF1 59.82).

    pip install -e '.[eval]'
    python bench/linking_mot17.py ../shared/data/mot/MOT17/train
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from machine import describe

from vidpipe.detections import Detections
from vidpipe.evaluation import mot
from vidpipe.evaluation.motchallenge import MotSequence, read_mot_file
from vidpipe.tracking import DET_TXT_NEW_TRACK_THRESH, ByteTrack
from vidpipe.tracking.link import LinkSettings, TrackletLog

SETTINGS = [LinkSettings(), LinkSettings(unique=False), LinkSettings(border=-1.0),
            LinkSettings(unique=False, border=-1.0), LinkSettings(max_gap_s=3), LinkSettings(max_gap_s=10),
            LinkSettings(distance=0.25, distance_per_s=0.1)]


def linked(run: mot.TrackedSequence, settings: LinkSettings, folder: Path) -> mot.TrackedSequence:
    rows = read_mot_file(run.tracks_file).copy()
    log = TrackletLog()
    for frame in np.unique(rows[:, 0]):
        here = rows[rows[:, 0] == frame]
        boxes = np.hstack([here[:, 2:4], here[:, 2:4] + here[:, 4:6]])
        log.add((frame - 1) / run.sequence.fps, Detections(boxes, here[:, 6], np.zeros(len(here)), ("person",),
                                                           track_id=here[:, 1]), run.sequence.size)
    mapping = log.link(settings)
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
    print("\n| tracker | offline linking | HOTA | IDF1 | ID sw. | tracks |\n|---|---|---|---|---|---|")
    for online, relink_s in (("online relinking (--link online)", 3.0), ("no relinking (--link off)", 0.0)):
        runs = []
        for folder in sorted(p for p in args.train.iterdir() if (p / "gt" / "gt.txt").is_file()):
            sequence = MotSequence.open(folder)
            tracker = ByteTrack(fps=sequence.fps, new_track_thresh=DET_TXT_NEW_TRACK_THRESH, relink_s=relink_s)
            runs.append(mot.track(sequence, tracker, sequence.detections(), work / f"{sequence.name}-{relink_s}.txt"))
        versions = [("none", runs)]
        for n, settings in enumerate(SETTINGS if relink_s else SETTINGS[:1]):
            folder = work / f"{relink_s}-{n}"
            folder.mkdir()
            versions.append((describe_settings(settings), [linked(r, settings, folder) for r in runs]))
        for name, version in versions:
            combined = mot.score(version).iloc[-1]
            tracks = sum(len(np.unique(read_mot_file(r.tracks_file)[:, 1])) for r in version)
            print(f"| {online} | {name} | {combined['HOTA']:.2f} | {combined['IDF1']:.2f} | "
                  f"{combined['IDSW']:.0f} | {tracks} |", flush=True)


def describe_settings(settings: LinkSettings) -> str:
    """A setting as its differences from the shipped one."""
    changed = [f"{k} {v}" for k, v in vars(settings).items() if v != getattr(LinkSettings(), k)]
    return "shipped" + (f", {', '.join(changed)}" if changed else "")


if __name__ == "__main__":
    main()
