"""YOLO detection labels as ultralytics trains from: `images/<split>/...jpg`, `labels/<split>/...txt` (one
`class cx cy w h` line per box, normalised) and `data.yaml` naming the splits and the model's classes, ids as
the model's, so the export fine-tunes the same model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml


class Writer:
    images = True

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder, self.root = folder, root
        self._names: list[str] = []
        self._splits: set[str] = set()
        self.images_written = self.boxes = 0

    def add(self, run, split: str, pictures: Mapping[int, tuple[str, tuple[int, int]]]) -> None:
        if self._names and run.names != self._names:
            raise ValueError(f"{run.folder}: another model's classes than the other videos'")
        self._names = run.names
        self._splits.add(split)
        ids = {name: i for i, name in enumerate(run.names)}
        by_frame = dict(tuple(run.rows.groupby("frame")))
        for frame, (name, (width, height)) in pictures.items():
            label = self.folder / Path("labels", *Path(name).parts[1:]).with_suffix(".txt")
            label.parent.mkdir(parents=True, exist_ok=True)
            rows = by_frame.get(frame)
            lines = [] if rows is None else [
                f"{ids[r.label]} {(r.x1 + r.x2) / 2 / width:.6f} {(r.y1 + r.y2) / 2 / height:.6f} "
                f"{(r.x2 - r.x1) / width:.6f} {(r.y2 - r.y1) / height:.6f}" for r in rows.itertuples(index=False)]
            label.write_text("".join(line + "\n" for line in lines))  # an empty file: a picture with nothing
            self.images_written += 1
            self.boxes += len(lines)

    def close(self) -> dict:
        splits = sorted(self._splits)
        folders = {split: str(Path("images", split)) if split else "images" for split in splits}
        data = {"train": folders.get("train", folders[splits[0]]), "val": folders.get("val", folders[splits[-1]]),
                **{split: folder for split, folder in folders.items() if split not in ("", "train", "val")},
                "names": dict(enumerate(self._names))}
        if self.root != Path():
            data = {"path": str(self.root), **data}  # else ultralytics reads the folders beside data.yaml
        (self.folder / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return {"images": self.images_written, "boxes": self.boxes}
