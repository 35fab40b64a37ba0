"""What an export reads: a run's folder (or every video of a corpus), its rows after the user's filters, and
the exact pictures the detector saw, decoded again from the source at the rows' frame indices."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..sources import Sampling, open_source


@dataclass
class ExportRun:
    """One video's run: its id, its source, the model's class names, its processed frames and its boxes.

    `rows` has `frame, time_s, track_id, label, score, x1, y1, x2, y2`, one per box the detector gave (a
    tracker's predictions on skipped frames are left out: the tools interpolate between keyframes);
    `label` is the track's voted class as its vote ended (as in `tracks.parquet`) where the row is tracked."""

    video_id: str
    folder: Path
    summary: dict
    names: list[str]
    frames: np.ndarray  # the processed frames' source indices, in order
    rows: pd.DataFrame

    @property
    def size(self) -> tuple[int, int]:
        return self.summary["input"]["width"], self.summary["input"]["height"]

    @property
    def frame_count(self) -> int:
        """Frames in the source as a labeling tool numbers them (0 to count - 1)."""
        known = self.summary["input"].get("frame_count") or 0
        return int(max(known, int(self.frames.max()) + 1 if len(self.frames) else 0))


def find_runs(out: Path) -> list[tuple[str, Path]]:
    """(video id, folder) of a run (its input's name), or of a corpus's videos (OUT/videos/<id>/), by id."""
    if (out / "summary.json").is_file():
        return [(json.loads((out / "summary.json").read_text())["input"]["name"], out)]
    runs = sorted((p.parent.name, p.parent) for p in (out / "videos").glob("*/summary.json"))
    if not runs:
        raise InputError(f"{out} is neither a run's folder (with summary.json) nor a corpus (videos/<id>/)")
    return runs


def load_run(video_id: str, folder: Path, min_score: float, classes: Sequence[str] | None,
             every: int, confirmed_only: bool = False) -> ExportRun:
    """A run's rows after the filters, and every `every`th processed frame. `confirmed_only`: the boxes of
    objects only (tracks.parquet's `confirmed` tracks), the pre-labels a person would keep."""
    summary = json.loads((folder / "summary.json").read_text())
    names = list(summary["detector"].get("names") or [])
    detections, frames = _table(folder, "detections"), _table(folder, "frames")
    indices = np.unique(frames["frame"].to_numpy(np.int64))[::every]
    rows = detections[detections["detected"].astype(bool) & (detections["score"] >= min_score)]
    if confirmed_only:
        rows = rows[rows["track_id"].isin(_confirmed_tracks(folder))]
    rows = rows.assign(label=rows["class_name"].astype(str))
    if "track_class" in rows:  # a track's boxes all carry its class as the vote ended (tracks.parquet's)
        voted = detections.sort_values("frame", kind="stable").groupby("track_id")["track_class"].last()
        tracked = rows["track_id"] >= 0
        rows.loc[tracked, "label"] = rows.loc[tracked, "track_id"].map(voted).astype(str)
    if classes:
        rows = rows[rows["label"].isin(classes)]
    rows = rows[rows["frame"].isin(indices)]
    names = names or sorted(set(rows["label"]))
    unknown = sorted(set(rows["label"]) - set(names))
    if unknown:
        raise InputError(f"{folder}: classes {', '.join(unknown)} are not among the model's names")
    columns = ["frame", "time_s", "track_id", "label", "score", "x1", "y1", "x2", "y2"]
    return ExportRun(video_id, folder, summary, names, indices, rows[columns].reset_index(drop=True))


def _confirmed_tracks(folder: Path) -> set[int]:
    """The ids of the run's objects: its confirmed tracks."""
    if not any((folder / f"tracks.{ext}").is_file() for ext in ("parquet", "csv")):
        raise InputError(f"{folder}: --confirmed-only needs a tracked run (this one has no tracks table)")
    tracks = _table(folder, "tracks")
    if "confirmed" not in tracks:
        raise InputError(f"{folder}: its tracks table has no confirmed column (a run made before vidpipe 0.1.0); "
                         "run it again, or export without --confirmed-only")
    return set(tracks.loc[tracks["confirmed"].astype(bool), "track_id"].astype(int))


def _table(folder: Path, name: str) -> pd.DataFrame:
    for path in (folder / f"{name}.parquet", folder / f"{name}.csv"):
        if path.is_file():
            return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    raise InputError(f"{folder} has no {name} table ({name}.parquet or .csv)")


def check_source(run: ExportRun) -> str:
    """The run's source, refused where it has moved or changed since the run (its pictures would not be the
    ones the rows describe)."""
    given = run.summary["input"]
    identity = given.get("file")
    if identity is None:
        raise InputError(f"{run.folder}: its input {given['uri']} is not a local file or folder vidpipe recorded, "
                         "so its frames cannot be checked and decoded again")
    path = identity["path"]
    if not os.path.exists(path):
        raise InputError(f"{run.folder}: its source {path} is not there any more (moved or deleted)")
    stat = os.stat(path)
    if (stat.st_size, stat.st_mtime_ns) != (identity["size_bytes"], identity["mtime_ns"]):
        raise InputError(f"{run.folder}: its source {path} has changed since the run (its size or modification "
                         "time differs): run vidpipe on it again")
    return path


def pictures(run: ExportRun, source: str, wanted: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """The pictures at `wanted` source indices, decoded with the run's own frame selection, so exactly the
    frames it processed (exact sampled decoding skips the rest), upright as the detector saw them."""
    sampling = Sampling(**{k: v for k, v in run.summary["sampling"].items() if k != "effective_fps"})
    todo = set(wanted.tolist())
    reader = open_source(source, sampling)
    try:
        for frame in reader:
            if frame.index in todo:
                todo.discard(frame.index)
                yield frame.index, frame.image
                if not todo:
                    return
    finally:
        reader.close()


def assign_splits(video_ids: Sequence[str], split: str | None) -> dict[str, str]:
    """Each video's split (`train=0.8,val=0.2`), whole videos only so near-identical frames never straddle two:
    videos in an order fixed by a hash of their ids fill the splits in turn by their shares."""
    if not split:
        return {video: "" for video in video_ids}
    shares = _parse_split(split)
    order = sorted(video_ids, key=lambda v: hashlib.sha1(v.encode()).hexdigest())
    total, bounds, names = sum(shares.values()), [], list(shares)
    running = 0.0
    for name in names:
        running += shares[name] / total
        bounds.append(running)
    return {video: names[min(int(np.searchsorted(bounds, (i + 0.5) / len(order))), len(names) - 1)]
            for i, video in enumerate(order)}


def _parse_split(split: str) -> dict[str, float]:
    shares = {}
    for part in split.split(","):
        name, _, share = part.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = float("nan")
        if not name.strip().isidentifier() or not 0 < value < float("inf"):
            raise InputError(f"--split takes NAME=SHARE,... with positive shares (train=0.8,val=0.2), got {split!r}")
        shares[name.strip()] = value
    return shares


def tracks(run: ExportRun) -> list[tuple[int, pd.DataFrame]]:
    """The run's boxes as tracks, by id and frame: an untracked box (`--tracker none`, or too weak for a
    track) is a track of its own, numbered after the real ones."""
    rows = run.rows.sort_values(["track_id", "frame"], kind="stable")
    tracked = rows[rows["track_id"] >= 0]
    first_free = int(tracked["track_id"].max()) + 1 if len(tracked) else 1
    loose = rows[rows["track_id"] < 0]
    return ([(int(track), group) for track, group in tracked.groupby("track_id", sort=True)]
            + [(first_free + i, loose.iloc[[i]]) for i in range(len(loose))])


def labels_used(run: ExportRun) -> list[str]:
    """The classes the boxes name, in the model's order: the labels a labeling task needs."""
    used = set(run.rows["label"])
    return [name for name in run.names if name in used]
