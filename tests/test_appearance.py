"""Appearance from the detector's own features: embeddings that tell objects apart on real frames, and the tracker
keeping a person's id across an occlusion that motion alone cannot bridge."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import run_cli, shared_path
from vidpipe.detections import Detections, box_iou
from vidpipe.detectors import load_detector
from vidpipe.errors import InputError
from vidpipe.tracking import ByteTrack

ROOM = shared_path("sample_videos", "room-people-one-by-one.mp4")
MOT17_09 = shared_path("data", "mot", "MOT17", "train", "MOT17-09", "mini")
PRECISIONS = ["fp32", "int8", "bf16", "torch", "onnx"]  # OpenVINO at each precision; the torch and ONNX runtimes


def appearance_detector(precision: str):
    """The shipped detector with embeddings: on OpenVINO at `precision`, or through `YOLO.predict` (`torch`) or
    ONNX Runtime (`onnx`)."""
    runtime, precision = (precision, "auto") if precision in ("torch", "onnx") else ("auto", precision)
    detector = load_detector("yolo", precision=precision, runtime=runtime)
    if detector.enable_appearance():
        pytest.skip(f"no OpenVINO runtime here ({detector.runtime})")
    return detector


def frame_at(capture: cv2.VideoCapture, seconds: float) -> np.ndarray:
    capture.set(cv2.CAP_PROP_POS_MSEC, 1000 * seconds)
    ok, image = capture.read()
    assert ok
    return image


@pytest.mark.parametrize("precision", PRECISIONS)
def test_an_objects_embedding_in_two_frames_is_closer_than_any_two_objects(precision):
    if precision == "bf16":
        from vidpipe.detectors.runtimes import openvino_cpu

        if "BF16" not in openvino_cpu()[1]:
            pytest.skip("this CPU has no bf16")
    detector = appearance_detector(precision)
    gt = np.loadtxt(MOT17_09 / "gt" / "gt.txt", delimiter=",")
    records, ids = detector.detect([cv2.imread(str(MOT17_09 / "img1" / f"{i:06d}.jpg")) for i in (1, 4)]), []
    for frame, record in zip((1, 4), records):
        assert record.embedding.shape == (len(record), 448)
        np.testing.assert_allclose(np.linalg.norm(record.embedding, axis=1), 1.0, rtol=1e-5)
        truth = gt[(gt[:, 0] == frame) & (gt[:, 7] == 1)]  # pedestrians
        overlap = box_iou(record.xyxy, np.hstack([truth[:, 2:4], truth[:, 2:4] + truth[:, 4:6]]))
        ids.append(np.where((overlap.max(axis=1) > 0.6) & (record.class_id == 0), truth[overlap.argmax(axis=1), 1], -1))
    similarity = records[0].embedding @ records[1].embedding.T
    known = (ids[0][:, None] >= 0) & (ids[1][None, :] >= 0)
    same = known & (ids[0][:, None] == ids[1][None, :])
    assert same.sum() >= 4 and (known & ~same).sum() >= 10
    for row, column in zip(*np.nonzero(same)):  # each person's own box in the other frame is their nearest
        assert similarity[row, column] > similarity[row, known[row] & ~same[row]].max()


def occlusion_frames() -> list[np.ndarray]:
    """A person (cut from the room clip, at half size) walks across the empty room at 150 px/s, 10 frames a
    second, stops for 1 s behind a dark pillar and walks on: no detector sees them for 1.5 s, and the motion
    model, expecting them to walk on, looks too far ahead when they come out."""
    capture = cv2.VideoCapture(str(ROOM))
    background, person = frame_at(capture, 1.0), frame_at(capture, 10.0)[15:391, 382:515]
    capture.release()
    person = cv2.resize(person, (person.shape[1] // 2, person.shape[0] // 2), interpolation=cv2.INTER_AREA)
    height, width = person.shape[:2]
    pillar, speed, fps, pause = (300, 380), 150.0, 10, 1.0
    behind = (sum(pillar) - width) / 2
    x, paused, frames = 40.0, 0.0, []
    while x < 700:
        image = background.copy()
        left = round(x)
        image[400 - height:400, left:left + width] = person[:, :min(width, image.shape[1] - left)]
        image[60:420, pillar[0]:pillar[1]] = (40, 45, 50)
        frames.append(image)
        if abs(x - behind) < speed / fps / 2 and paused < pause - 1e-9:
            paused += 1 / fps
        else:
            x += speed / fps
    return frames


@pytest.mark.parametrize("precision", ["fp32", "int8", "torch", "onnx"])
def test_a_person_keeps_their_id_behind_an_occluder_with_appearance_and_not_without(precision):
    detector = appearance_detector(precision)
    records = [record[record.class_id == 0] for record in detector.detect(occlusion_frames())]
    seen = np.array([len(record) for record in records])
    hidden = np.flatnonzero(seen == 0)
    assert len(hidden) == 15 and np.ptp(hidden) == 14  # one gap of 1.5 s, at 10 fps

    def ids(appearance: str) -> set[int]:
        tracker = ByteTrack(fps=10, appearance=appearance)
        out = [tracker.update(record, time=k / 10, frame_size=(768, 432)) for k, record in enumerate(records)]
        before, after = out[hidden[0] - 1], out[-1]
        return set(before.track_id.tolist()), set(after.track_id.tolist())

    before, after = ids("detector")
    assert len(before) == 1 and before == after
    before, after = ids("off")
    assert len(before) == 1 and len(after) == 1 and before != after


def test_detections_keep_their_embeddings_through_filtering():
    record = Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 20]]), np.array([0.9, 0.4]), np.array([0, 1]),
                        ("person", "car"), embedding=np.eye(2, 3))
    np.testing.assert_array_equal(record[record.score > 0.5].embedding, [[1, 0, 0]])
    assert record.with_track_ids(np.array([3, 4])).embedding.shape == (2, 3)
    assert Detections.empty(("person",)).embedding is None
    with pytest.raises(ValueError, match="embedding must be"):
        Detections(np.zeros((2, 4)), np.zeros(2), np.zeros(2), ("person",), embedding=np.zeros((3, 8)))


@pytest.mark.parametrize("params, message", [
    ({"appearance": "mobilenet"}, "appearance must be one of detector, off"),
    ({"appearance_thresh": 1.5}, "appearance_thresh must lie in"),
])
def test_bad_appearance_parameters_are_one_line_errors(tmp_path, params, message):
    with pytest.raises(InputError, match=message):
        ByteTrack(**params)
    key, value = next(iter(params.items()))
    preset = tmp_path / "p.yaml"
    preset.write_text(f"trackers:\n  bytetrack:\n    {key}: {value}\n")
    result = run_cli("run", str(ROOM), "-p", str(preset), "--max-frames", "2", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr

