"""The CenterNet / TF Hub backend, on a real SavedModel built here with the real model's signature."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, REPO, SUBURBAN, frame_times, run_cli
from vidpipe.detectors import available, load_detector
from vidpipe.detectors.coco import COCO_NAMES
from vidpipe.errors import InputError

# What the fake model returns: normalised [ymin, xmin, ymax, xmax], COCO category ids, scores.
BOXES = [[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 0.25, 0.25], [0.6, 0.7, 1.0, 1.0], [0.3, 0.3, 0.4, 0.4]]
CATEGORIES = [1, 13, 90, 12]  # person, stop sign, toothbrush, and 12: a gap in COCO's ids (names nothing)
SCORES = [0.9, 0.6, 0.3, 0.95]
RED_BOX = [0.4, 0.4, 0.6, 0.6]  # a car whose score is the mean red level: proves RGB input order
PADDING = 100


@pytest.fixture(scope="session")
def savedmodel(tmp_path_factory) -> str:
    """A tf.Module exported as a SavedModel with the TF Hub detection contract: uint8 [1, H, W, 3] in,
    boxes/scores/classes padded to 100 rows plus num_detections out."""
    import tensorflow as tf

    class FakeCenterNet(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
        def serve(self, image):
            red = tf.reduce_mean(tf.cast(image[0, :, :, 0], tf.float32)) / 255.0
            pad = PADDING - len(BOXES) - 1
            boxes = tf.concat([tf.constant([BOXES + [RED_BOX]], tf.float32), tf.zeros([1, pad, 4])], axis=1)
            scores = tf.concat([tf.constant([SCORES], tf.float32), [[0.3 + 0.5 * red]], tf.zeros([1, pad])], 1)
            classes = tf.concat([tf.constant([CATEGORIES + [3]], tf.float32), tf.ones([1, pad])], axis=1)
            return {"detection_boxes": boxes, "detection_scores": scores, "detection_classes": classes,
                    "num_detections": tf.constant([float(PADDING)])}

    module = FakeCenterNet()
    path = tmp_path_factory.mktemp("centernet") / "savedmodel"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return str(path)


def test_boxes_names_and_scores_on_a_non_square_frame(savedmodel):
    detector = load_detector("centernet", model=savedmodel, conf=0.25)
    image = np.zeros((300, 800, 3), np.uint8)
    image[..., 2] = 255  # pure red in BGR: the model sees R = 255
    (d,) = detector.detect([image])
    assert d.class_name.tolist() == ["person", "car", "stop sign", "toothbrush"]  # by score; id 12 dropped
    np.testing.assert_allclose(d.score, [0.9, 0.8, 0.6, 0.3], atol=1e-6)
    # x follows the width (800), y the height (300)
    np.testing.assert_allclose(d.xyxy[d.class_name == "person"], [[0.2 * 800, 0.1 * 300, 0.6 * 800, 0.5 * 300]],
                               atol=1e-3)
    np.testing.assert_allclose(d.xyxy[d.class_name == "toothbrush"], [[560, 180, 800, 300]], atol=1e-3)
    assert d.names == COCO_NAMES


def test_conf_and_classes_filters(savedmodel):
    image = np.zeros((200, 200, 3), np.uint8)  # no red: the car scores 0.3
    (d,) = load_detector("centernet", model=savedmodel, conf=0.5).detect([image])
    assert d.class_name.tolist() == ["person", "stop sign"]
    (d,) = load_detector("centernet", model=savedmodel, conf=0.1, classes="toothbrush,car").detect([image, image])[:1]
    assert sorted(d.class_name.tolist()) == ["car", "toothbrush"]


def test_vidpipe_run_with_centernet_writes_pixel_boxes(savedmodel, tmp_path):
    result = run_cli("run", str(PARKING), "--detector", "centernet", "--model", savedmodel, "--tracker", "none",
                     "--max-frames", "4", "--no-video", "-o", str(tmp_path), "-q")
    assert result.returncode == 0, result.stderr
    table = pd.read_parquet(tmp_path / "detections.parquet")
    assert table.groupby("frame").size().tolist() == [4, 4, 4, 4]
    person = table[table["class_name"] == "person"].iloc[0]
    assert [person.x1, person.y1, person.x2, person.y2] == pytest.approx([153.6, 43.2, 460.8, 216.0], abs=1e-3)
    stop = table[table["class_name"] == "stop sign"]
    assert stop["score"].tolist() == pytest.approx([0.6] * 4) and (stop["class_id"] == 11).all()
    assert (table[table["class_name"] == "toothbrush"]["x2"] == 768).all()
    assert "person" in table["class_name"].tolist() and "TensorFlow" not in result.stderr


def test_yolo_and_centernet_outputs_have_the_same_shape(savedmodel, tmp_path):
    """Same clip, same options, both backends: identical table columns and dtypes, videos of equal length.
    CenterNet gives no features, so its tracks follow motion alone, and one line says so. Every track counts
    as an object here, so that six frames have rows."""
    every = tmp_path / "every-track.yaml"
    every.write_text("confirm_frames: 1\nconfirm_score: 0\n")
    common = ["--classes", "person,car,stop sign,toothbrush", "--max-frames", "6", "--start", "5", "-q",
              "-p", str(every)]
    for name, extra in (("yolo", []), ("centernet", ["--model", savedmodel])):
        result = run_cli("run", str(SUBURBAN), "--detector", name, *extra, "-o", str(tmp_path / name), *common)
        assert result.returncode == 0, result.stderr
        said = [line for line in result.stderr.splitlines() if "appearance" in line]
        assert said == ([] if name == "yolo" else
                        ["vidpipe: appearance: off, tracking by motion only (the centernet detector does not expose "
                         "its features)"]), result.stderr
    for table in ("detections.parquet", "frames.parquet"):
        yolo, centernet = (pd.read_parquet(tmp_path / name / table) for name in ("yolo", "centernet"))
        assert list(yolo.columns) == list(centernet.columns)
        assert yolo.dtypes.to_dict() == centernet.dtypes.to_dict()
        assert len(yolo) > 0 and len(centernet) > 0
    frames = pd.read_parquet(tmp_path / "centernet" / "frames.parquet")
    assert "p_any_person" in frames and frames["p_any_person"].tolist() == pytest.approx([0.9] * 6)
    assert frame_times(tmp_path / "yolo" / "annotated.mp4") == frame_times(tmp_path / "centernet" / "annotated.mp4")
    assert len(frame_times(tmp_path / "yolo" / "annotated.mp4")) == 6


@pytest.mark.parametrize(
    "model, message",
    [
        ("missing-dir", "SavedModel directory"),
        ("empty-dir", "is not a loadable SavedModel"),
        ("https://tfhub.dev/tensorflow/centernet/hourglass_512x512/1", "pass the SavedModel directory: --model PATH"),
    ],
    ids=["missing", "invalid", "hub-url-offline"],
)
def test_bad_models_are_one_clear_line(tmp_path, model, message):
    (tmp_path / "empty-dir").mkdir()
    model = model if "://" in model else str(tmp_path / model)
    env = {**os.environ, "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "TFHUB_CACHE_DIR": str(tmp_path / "hub-cache")}  # offline, whatever this machine can reach
    result = subprocess.run([sys.executable, "-m", "vidpipe", "run", str(PARKING), "--detector", "centernet",
                             "--model", model, "-o", str(tmp_path / "out"), "-q"],
                            capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_without_the_extra_one_line_names_it(tmp_path):
    code = ("import sys\nsys.modules['tensorflow'] = sys.modules['tensorflow_hub'] = None  # not installed\n"
            "from vidpipe.cli import main\n"
            f"main(['run', {str(PARKING)!r}, '--detector', 'centernet', '-o', {str(tmp_path)!r}])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == ("vidpipe: error: the centernet detector needs TensorFlow and tensorflow-hub: "
                                     "pip install 'vidpipe[centernet]'")


def test_yolo_runs_never_import_tensorflow(tmp_path):
    code = ("import sys, vidpipe\n"
            f"vidpipe.run({str(PARKING)!r}, {str(tmp_path)!r}, max_frames=2, video=False)\n"
            "print('TF', 'tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert "TF False" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("first", ["centernet", "tensorflow"])
def test_yolo_after_centernet_in_one_process(savedmodel, first):
    """TensorFlow first (vidpipe's CenterNet, or the caller's own `import tensorflow`), then torch (torchvision
    imports triton): this used to end in a segmentation fault."""
    before = (f"load_detector('centernet', model={savedmodel!r}).detect([np.zeros((64, 64, 3), np.uint8)])\n"
              if first == "centernet" else "import tensorflow\n")
    code = ("import numpy as np, cv2\n"
            "from vidpipe.detectors import load_detector\n"
            "from ultralytics.utils import ASSETS\n"
            f"{before}"
            "bus = cv2.imread(str(ASSETS / 'bus.jpg'))\n"
            "print('YOLO', sorted(load_detector('yolo', conf=0.5, runtime='torch').detect([bus])[0].class_name))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "YOLO ['bus', 'person', 'person', 'person']" in result.stdout


def test_registry_finds_both_backends_by_entry_point():
    backends = available()
    assert {"yolo", "centernet"} <= set(backends)
    assert backends["centernet"].value == "vidpipe.detectors.centernet:CenterNetDetector"
    with pytest.raises(InputError, match="unknown device"):
        load_detector("centernet", model="/nonexistent", device="tpu")
