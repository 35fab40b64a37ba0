"""The detections record and box IoU."""

from __future__ import annotations

import numpy as np
import pytest

from vidpipe.detections import NO_TRACK, Detections, box_iou

NAMES = ("person", "bicycle", "car")


def make(n: int = 3) -> Detections:
    xyxy = np.array([[0, 0, 10, 10], [5, 5, 15, 25], [100, 100, 110, 140]][:n], float)
    return Detections(xyxy, [0.9, 0.5, 0.2][:n], [0, 2, 2][:n], NAMES)


def test_arrays_are_coerced_and_untracked_by_default():
    d = make()
    assert d.xyxy.dtype == np.float32 and d.score.dtype == np.float32 and d.class_id.dtype == np.int64
    assert d.track_id.tolist() == [NO_TRACK] * 3 and not d.is_tracked.any()
    assert d.class_name.tolist() == ["person", "car", "car"]


def test_indexing_by_mask_indices_and_slice():
    d = make()
    assert len(d[d.score > 0.3]) == 2
    assert d[np.array([2])].class_name.tolist() == ["car"]
    assert d[1:].score.tolist() == pytest.approx([0.5, 0.2])
    tracked = d.with_track_ids(np.array([4, 5, 6]))
    assert tracked[tracked.class_id == 2].track_id.tolist() == [5, 6]


def test_empty_record_is_valid():
    empty = Detections.empty(NAMES)
    assert len(empty) == 0 and empty.xyxy.shape == (0, 4) and empty.class_name.tolist() == []
    assert len(empty[empty.score > 0.5]) == 0


def test_validation_names_the_problem():
    with pytest.raises(ValueError, match="score has 2 rows"):
        Detections(np.zeros((3, 4)), [1, 2], [0, 0, 0], NAMES)
    with pytest.raises(ValueError, match="class ids"):
        Detections(np.zeros((1, 4)), [1], [7], NAMES)


def test_box_iou_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [30, 30, 40, 40], [0, 0, 0, 0]])
    expected = np.array([[1, 50 / 150, 0, 0], [0.25, 100 / 400, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b), expected)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_near_identical_boxes_of_two_classes_merge_into_the_more_confident():
    from vidpipe.detections import merge_duplicates

    names = ("car", "truck", "person")
    pickup = [100, 100, 200, 160]
    d = Detections(np.array([pickup, [101, 101, 200, 161], [100, 100, 200, 160], [150, 100, 250, 160],
                             [0, 0, 10, 30], [0, 0, 10, 31]], float),
                   np.array([0.6, 0.8, 0.5, 0.7, 0.9, 0.4]), np.array([1, 0, 0, 2, 2, 2]), names)
    merged = merge_duplicates(d, 0.85)
    # the pickup: car 0.8 keeps its box and class, truck 0.6 is remembered for the vote; the second car box
    # (same class, NMS's business) stays, as do the person half-overlapping it and the two people
    assert merged.class_id.tolist() == [0, 0, 2, 2, 2]
    assert merged.score[0] == np.float32(0.8) and merged.merged_class.tolist() == [1, -1, -1, -1, -1]
    assert merged.merged_score[0] == np.float32(0.6)
    assert len(merge_duplicates(d, 0.0)) == len(d)  # 0 turns it off


def test_a_merged_class_still_counts_in_the_tracks_vote():
    from vidpipe.tracking import ClassVote

    class Passthrough:  # hands the rows back with a track id, so only the vote is under test
        name, Config = "passthrough", None

        def update(self, detections, time=None, frame_size=None):
            return detections.with_track_ids(np.ones(len(detections), np.int64))

    vote = ClassVote(Passthrough())
    names = ("car", "truck")
    for score in (0.5, 0.5):  # twice: car 0.5 with a merged truck box of 0.45...
        row = Detections(np.array([[0, 0, 10, 10]], float), np.array([score]), np.array([0]), names,
                         merged_class=np.array([1]), merged_score=np.array([0.45]))
        out = vote.update(row, 0.0)
    assert out.track_class.tolist() == [0]
    for _ in range(2):  # ...then truck 0.3 twice: the truck tally (0.9 + 0.6) passes the car's (1.0)
        out = vote.update(Detections(np.array([[0, 0, 10, 10]], float), np.array([0.3]), np.array([1]), names), 0.0)
    assert out.track_class.tolist() == [1]
