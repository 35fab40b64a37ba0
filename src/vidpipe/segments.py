"""Per-segment summaries of a video's detections, in YouTube-8M's shape (5-second segments by default).

One row per (segment, class seen in it): `video_id, segment, start_s, end_s, class_name, max_score,
mean_count, frames_present`. Segment k covers [k * seconds, (k + 1) * seconds) of video time, so rows join
with YouTube-8M segment labels on (video_id, start_s). `mean_count` averages the class's count over the
segment's processed frames, empty ones included; `frames_present` counts frames with at least one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
