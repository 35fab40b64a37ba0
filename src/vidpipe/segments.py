"""Summaries of a video's detections over time, in YouTube-8M's shapes: per segment (5 seconds by
default), per frame and class (`presence_table`), and seconds present per class (`seconds_present`).

One row per (segment, class seen in it): `video_id, segment, start_s, end_s, class_name, max_score,
mean_count, frames_present`. Segment k covers [k * seconds, (k + 1) * seconds) of video time, so rows join
with YouTube-8M segment labels on (video_id, start_s). `mean_count` averages the class's count over the
segment's processed frames, empty ones included; `frames_present` counts frames with at least one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

COLUMNS = ["video_id", "segment", "start_s", "end_s", "class_name", "max_score", "mean_count", "frames_present"]
YT8M_SEGMENT_SECONDS = 5.0


def segment_table(video_id: str, detections: pd.DataFrame, frames: pd.DataFrame,
                  seconds: float = YT8M_SEGMENT_SECONDS) -> pd.DataFrame:
    """Segments of one video from its detection table (frame, time_s, class_name, score) and its per-frame
    table (frame, time_s: every processed frame, empty ones too)."""
    if seconds <= 0:
        raise ValueError(f"segment length must be positive, got {seconds}")
    frame_segment = np.floor(frames["time_s"].to_numpy() / seconds + 1e-9).astype(np.int64)
    frames_per_segment = pd.Series(frame_segment).value_counts()
    if detections.empty:
        return _typed(pd.DataFrame(columns=COLUMNS))
    dets = detections.assign(segment=np.floor(detections["time_s"].to_numpy() / seconds + 1e-9).astype(np.int64))
    per_frame = dets.groupby(["segment", "class_name", "frame"], sort=True).agg(count=("score", "size"),
                                                                                  best=("score", "max"))
    table = per_frame.groupby(level=["segment", "class_name"]).agg(
        max_score=("best", "max"), total=("count", "sum"), frames_present=("count", "size")).reset_index()
    table["mean_count"] = table["total"] / table["segment"].map(frames_per_segment).to_numpy()
    table["start_s"] = table["segment"] * seconds
    table["end_s"] = table["start_s"] + seconds
    table["video_id"] = video_id
    return _typed(table[COLUMNS])


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    """The same dtypes whether or not anything was detected, so tables of many videos concatenate cleanly."""
    return table.astype({"video_id": "string", "segment": "int64", "start_s": "float64", "end_s": "float64",
                         "class_name": "string", "max_score": "float32", "mean_count": "float64",
                         "frames_present": "int64"}).reset_index(drop=True)


PRESENCE_COLUMNS = ["video_id", "frame", "time_s", "class_name", "count", "p_any", "max_score"]


def presence_table(video_id: str, detections: pd.DataFrame) -> pd.DataFrame:
    """Every class's presence in every processed frame, long and sparse: one row per (frame, class) with at
    least one detection: its count, `p_any` = 1 - prod(1 - score) (the chance at least one is really there)
    and its best score. With `--sample-fps` the detections' `target_s` (each frame's slot) comes along: at 1
    fps these rows join YouTube-8M's 1 fps frame features on (video_id, target_s), at any frame rate; a class
    absent from a frame has no row (its count is 0, its p_any 0)."""
    columns = presence_columns("target_s" in detections)
    if detections.empty:
        return _typed_presence(pd.DataFrame(columns=columns))
    miss = np.log1p(-detections["score"].clip(upper=1 - 1e-7).to_numpy(np.float64))
    grouped = detections.assign(miss=miss).groupby(["frame", "class_name"], sort=True)
    slots = {"target_s": ("target_s", "first")} if "target_s" in detections else {}
    table = grouped.agg(time_s=("time_s", "first"), **slots, count=("score", "size"), max_score=("score", "max"),
                        miss=("miss", "sum")).reset_index()
    table["p_any"] = 1 - np.exp(table["miss"])
    table["video_id"] = video_id
    return _typed_presence(table[columns])


def presence_columns(target: bool = False) -> list[str]:
    """The presence table's columns; `target` adds `target_s` after `time_s` (with --sample-fps)."""
    return [*PRESENCE_COLUMNS[:3], "target_s", *PRESENCE_COLUMNS[3:]] if target else PRESENCE_COLUMNS


def seconds_present(frames: pd.DataFrame, classes: list[str], end_s: float | None = None) -> dict[str, float]:
    """Seconds of the video in which each class was seen: each processed frame stands for the time until the
    next one (the last, for the median interval, but not past `end_s`, where the video ends: a 30.08 s clip
    sampled at 1 fps has 31 frames, not 31 seconds), summed over the frames with the class (`n_<class>` > 0)."""
    from .sinks import column_name

    times = frames["time_s"].to_numpy(np.float64)
    if len(times) == 0:
        return {name: 0.0 for name in classes}
    gaps = np.diff(times)
    last = float(np.median(gaps)) if len(gaps) else 0.0
    if end_s is not None:
        last = min(last, max(end_s - times[-1], 0.0))
    span = np.append(gaps, last)
    out = {}
    for name in classes:
        column = f"n_{column_name(name)}"
        out[name] = round(float(span[frames[column].to_numpy() > 0].sum()), 3) if column in frames else 0.0
    return out


def _typed_presence(table: pd.DataFrame) -> pd.DataFrame:
    slots = {"target_s": "float64"} if "target_s" in table else {}
    return table.astype({"video_id": "string", "frame": "int64", "time_s": "float64", **slots, "class_name": "string",
                         "count": "int64", "p_any": "float64", "max_score": "float32"}).reset_index(drop=True)


def presence_schema(target: bool = False) -> pa.Schema:
    """presence.parquet's columns as Arrow reads them back (what `pa.Table.from_pandas` makes of the table)."""
    empty = _typed_presence(pd.DataFrame(columns=presence_columns(target)))
    return pa.Schema.from_pandas(empty, preserve_index=False)
