"""MOT 1.1 as CVAT imports it (and Datumaro's `mot_seq` reads): per video, `<video>/gt/gt.txt` with one
`frame, id, x, y, w, h, 1, class, 1` line per box (frames from 1, the source's index + 1, so they line up with
the video's frames in a task) and `gt/labels.txt`, the classes by line (`class` counts from 1)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .runs import labels_used, tracks


class Writer:
    images = False

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self._videos: list[str] = []
        self.boxes = self.tracks = 0

    def add(self, run, split: str, pictures: Mapping) -> None:
        self._videos.append(run.video_id)
        gt = self.folder / split / run.video_id / "gt"  # a CVAT task per video: zip its folder to import it
        gt.mkdir(parents=True, exist_ok=True)
        labels = labels_used(run)
        number = {name: i + 1 for i, name in enumerate(labels)}
        lines = []
        for track, rows in tracks(run):
            for r in rows.itertuples(index=False):
                lines.append((int(r.frame) + 1, track, f"{int(r.frame) + 1},{track},{r.x1:.2f},{r.y1:.2f},"
                                                       f"{r.x2 - r.x1:.2f},{r.y2 - r.y1:.2f},1,{number[r.label]},1"))
            self.tracks += 1
        (gt / "gt.txt").write_text("".join(line + "\n" for *_, line in sorted(lines)))
        (gt / "labels.txt").write_text("".join(name + "\n" for name in labels))
        self.boxes += len(lines)

    def close(self) -> dict:
        return {"videos": len(self._videos), "tracks": self.tracks, "boxes": self.boxes}
