"""CenterNet on a real pretrained model: `../shared/models/centernet-mb3` (COCO, MobileNetV3 backbone, in the
TF Hub detection signature). Parity with the SavedModel called by hand, plausible detections on a real road,
the lecture's per-frame measures on real output, and whole CLI runs. Skipped, saying why, without ../shared."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, SUBURBAN, frame_times, run_cli, shared_path
from vidpipe.detectors import load_detector
from vidpipe.sources import Sampling, open_source

# Found, not imported: TensorFlow loaded while the suite is collected would be in every test's process.
if importlib.util.find_spec("tensorflow_hub") is None:
    pytest.skip("the centernet extra: pip install -e '.[centernet]'", allow_module_level=True)

# COCO's 91 category ids as the TF Object Detection API numbers them (1-based, with gaps): written out here
# so the reference conversion below owes nothing to vidpipe's own map.
COCO_91 = [None, "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
           "traffic light", "fire hydrant", None, "stop sign", "parking meter", "bench", "bird", "cat", "dog",
           "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", None, "backpack", "umbrella", None, None,
           "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
           "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", None, "wine glass", "cup",
           "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
           "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", None, "dining table",
           None, None, "toilet", None, "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave",
           "oven", "toaster", "sink", "refrigerator", None, "book", "clock", "vase", "scissors", "teddy bear",
           "hair drier", "toothbrush"]
CONF = 0.3


@pytest.fixture(scope="module")
def model_dir() -> str:
    return str(shared_path("models", "centernet-mb3"))


@pytest.fixture(scope="module")
def centernet(model_dir):
    return load_detector("centernet", model=model_dir, conf=CONF)


@pytest.fixture(scope="module")
def road_frames() -> list[np.ndarray]:
    """One frame a second of the suburban road clip (640x352), 38 frames."""
    return [f.image for f in open_source(SUBURBAN, Sampling(sample_fps=1))]


def by_hand(model_dir: str, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The SavedModel's serving signature called directly, its output converted as its model card says:
    RGB uint8 in; normalised [ymin, xmin, ymax, xmax] -> pixel [x1, y1, x2, y2]; COCO ids -> names."""
    import tensorflow as tf

    signature = tf.saved_model.load(model_dir).signatures["serving_default"]
    out = signature(input_tensor=tf.constant(image[None, :, :, ::-1].copy()))
    n = int(out["num_detections"].numpy()[0])
    boxes = out["detection_boxes"].numpy()[0, :n]
    scores = out["detection_scores"].numpy()[0, :n]
    ids = out["detection_classes"].numpy()[0, :n].astype(int)
    height, width = image.shape[:2]
    keep = (scores >= CONF) & np.array([COCO_91[i] is not None for i in ids], bool)
    boxes, scores, ids = np.clip(boxes[keep], 0, 1), scores[keep], ids[keep]
    order = np.argsort(-scores, kind="stable")
    xyxy = np.stack([boxes[:, 1] * width, boxes[:, 0] * height, boxes[:, 3] * width, boxes[:, 2] * height], 1)
    return xyxy[order], scores[order], [COCO_91[i] for i in ids[order]]


def test_backend_equals_the_savedmodel_called_by_hand(centernet, model_dir, road_frames):
    for image in road_frames[5:25:5]:
        (ours,) = centernet.detect([image])
        xyxy, scores, names = by_hand(model_dir, image)
        assert len(ours) == len(names) > 0
        assert ours.class_name.tolist() == names
        np.testing.assert_allclose(ours.xyxy, xyxy, atol=1.0)
        np.testing.assert_allclose(ours.score, scores, atol=1e-6)
    assert centernet.runtime == "tensorflow" and centernet.precision == "fp32"


def test_detections_on_a_real_road_are_vehicles_where_the_road_is(centernet, road_frames):
    """Most confident detections are cars or trucks, and they sit on the road: by eye, the road's far end is at
    y = 90 of 352 and everything above it is trees and sky."""
    found = centernet.detect(road_frames)
    names = np.concatenate([d.class_name for d in found])
    boxes = np.concatenate([d.xyxy for d in found])
    vehicles = np.isin(names, ["car", "truck"])
    assert len(names) > 2 * len(road_frames)  # several objects a frame
    assert vehicles.mean() >= 0.8, dict(zip(*np.unique(names, return_counts=True)))
    height = road_frames[0].shape[0]
    assert (boxes[vehicles, 1] > height / 4).all()  # no vehicle in the trees or the sky
    assert (boxes[vehicles, 3] > height / 3).mean() >= 0.75  # and most stand in the lower two thirds


@pytest.fixture(scope="module")
def cli_run(model_dir, tmp_path_factory):
    """`vidpipe run` through the real model with its defaults: tracking, annotated video, tables."""
    out = tmp_path_factory.mktemp("centernet-run")
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--detector", "centernet", "--model", model_dir,
                     "--max-frames", "40", "-q")
    assert result.returncode == 0, result.stderr
    return out


def test_a_whole_cli_run_through_the_real_model(cli_run):
    summary = pd.read_json(cli_run / "summary.json", typ="series")
    detections = pd.read_parquet(cli_run / "detections.parquet")
    assert summary["detector"]["runtime"] == "tensorflow" and summary["frames_processed"] == 40
    tracks = pd.read_parquet(cli_run / "tracks.parquet")  # every track; the summary counts the objects
    assert len(tracks) >= 3 and (detections["track_id"] >= 1).all()
    assert tracks["confirmed"].sum() == summary["tracks"] >= 1
    assert detections["class_name"].value_counts().index[0] == "car"
    assert len(frame_times(cli_run / "annotated.mp4")) == 40
    assert len(pd.read_parquet(cli_run / "frames.parquet")) == 40


def test_the_lectures_per_frame_measures_on_real_output(cli_run):
    """p_any_person = 1 - prod(1 - p) over the frame's person scores, and the top-k columns are the frame's k
    best detections: recomputed here from the detection table."""
    frames = pd.read_parquet(cli_run / "frames.parquet").set_index("frame")
    detections = pd.read_parquet(cli_run / "detections.parquet")
    for index, row in frames.iterrows():
        rows = detections[detections["frame"] == index].sort_values("score", ascending=False, kind="stable")
        people = rows.loc[rows["class_name"] == "person", "score"].to_numpy(np.float64)
        assert row["p_any_person"] == pytest.approx(1 - np.prod(1 - people), abs=1e-6)
        for k in range(3):
            if k < len(rows):
                assert row[f"top{k + 1}_class"] == rows["class_name"].iloc[k]
                assert row[f"top{k + 1}_score"] == pytest.approx(rows["score"].iloc[k], abs=1e-6)
            else:
                assert pd.isna(row[f"top{k + 1}_class"]) and np.isnan(row[f"top{k + 1}_score"])
    assert frames["n_detections"].sum() == len(detections) and frames["top1_score"].notna().all()


def test_real_centernet_then_yolo_in_one_process(model_dir):
    """TensorFlow with a real graph first, then torch and torchvision (which import triton)."""
    code = ("import cv2\n"
            "from vidpipe.detectors import load_detector\n"
            "from vidpipe.sources import open_source, Sampling\n"
            "from ultralytics.utils import ASSETS\n"
            f"frame = next(iter(open_source({str(SUBURBAN)!r}, Sampling(start=10, max_frames=1)))).image\n"
            f"cars = load_detector('centernet', model={model_dir!r}, conf=0.3).detect([frame])[0]\n"
            "print('CENTERNET', sorted(set(cars.class_name)))\n"
            "bus = cv2.imread(str(ASSETS / 'bus.jpg'))\n"
            "print('YOLO', sorted(load_detector('yolo', conf=0.5, runtime='torch').detect([bus])[0].class_name))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "CENTERNET ['car']" in result.stdout
    assert "YOLO ['bus', 'person', 'person', 'person']" in result.stdout
