"""Run by tests/test_export.py with the Python that has Datumaro (its own venv: Datumaro pins older pandas,
pyarrow and OpenCV than vidpipe): import a folder in a format and print what Datumaro found, as JSON."""

import json
import sys

import datumaro as dm

path, fmt = sys.argv[1], sys.argv[2]
dataset = dm.Dataset.import_from(path, fmt)
boxes, tracks, outside = 0, set(), 0
for item in dataset:
    for annotation in item.annotations:
        if annotation.type == dm.AnnotationType.bbox:
            boxes += 1
            tracks.add(annotation.attributes.get("track_id", annotation.id))
            outside += bool(annotation.attributes.get("outside"))
labels = [label.name for label in dataset.categories()[dm.AnnotationType.label]]
print(json.dumps({"items": len(dataset), "boxes": boxes, "tracks": len(tracks), "outside": outside, "labels": labels}))
