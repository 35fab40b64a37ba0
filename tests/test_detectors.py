"""The YOLO backend against ultralytics' own predict, on real COCO images and the real YOLOv8n weights."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import PARKING, SUBURBAN, shared_path
from vidpipe.detectors import available, load_detector, resolve_classes
from vidpipe.detectors.yolo import DEFAULT_MODEL
from vidpipe.errors import InputError
from vidpipe.sources import Sampling, open_source


def ultralytics_images() -> list[Path]:
    from ultralytics.utils import ASSETS

    return [ASSETS / "bus.jpg"]


def coco8_images() -> list[Path]:
    return sorted(shared_path("data", "coco8", "images").rglob("*.jpg"))


@pytest.fixture(scope="module")
def reference():
    from ultralytics import YOLO

    return YOLO(DEFAULT_MODEL, task="detect")


def assert_same(ours, theirs) -> None:
    """Same classes in the same order, boxes within 1 px, scores within 1e-3."""
    order = np.argsort(-theirs.boxes.conf.numpy(), kind="stable")
    assert ours.class_id.tolist() == theirs.boxes.cls.numpy().astype(int)[order].tolist()
    np.testing.assert_allclose(ours.xyxy, theirs.boxes.xyxy.numpy()[order], atol=1.0)
    np.testing.assert_allclose(ours.score, theirs.boxes.conf.numpy()[order], atol=1e-3)


FULL_PRECISION = {}


def full_precision(runtime: str):
    """One detector per runtime for the module, at fp32: what must equal ultralytics' predict."""
    if runtime not in FULL_PRECISION:
        FULL_PRECISION[runtime] = load_detector("yolo", runtime=runtime, precision="fp32")
    return FULL_PRECISION[runtime]


@pytest.mark.parametrize("runtime", ["torch", "openvino", "onnx"])
@pytest.mark.parametrize("images", [ultralytics_images, coco8_images], ids=["bus.jpg", "coco8"])
def test_detections_equal_ultralytics_predict(reference, images, runtime):
    """Every runtime, fed vidpipe's letterbox and decoded by vidpipe's NMS, gives ultralytics' boxes."""
    paths = images()
    arrays = [cv2.imread(str(p)) for p in paths]
    detector = full_precision(runtime)
    assert detector.runtime == runtime
    ours = detector.detect(arrays)  # one mixed-size batch, as an image folder would give
    assert len(ours) == len(paths)
    for path, detections in zip(paths, ours):
        theirs = reference.predict(str(path), conf=0.25, iou=0.7, imgsz=640, verbose=False)[0]
        assert_same(detections, theirs)
        assert np.all(detections.xyxy[:, 2:] <= [[theirs.orig_shape[1], theirs.orig_shape[0]]])


def test_bus_jpg_sanity(yolo, reference):
    """bus.jpg through the default runtime and precision (whatever this machine picks: int8 or bf16 on
    OpenVINO, fp32, torch on a GPU) finds what ultralytics' own predict finds: a bus and three people, scores
    within 0.015 of its (0.03 for int8, 0.019 off on the AMD EPYC)."""
    path = ultralytics_images()[0]
    (detections,) = yolo.detect([cv2.imread(str(path))])
    confident = detections[detections.score >= 0.5]
    theirs = reference.predict(str(path), conf=0.5, verbose=False)[0].boxes
    assert sorted(confident.class_name.tolist()) == ["bus", "person", "person", "person"]
    assert sorted(reference.names[int(c)] for c in theirs.cls) == ["bus", "person", "person", "person"]
    np.testing.assert_allclose(np.sort(confident.score)[::-1], np.sort(theirs.conf.numpy())[::-1],
                               atol=0.03 if yolo.precision == "int8" else 0.015)


def test_reduced_precision_keeps_the_detections(monkeypatch):
    """The runtime's own default (bf16 where the CPU has it; `auto` for a checkpoint without an int8 gate)
    against fp32 on the same letterboxed frames of both sample clips: at least 98% of boxes matched both
    ways (same class, IoU >= 0.8). int8 has its own test (test_quantize)."""
    from vidpipe.detectors import quantize
    from vidpipe.evaluation.det import agreement

    monkeypatch.setattr(quantize, "GATED", {})
    frames = [f.image for clip in (PARKING, SUBURBAN) for f in open_source(clip, Sampling(sample_fps=2))]
    default = load_detector("yolo", runtime="openvino")
    matched, theirs, ours = agreement(full_precision("openvino").detect(frames), default.detect(frames), iou=0.8)
    assert default.precision in ("fp32", "bf16")
    assert theirs > 100
    assert matched / ours >= 0.98 and matched / theirs >= 0.98, (default.precision, matched, ours, theirs)


def test_batches_of_video_frames_equal_single_frames(yolo):
    frames = [f.image for f in open_source(PARKING, Sampling(start=5.0, max_frames=4))]
    batched = yolo.detect(frames)
    for frame, detections in zip(frames, batched):
        (single,) = yolo.detect([frame])
        np.testing.assert_allclose(detections.xyxy, single.xyxy, atol=1e-3)
        assert detections.class_id.tolist() == single.class_id.tolist()
    assert sum(len(d) for d in batched) > 0  # a car is crossing in these frames


def test_no_objects_gives_an_empty_record(yolo):
    (detections,) = yolo.detect([np.full((240, 320, 3), 127, np.uint8)])
    assert len(detections) == 0 and detections.xyxy.shape == (0, 4)


def test_class_filter_by_name_and_id(yolo):
    bus = cv2.imread(str(ultralytics_images()[0]))
    people = load_detector("yolo", classes="person").detect([bus])[0]
    assert len(people) >= 4 and set(people.class_name) == {"person"}
    by_id = load_detector("yolo", classes=[5]).detect([bus])[0]
    assert set(by_id.class_name) == {"bus"}


def test_resolve_classes():
    names = ("person", "bicycle", "car", "traffic light")
    assert resolve_classes("car, Person", names) == [0, 2]
    assert resolve_classes(["traffic light", 1], names) == [1, 3]
    assert resolve_classes(None, names) is None
    with pytest.raises(InputError, match="unknown class 'carr'"):
        resolve_classes("carr", names)
    with pytest.raises(InputError, match="out of range"):
        resolve_classes("12", names)


def test_bad_model_paths(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_detector("yolo", model=str(tmp_path / "missing.pt"))
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(InputError, match="cannot load model"):
        load_detector("yolo", model=str(text))
    with pytest.raises(InputError, match="unknown detector 'nope'"):
        load_detector("nope")


def test_registry_lists_yolo_through_entry_points():
    assert "yolo" in available()
    assert available()["yolo"].load().check() is None
