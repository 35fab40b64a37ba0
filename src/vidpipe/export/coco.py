"""COCO detection JSON (`annotations.json`, one per split), as pycocotools, FiftyOne and CVAT's COCO import
read it: the model's classes as categories (ids from 1), each box with its score and its track id (also under
`attributes`, where CVAT looks)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class Writer:
    images = True

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder, self.root = folder, root
        self._files: dict[str, dict] = {}  # split: its COCO document
        self._names: list[str] = []

    def add(self, run, split: str, pictures: Mapping[int, tuple[str, tuple[int, int]]]) -> None:
        if self._names and run.names != self._names:
            raise ValueError(f"{run.folder}: another model's classes than the other videos'")
        self._names = run.names
        document = self._files.setdefault(split, {"images": [], "annotations": []})
        image_ids = {}
        for frame, (name, (width, height)) in sorted(pictures.items()):
            image_ids[frame] = len(document["images"]) + 1
            document["images"].append({"id": image_ids[frame], "file_name": str(self.root / name), "width": width,
                                       "height": height, "video_id": run.video_id, "frame": frame})
        category = {name: i + 1 for i, name in enumerate(run.names)}
        for row in run.rows.itertuples(index=False):
            w, h = float(row.x2 - row.x1), float(row.y2 - row.y1)
            track = int(row.track_id)
            document["annotations"].append({
                "id": len(document["annotations"]) + 1, "image_id": image_ids[int(row.frame)],
                "category_id": category[row.label], "bbox": [round(float(row.x1), 2), round(float(row.y1), 2),
                                                             round(w, 2), round(h, 2)],
                "area": round(w * h, 2), "iscrowd": 0, "score": round(float(row.score), 4), "track_id": track,
                "attributes": {"track_id": track, "occluded": False},
            })

    def close(self) -> dict:
        categories = [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(self._names)]
        for split, document in self._files.items():
            name = f"annotations_{split}.json" if split else "annotations.json"
            (self.folder / name).write_text(json.dumps({"info": {"description": "vidpipe export"}, **document,
                                                        "categories": categories}))
        return {"images": sum(len(d["images"]) for d in self._files.values()),
                "boxes": sum(len(d["annotations"]) for d in self._files.values())}
