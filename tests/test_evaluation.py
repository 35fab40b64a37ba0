"""`vidpipe eval`: MOT metrics on real MOT17 data (a pinned regression), detection AP on COCO8."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import REPO, run_cli, shared_path
from vidpipe.detections import Detections
from vidpipe.detectors.coco import COCO_NAMES
from vidpipe.errors import InputError
from vidpipe.evaluation import det, mot
from vidpipe.evaluation.motchallenge import MotSequence, read_mot_file
from vidpipe.tracking import DET_TXT_NEW_TRACK_THRESH, ByteTrack

# vidpipe's ByteTrack (default settings) on MOT17-09's real detections. A tracker change that costs more than
# half a point fails here; one that gains should update these numbers (and the table in docs/evaluation.md).
PINNED_MOT17_09 = {"HOTA": 51.76, "IDF1": 63.04}


def mot17(name: str) -> MotSequence:
    return MotSequence.open(shared_path("data", "mot", "MOT17", "train", name))


@pytest.fixture(scope="module")
def mot17_09(tmp_path_factory):
    sequence = mot17("MOT17-09")
    run = mot.track(sequence, ByteTrack(fps=sequence.fps, new_track_thresh=DET_TXT_NEW_TRACK_THRESH),
                    sequence.detections(),
                    tmp_path_factory.mktemp("mot") / "MOT17-09.txt")
    return run, mot.score([run])


def test_bytetrack_on_mot17_09_holds_its_scores(mot17_09):
    _, table = mot17_09
    row = table.set_index("sequence").loc["MOT17-09"]
    assert row["frames"] == 525
    assert mot17_09[0].sequence.size == (1920, 1080)  # from seqinfo.ini: the tracker follows boxes its border cuts
    for metric, value in PINNED_MOT17_09.items():
        assert row[metric] == pytest.approx(value, abs=0.5), metric


def test_motmetrics_and_trackeval_agree(mot17_09):
    """The two libraries implement MOTA and IDF1 independently: fed the same files they must agree."""
    import trackeval

    run, table = mot17_09
    seq = run.sequence
    dataset_root = run.tracks_file.parent / "te"
    (dataset_root / "gt" / seq.name / "gt").mkdir(parents=True)
    os.symlink(seq.gt_file, dataset_root / "gt" / seq.name / "gt" / "gt.txt")
    (dataset_root / "t" / "x" / "data").mkdir(parents=True)
    os.symlink(run.tracks_file, dataset_root / "t" / "x" / "data" / f"{seq.name}.txt")
    dataset = trackeval.datasets.MotChallenge2DBox({
        "GT_FOLDER": str(dataset_root / "gt"), "TRACKERS_FOLDER": str(dataset_root / "t"), "SKIP_SPLIT_FOL": True,
        "SEQ_INFO": {seq.name: seq.length}, "PRINT_CONFIG": False})
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False, "PLOT_CURVES": False,
                                     "TIME_PROGRESS": False})
    with contextlib.redirect_stdout(io.StringIO()):
        results, _ = evaluator.evaluate([dataset], [trackeval.metrics.CLEAR(), trackeval.metrics.Identity()])
    reference = results["MotChallenge2DBox"]["x"][seq.name]["pedestrian"]
    ours = table.set_index("sequence").loc[seq.name]
    assert ours["MOTA"] == pytest.approx(100 * reference["CLEAR"]["MOTA"], abs=0.1)
    assert ours["IDF1"] == pytest.approx(100 * reference["Identity"]["IDF1"], abs=0.1)


def test_ground_truth_as_tracks_scores_perfectly(tmp_path):
    """Submitting the pedestrian ground truth itself: every metric at 100 (distractors and ignored boxes aside)."""
    sequence = mot17("MOT17-09")
    gt = read_mot_file(sequence.gt_file)
    people = gt[(gt[:, 6] == 1) & (gt[:, 7] == 1)]
    tracks = tmp_path / "perfect.txt"
    np.savetxt(tracks, np.hstack([people[:, :6], np.ones((len(people), 1)), -np.ones((len(people), 3))]),
               delimiter=",", fmt="%g")
    row = mot.score([mot.TrackedSequence(sequence, tracks, sequence.length, 0.0)]).iloc[0]
    assert row["HOTA"] == pytest.approx(100, abs=0.01) and row["MOTA"] == 100 and row["IDF1"] == 100
    assert row["IDSW"] == 0 and row["FP"] == 0 and row["FN"] == 0


def test_eval_mot_cli_writes_tracks_and_tables(tmp_path):
    sequences = [str(mot17(name).path) for name in ("MOT17-09", "MOT17-05")]
    result = run_cli("eval", "mot", *sequences, "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "mot_metrics.csv")
    assert table["sequence"].tolist() == ["MOT17-09", "MOT17-05", "COMBINED"]
    assert table.loc[0, "HOTA"] == pytest.approx(PINNED_MOT17_09["HOTA"], abs=0.5)
    assert table.loc[2, "frames"] == 525 + 837
    assert json.loads((tmp_path / "mot_metrics.json").read_text())[2]["sequence"] == "COMBINED"
    tracks = read_mot_file(tmp_path / "MOT17-05.txt")
    assert tracks[:, 0].max() <= 837 and (tracks[:, 1] >= 1).all()
    assert "COMBINED" in result.stdout and result.stderr == ""


def test_eval_mot_detect_on_real_frames(tmp_path):
    """--detect: YOLOv8n on the real MOT17-09 frames (an excerpt), tracked and scored against its ground truth."""
    mini = shared_path("data", "mot", "MOT17", "train", "MOT17-09", "mini")
    result = run_cli("eval", "mot", str(mini), "--detect", "-o", str(tmp_path))
    assert result.returncode == 0, result.stderr
    row = pd.read_csv(tmp_path / "mot_metrics.csv").iloc[0]
    frames = len(list((mini / "img1").iterdir()))
    assert row["sequence"] == "MOT17-09" and row["frames"] == frames
    assert row["DetA"] > 20  # people found where the ground truth has them
    assert read_mot_file(tmp_path / "MOT17-09.txt")[:, 0].max() <= frames


def test_eval_mot_bad_input(tmp_path):
    result = run_cli("eval", "mot", str(tmp_path), "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "has no gt/gt.txt" in result.stderr
    with pytest.raises(InputError, match="no img1/ images"):
        MotSequence.open(mot17("MOT17-09").path, need_images=True)


class Oracle:
    """A 'detector' that returns the labels themselves: AP must come out at 100."""

    names = COCO_NAMES
    model = "oracle"

    def __init__(self, pairs, drop_every: int = 0):
        self._labels = iter([label for _, label in pairs])
        self._drop_every = drop_every

    def detect(self, images):
        height, width = images[0].shape[:2]
        xywh, class_id = det.read_labels(next(self._labels), width, height, len(COCO_NAMES))
        keep = np.ones(len(xywh), bool)
        if self._drop_every:
            keep[:: self._drop_every] = False
        xyxy = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])[keep]
        return [Detections(xyxy, np.full(len(xyxy), 0.9), class_id[keep], COCO_NAMES)]


def coco8_pairs():
    root = shared_path("data", "coco8")
    return det.labelled_images(root / "images", root / "labels")


def test_detection_ap_of_the_labels_themselves_is_100():
    pairs = coco8_pairs()
    perfect = det.evaluate(Oracle(pairs), pairs, progress=False)
    assert perfect["AP50"] == pytest.approx(100) and perfect["AP50_95"] == pytest.approx(100)
    assert perfect["images"] == 8 and perfect["objects"] == 30
    missing = det.evaluate(Oracle(pairs, drop_every=2), pairs, progress=False)
    assert missing["AP50"] < 80  # half the objects never found


def test_eval_det_cli_with_yolov8n(tmp_path):
    """YOLOv8n on COCO8 at two input sizes: the smaller input loses accuracy, and the command shows it."""
    root = shared_path("data", "coco8")
    scores = {}
    for size in ("640", "320"):
        result = run_cli("eval", "det", str(root / "images"), str(root / "labels"), "--imgsz", size,
                         "-o", str(tmp_path / size), "-q")
        assert result.returncode == 0, result.stderr
        scores[size] = json.loads((tmp_path / size / "det_metrics.json").read_text())[0]
    assert 55 < scores["640"]["AP50_95"] <= 100 and scores["640"]["objects"] == 30
    assert scores["320"]["AP50_95"] < scores["640"]["AP50_95"] - 3
    assert scores["640"]["model"].endswith("yolov8n.pt")


def test_eval_det_takes_the_runtime_and_exports_once_for_every_image_shape(tmp_path):
    """COCO8's images come in several shapes: one export serves all of them, and the runtime asked for is the
    one measured."""
    root = shared_path("data", "coco8")
    env = {**os.environ, "VIDPIPE_CACHE": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "vidpipe", "eval", "det", str(root / "images"),
                             str(root / "labels"), "--runtime", "onnx", "--precision", "fp32", "-o",
                             str(tmp_path / "out"), "-q"], capture_output=True, text=True, cwd=REPO, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "out" / "det_metrics.json").read_text())[0]
    assert (scores["runtime"], scores["precision"]) == ("onnx", "fp32") and scores["AP50_95"] > 55
    shapes = {cv2.imread(str(p)).shape for p in (root / "images").rglob("*.jpg")}
    assert len(shapes) > 2  # several letterbox shapes...
    assert len(list((tmp_path / "cache" / "exports").iterdir())) == 1  # ...and one export


def test_eval_det_bad_folders(tmp_path):
    with pytest.raises(InputError, match="not a folder of images"):
        det.labelled_images(tmp_path / "nope", tmp_path)
    with pytest.raises(InputError, match="holds no images"):
        det.labelled_images(tmp_path, tmp_path)


def test_tracker_benchmark_runs_every_peer(tmp_path):
    """bench/trackers_mot17.py end to end on one sequence: every tracker tracks and is scored."""
    sequence = mot17("MOT17-09")
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from trackers_mot17 import TRACKERS, benchmark
    finally:
        sys.path.pop(0)
    with contextlib.redirect_stderr(io.StringIO()):
        results = benchmark([sequence.path], tmp_path)
    combined = results[results["sequence"] == mot.COMBINED].set_index("tracker")
    assert list(combined.index) == list(TRACKERS)
    assert (combined["HOTA"] > 30).all() and (combined["ms_per_frame"] > 0).all()
    assert all((tmp_path / name.replace(" ", "_") / "MOT17-09.txt").is_file() for name in TRACKERS)


def test_help_lists_both_eval_commands():
    result = subprocess.run([sys.executable, "-m", "vidpipe", "eval", "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    commands = re.findall(r"^  (\w+)\s+\S", result.stdout.split("Commands:")[1], re.M)
    assert commands == ["det", "mot"]


def test_malformed_labels_are_named_by_file_and_line_before_the_model_loads(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(images / f"{name}.jpg"), np.full((64, 64, 3), 128, np.uint8))
    model = tmp_path / "no-such-model.pt"  # a check made after loading the model would fail on this instead
    for text, message in (
        ("2 0.5 0.5 0.2 0.2\n0 nan 0.5 0.1 0.1\n", "a.txt, line 2: not a YOLO label line"),
        ("2 0.5 0.5 0.2 0.2\n\n0 0.5 0.5 -0.1 0.1\n", "a.txt, line 3 (0 0.5 0.5 -0.1 0.1): the class must be"),
        ("1.5 0.5 0.5 0.2 0.2\n", "a.txt, line 1 (1.5 0.5 0.5 0.2 0.2): the class must be a whole number"),
        ("", "hold no object: there is nothing to score against"),
    ):
        (labels / "a.txt").write_text(text)
        (labels / "b.txt").write_text("")
        result = run_cli("eval", "det", str(images), str(labels), "--model", str(model), "-q", "-o",
                         str(tmp_path / "out"))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (text, result.stderr)


def write_sequence(root, gt: str, det: str = "1,-1,10,10,20,40,0.9\n", seqinfo: str = "seqLength=3\nframeRate=10"):
    """A three-frame MOTChallenge sequence folder, made by hand."""
    (root / "gt").mkdir(parents=True)
    (root / "det").mkdir()
    (root / "gt" / "gt.txt").write_text(gt)
    (root / "det" / "det.txt").write_text(det)
    (root / "seqinfo.ini").write_text(f"[Sequence]\nname={root.name}\n{seqinfo}\n")
    return root


def test_malformed_mot_files_are_one_line_naming_the_file_and_line(tmp_path):
    good = "1,1,10,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n"
    for n, (files, message) in enumerate((
        ({"gt": good + "3,1,nan,10,20,40,1,1,1\n"}, "gt.txt, line 3: not a MOTChallenge row"),
        ({"gt": good + "3,1,14,10,-20,40,1,1,1\n"}, "gt.txt, line 3 (3, 1, 14, 10, -20, 40): frames count from 1"),
        ({"gt": good, "seqinfo": "seqLength=0\nframeRate=10"}, "seqLength must be a whole number above 0, got '0'"),
        ({"gt": good + "999,1,14,10,20,40,1,1,1\n"}, "gt.txt, line 3: frame 999 is past the sequence's last frame, 3"),
        ({"gt": good, "det": ""}, "det.txt has no detections: nothing to track"),
        ({"gt": ""}, "gt.txt has no ground truth: there is nothing to score against"),
    )):
        sequence = write_sequence(tmp_path / f"SEQ-{n}", **files)
        result = run_cli("eval", "mot", str(sequence), "-o", str(tmp_path / "out"))
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], (files, result.stderr)
