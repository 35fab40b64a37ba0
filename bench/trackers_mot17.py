"""Tracker benchmark on MOT17: vidpipe's ByteTrack against ultralytics' and Roboflow's trackers.

Every tracker sees the same detections (each sequence's det/det.txt, a real detector's output for every
frame), runs with its library's defaults at the sequence's frame rate, and is scored against gt/gt.txt by
the same code (`vidpipe.evaluation.mot.score`: TrackEval for HOTA, py-motmetrics for MOTA/IDF1/IDSW).
ms/frame is the time spent in each tracker's update call, input conversion included. ultralytics' BoT-SORT
runs without ReID and without camera-motion compensation: there are no images to compute them from.

    pip install -e '.[bench]'
    python bench/trackers_mot17.py ../shared/data/mot/MOT17/train
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from machine import describe

from vidpipe.detections import Detections
from vidpipe.evaluation import mot
from vidpipe.evaluation.motchallenge import PEDESTRIAN, MotSequence
from vidpipe.tracking import DET_TXT_NEW_TRACK_THRESH, ByteTrack


class UltralyticsTracker:
    """ultralytics' BYTETracker or BOTSORT with the defaults of its tracker YAML, built as `yolo track` builds
    them (ultralytics 8.4 counts its lost-track buffer in frames, whatever the frame rate)."""

    def __init__(self, kind: str, fps: float) -> None:
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker
        from ultralytics.utils import YAML, IterableSimpleNamespace
        from ultralytics.utils.checks import check_yaml

        args = IterableSimpleNamespace(**YAML.load(check_yaml(f"{kind}.yaml")))
        if kind == "botsort":
            args.gmc_method, args.with_reid = "none", False  # no images: no camera-motion estimate, no ReID
        self._tracker = (BOTSORT if kind == "botsort" else BYTETracker)(args)

    def update(self, detections: Detections, time: float | None = None, frame_size=None) -> Detections:
        from ultralytics.engine.results import Boxes

        data = np.hstack([detections.xyxy, detections.score[:, None], detections.class_id[:, None]])
        out = self._tracker.update(Boxes(data, orig_shape=(10_000, 10_000)))
        out = np.asarray(out).reshape(-1, 8)  # x1, y1, x2, y2, id, score, class, detection index
        return Detections(out[:, :4], out[:, 5], out[:, 6], PEDESTRIAN, out[:, 4])


class RoboflowByteTrack:
    """Roboflow `trackers` ByteTrackTracker with its defaults."""

    def __init__(self, fps: float) -> None:
        from trackers import ByteTrackTracker

        self._tracker = ByteTrackTracker(frame_rate=fps)

    def update(self, detections: Detections, time: float | None = None, frame_size=None) -> Detections:
        import supervision as sv

        out = self._tracker.update(sv.Detections(detections.xyxy.copy(), confidence=detections.score.copy(),
                                                 class_id=detections.class_id.copy()))
        keep = out.tracker_id >= 0  # -1: not yet confirmed
        return Detections(out.xyxy[keep], out.confidence[keep], out.class_id[keep], PEDESTRIAN,
                          out.tracker_id[keep] + 1)  # MOTChallenge ids start at 1


TRACKERS = {
    "vidpipe ByteTrack": lambda fps: ByteTrack(fps=fps, new_track_thresh=DET_TXT_NEW_TRACK_THRESH),
    "ultralytics ByteTrack": lambda fps: UltralyticsTracker("bytetrack", fps),
    "ultralytics BoT-SORT": lambda fps: UltralyticsTracker("botsort", fps),
    "Roboflow ByteTrack": lambda fps: RoboflowByteTrack(fps),
}


def benchmark(sequence_dirs: list[Path], out_dir: Path) -> pd.DataFrame:
    sequences = [MotSequence.open(d) for d in sequence_dirs]
    tables = []
    for name, make in TRACKERS.items():
        runs = []
        for sequence in sequences:
            tracks = out_dir / name.replace(" ", "_") / f"{sequence.name}.txt"
            runs.append(mot.track(sequence, make(sequence.fps), sequence.detections(), tracks))
        table = mot.score(runs)
        table.insert(0, "tracker", name)
        tables.append(table)
        print(f"{name}: combined HOTA {table.iloc[-1]['HOTA']:.2f}, IDF1 {table.iloc[-1]['IDF1']:.2f}",
              file=sys.stderr)
    return pd.concat(tables, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mot_root", type=Path, help="folder holding MOT17-XX sequence folders")
    parser.add_argument("--out", type=Path, help="keep the track files and results.csv here")
    parser.add_argument("--detect-every", type=int, nargs="*", default=[1, 2, 3],
                        help="also score vidpipe with only every Kth frame's detections (the tracker predicts the "
                             "rest; every frame is scored)")
    args = parser.parse_args()
    print(describe())
    dirs = sorted(p for p in args.mot_root.iterdir() if (p / "det" / "det.txt").is_file())
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        results = benchmark(dirs, out)
        if args.out:
            results.to_csv(out / "results.csv", index=False)
    pd.set_option("display.width", 200)
    metrics = ["HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "Frag", "ms_per_frame"]
    print(results.pivot(index="sequence", columns="tracker", values=["HOTA", "IDF1"]).round(2).to_string())
    print()
    combined = results[results["sequence"] == mot.COMBINED].set_index("tracker")[metrics].round(3)
    print(combined.to_string())
    ours = combined.loc["vidpipe ByteTrack"]
    peers = combined.drop(index="vidpipe ByteTrack")
    print()
    for metric in ("HOTA", "IDF1"):
        best = peers[metric].idxmax()
        print(f"{metric}: vidpipe {ours[metric]:.2f} vs best peer {peers[metric].max():.2f} ({best}): "
              f"{ours[metric] - peers[metric].max():+.2f}")
    fastest = peers["ms_per_frame"].idxmin()
    print(f"ms/frame: vidpipe {ours['ms_per_frame']:.3f} vs fastest peer {peers['ms_per_frame'].min():.3f} "
          f"({fastest}): ratio {ours['ms_per_frame'] / peers['ms_per_frame'].min():.2f}")
    if args.detect_every:
        print("\nvidpipe ByteTrack with the detections of every Kth frame only (--detect-every K; the tracker "
              "predicts the frames between, every frame is scored):")
        sequences = [MotSequence.open(d) for d in dirs]
        with tempfile.TemporaryDirectory() as tmp:
            for k in args.detect_every:
                runs = [mot.track(s, TRACKERS["vidpipe ByteTrack"](s.fps), mot.every_kth(s.detections(), k),
                                  Path(tmp) / f"k{k}-{s.name}.txt") for s in sequences]
                row = mot.score(runs).iloc[-1]
                print(f"  K={k}: HOTA {row['HOTA']:.2f}, IDF1 {row['IDF1']:.2f}, MOTA {row['MOTA']:.2f} "
                      f"({row['HOTA'] - ours['HOTA']:+.2f} HOTA against every frame)")


if __name__ == "__main__":
    main()
