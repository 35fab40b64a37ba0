"""One object, one track, one class: what class-consistent association and the cross-class merge change.

Runs `vidpipe run` (tables only) on each clip with both on (the defaults), each off alone, and both off, and
prints per clip: tracks, tracks shorter than 1 s, the median track length, and the share of tracks whose
voted class changes during their life (a track hopping between a cyclist's person and bicycle boxes, or a
vehicle called car and truck).

    python bench/identity.py ../shared/sample_videos/street-montage.mp4 ../shared/sample_videos/walkway-pedestrians.mp4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pandas as pd
from machine import describe

import vidpipe

SETTINGS = {
    "defaults (class-consistent, merge 0.85)": {},
    "class-consistent off": {"trackers": {"bytetrack": {"class_consistent": False}}},
    "merge off": {"merge_iou": 0.0},
    "both off (before)": {"trackers": {"bytetrack": {"class_consistent": False}}, "merge_iou": 0.0},
}


def class_changes(detections: pd.DataFrame) -> tuple[int, int]:
    """Tracks, and tracks whose voted class (`track_class`) takes more than one value over their life."""
    voted = detections[detections["track_id"] >= 0].sort_values("frame").groupby("track_id")["track_class"]
    return voted.ngroups, int((voted.nunique() > 1).sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", type=Path)
    args = parser.parse_args()
    print(describe())
    print("\n| clip | settings | tracks | shorter than 1 s | median length s | voted class changes |\n"
          "|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            for name, settings in SETTINGS.items():
                out = Path(tmp) / f"{clip.stem}-{len(name)}"
                result = vidpipe.run(clip, out, video=False, report=False, mot=False, **settings)
                detections = pd.read_parquet(result.outputs["detections"])
                tracks = pd.read_parquet(result.outputs["tracks"])
                n, changed = class_changes(detections)
                print(f"| {clip.stem} | {name} | {n} | {int((tracks['duration_s'] < 1).sum())} | "
                      f"{tracks['duration_s'].median():.2f} | {changed} ({100 * changed / max(n, 1):.1f}%) |",
                      flush=True)


if __name__ == "__main__":
    main()
