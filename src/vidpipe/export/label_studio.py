"""Label Studio video object tracking: `tasks.json` (`tasks_<split>.json` with `--split`), one task per video
with the run's tracks as a prediction, and `config.xml`, the labeling config the tasks are made for.

Each vidpipe track is one `videorectangle` result: a keyframe (1-based frame: the source's index + 1, as
Label Studio numbers a video's frames) wherever the detector saw it, the box in percent of the frame. Label
Studio interpolates from an `enabled` keyframe to the next one; the last keyframe before the track was lost
(the next processed frame has no box of it), and its very last, are `enabled: false`, so the box is shown
there and not after, until it is found again."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError
from .runs import check_source, labels_used, tracks

VIDEO, BOX, LABELS = "video", "box", "videoLabels"  # the config's tag names the results refer to


class Writer:
    images = False

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder, self.absolute = folder, root.is_absolute()
        self._tasks: dict[str, list[dict]] = {}  # split: its tasks
        self._labels: list[str] = []
        self.tracks = self.boxes = 0

    def add(self, run, split: str, pictures: Mapping) -> None:
        summary = run.summary
        if summary["input"].get("kind") != "video":
            raise InputError(f"{run.folder}: Label Studio's video tasks need a video file, and its input "
                             f"{summary['input']['uri']} is {summary['input'].get('kind')}")
        source = check_source(run)  # the task names the video: it must be the one the frames were numbered in
        video = source if self.absolute else os.path.relpath(source, self.folder.resolve())
        results = [_result(track, rows, run) for track, rows in tracks(run)]
        self._tasks.setdefault(split, []).append({
            "data": {VIDEO: video, "fps": summary["input"]["fps"], "video_id": run.video_id},
            "predictions": [{
                "model_version": f"vidpipe {summary.get('vidpipe_version', '')} "
                                 f"{Path(summary['detector'].get('model') or summary['detector']['name']).name}",
                "score": round(float(run.rows["score"].mean()), 4) if len(run.rows) else 0.0,
                "result": results,
            }],
        })
        self._labels += [name for name in labels_used(run) if name not in self._labels]
        self.tracks += len(results)
        self.boxes += len(run.rows)

    def close(self) -> dict:
        for split, tasks in self._tasks.items():
            (self.folder / (f"tasks_{split}.json" if split else "tasks.json")).write_text(json.dumps(tasks, indent=1))
        (self.folder / "config.xml").write_text(config(self._labels))
        return {"videos": sum(len(tasks) for tasks in self._tasks.values()), "tracks": self.tracks,
                "boxes": self.boxes}


def config(labels: list[str]) -> str:
    """The labeling config: the classes as labels, the video at its task's own frame rate (`$fps`), boxes."""
    view = ET.Element("View")
    tag = ET.SubElement(view, "Labels", name=LABELS, toName=VIDEO)
    for name in labels:
        ET.SubElement(tag, "Label", value=name)
    ET.SubElement(view, "Video", name=VIDEO, value=f"${VIDEO}", frameRate="$fps")
    ET.SubElement(view, "VideoRectangle", name=BOX, toName=VIDEO)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def _result(track: int, rows, run) -> dict:
    """One track as a `videorectangle` result: its keyframes, and its class as its label."""
    width, height = run.size
    fps = float(run.summary["input"]["fps"])
    frames = rows["frame"].to_numpy(np.int64)
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    following = np.append(run.frames, -1)[np.searchsorted(run.frames, frames) + 1]  # -1 after the last
    sequence = [{
        "frame": int(frame) + 1, "enabled": bool(seen), "rotation": 0,
        "x": round(x1 / width * 100, 4), "y": round(y1 / height * 100, 4),
        "width": round((x2 - x1) / width * 100, 4), "height": round((y2 - y1) / height * 100, 4),
        "time": round((int(frame) + 1) / fps, 4),  # Label Studio's own: frame / frame rate
    } for frame, (x1, y1, x2, y2), seen in zip(frames, boxes, np.isin(following, frames))]
    return {
        "id": f"track-{track}", "type": "videorectangle", "from_name": BOX, "to_name": VIDEO, "origin": "prediction",
        "score": round(float(rows["score"].mean()), 4),
        "value": {"framesCount": run.frame_count, "duration": _duration(run, fps), "sequence": sequence,
                  "labels": [str(rows["label"].iloc[0])]},
    }


def _duration(run, fps: float) -> float:
    return float(run.summary["input"].get("duration_s") or run.frame_count / fps)
