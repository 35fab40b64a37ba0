"""CVAT for video 1.1 XML, one `<video>/annotations.xml` per video (a CVAT task from that video imports it):
one `<track>` per vidpipe track, a keyframe box on every frame the detector saw it, and an `outside` box on
the first processed frame after each stretch where it was seen, where the detector lost it. CVAT interpolates
between keyframes, so a run at 1 fps gives a track on every frame."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .runs import labels_used, tracks


class Writer:
    images = False

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self.videos = self.tracks = self.boxes = 0

    def add(self, run, split: str, pictures: Mapping) -> None:
        root = ET.Element("annotations")
        ET.SubElement(root, "version").text = "1.1"
        root.append(_meta(run))
        for number, (_, rows) in enumerate(tracks(run)):
            element = ET.SubElement(root, "track", id=str(number), label=str(rows["label"].iloc[0]), source="auto")
            for frame, box, outside in _boxes(rows, run.frames):
                x1, y1, x2, y2 = box
                ET.SubElement(element, "box", frame=str(frame), keyframe="1", outside=str(int(outside)),
                              occluded="0", xtl=f"{x1:.2f}", ytl=f"{y1:.2f}", xbr=f"{x2:.2f}", ybr=f"{y2:.2f}",
                              z_order="0")
                self.boxes += not outside
            self.tracks += 1
        folder = self.folder / split / run.video_id
        folder.mkdir(parents=True, exist_ok=True)
        ET.indent(root)
        ET.ElementTree(root).write(folder / "annotations.xml", encoding="utf-8", xml_declaration=True)
        self.videos += 1

    def close(self) -> dict:
        return {"videos": self.videos, "tracks": self.tracks, "boxes": self.boxes}


def _boxes(rows, processed: np.ndarray):
    """(frame, box, outside) of one track: its boxes, and after each stretch of frames where the detector saw
    it, the next processed frame, marked outside (the last box again, as CVAT writes it)."""
    frames = rows["frame"].to_numpy(np.int64)
    boxes = rows[["x1", "y1", "x2", "y2"]].to_numpy(np.float64)
    position = {int(f): i for i, f in enumerate(processed.tolist())}
    seen = set(frames.tolist())
    for frame, box in zip(frames.tolist(), boxes):
        yield frame, box, False
        after = position[frame] + 1
        if after < len(processed) and int(processed[after]) not in seen:
            yield int(processed[after]), box, True


def _meta(run) -> ET.Element:
    meta = ET.Element("meta")
    task = ET.SubElement(meta, "task")
    width, height = run.size
    for key, value in (("name", run.video_id), ("size", run.frame_count), ("mode", "interpolation"),
                       ("overlap", 0), ("start_frame", 0), ("stop_frame", run.frame_count - 1)):
        ET.SubElement(task, key).text = str(value)
    labels = ET.SubElement(task, "labels")
    for name in labels_used(run):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "attributes")
    size = ET.SubElement(task, "original_size")
    ET.SubElement(size, "width").text, ET.SubElement(size, "height").text = str(width), str(height)
    return meta
