"""Run by tests/test_export.py with the Python that has label-studio-sdk (its own venv: it pins an older NumPy
than vidpipe's and brings OpenCV's headless build): check a Label Studio export with the SDK's own validator,
expand each track's keyframes the way Label Studio's tools do, and print what was found, as JSON."""

import json
import sys
from pathlib import Path

from label_studio_sdk._extensions.label_studio_tools.postprocessing.video import extract_key_frames
from label_studio_sdk.label_interface import LabelInterface

folder, tasks_file = Path(sys.argv[1]), sys.argv[2]
interface = LabelInterface((folder / "config.xml").read_text())
interface.validate()  # raises on a config Label Studio would refuse
found = {"labels": interface.get_control("videoLabels").labels, "tasks": []}
for task in json.loads((folder / tasks_file).read_text()):
    # validate_task checks the data; with predictions in the task it calls validate_prediction without one
    # (label-studio-sdk 2.1.2), so each prediction is checked on its own
    checked = {"data_valid": interface.validate_task({"data": task["data"]}), "errors": [], "frames": {}}
    for prediction in task["predictions"]:
        checked["errors"] += interface.validate_prediction(prediction, return_errors=True)
        for result in extract_key_frames(prediction["result"]):
            checked["frames"][result["id"]] = sorted({k["frame"] for k in result["value"]["sequence"]})
    found["tasks"].append(checked)
print(json.dumps(found))
