"""ByteTrack on scenes whose truth is known: moving, crossing, hidden and faint objects."""

from __future__ import annotations

import numpy as np
import pytest

from vidpipe.detections import Detections
from vidpipe.errors import InputError
from vidpipe.tracking import ByteTrack, create_tracker

NAMES = ("person", "car")


def frame(boxes, scores=None, classes=None) -> Detections:
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    n = len(boxes)
    return Detections(boxes, np.full(n, 0.9) if scores is None else scores,
                      np.zeros(n, int) if classes is None else classes, NAMES)


def box_at(x: float, y: float, w: float = 40, h: float = 80) -> list[float]:
    return [x, y, x + w, y + h]


def ids_by_object(tracker, scenes, fps: float = 30.0) -> list[dict[int, int]]:
    """Run scenes (lists of (object key, box, score)); per frame, object key -> track id given."""
    out = []
    for i, scene in enumerate(scenes):
        keys = [k for k, _, _ in scene]
        dets = frame([b for _, b, _ in scene], np.array([s for _, _, s in scene]))
        tracked = tracker.update(dets, i / fps)
        mapping = {}
        for box, track in zip(tracked.xyxy, tracked.track_id):
            row = int(np.argmin(np.abs(dets.xyxy - box).sum(axis=1)))
            mapping[keys[row]] = int(track)
        out.append(mapping)
    return out


def test_constant_velocity_objects_keep_their_ids():
    scenes = [[(k, box_at(50 + 4 * t + 200 * k, 100 + 2 * t * k), 0.9) for k in range(3)] for t in range(60)]
    result = ids_by_object(ByteTrack(), scenes)
    assert result[0] == {0: 1, 1: 2, 2: 3}  # ids start at 1, confirmed on the first frame
    assert all(r == result[0] for r in result)


def test_crossing_objects_do_not_swap():
    """Two people walk through each other (full overlap at t=30); the motion model keeps them apart."""
    scenes = [[("right", box_at(100 + 6 * t, 200), 0.9), ("left", box_at(460 - 6 * t, 206), 0.9)]
              for t in range(60)]
    result = ids_by_object(ByteTrack(), scenes)
    assert result[0]["right"] != result[0]["left"]
    assert all(r == result[0] for r in result if len(r) == 2)
    assert sum(len(r) == 2 for r in result) >= 55


def test_hidden_object_returns_with_its_id_within_the_buffer():
    """Hidden for 50 frames (< 60 frames = 2 s), it reappears where it would have walked to."""
    scenes = [[("a", box_at(100 + 5 * t, 100), 0.9)] if not 20 <= t < 70 else [] for t in range(90)]
    result = ids_by_object(ByteTrack(), scenes)
    assert result[19] == {"a": 1} and result[70] == {"a": 1} and result[89] == {"a": 1}
    assert all(r == {} for r in result[20:70])


def test_object_hidden_longer_than_the_buffer_gets_a_new_id():
    """Hidden for 3.3 s, longer than the 2 s buffer and the 3 s a lost track can be relinked."""
    scenes = [[("a", box_at(100 + 5 * t, 100), 0.9)] if not 20 <= t < 120 else [] for t in range(140)]
    result = ids_by_object(ByteTrack(), scenes)
    assert result[19] == {"a": 1} and result[121] == {"a": 2}


def test_lost_track_buffer_follows_the_frame_rate():
    """track_buffer is 60 frames at 30 fps, i.e. 2 s: at 10 fps a 30-frame gap (3 s) loses the track."""
    scenes = [[("a", box_at(100 + 2 * t, 100), 0.9)] if not 10 <= t < 40 else [] for t in range(50)]
    assert ids_by_object(ByteTrack(fps=30), scenes, fps=30)[45] == {"a": 1}
    assert ids_by_object(ByteTrack(fps=10), scenes, fps=10)[45] == {"a": 2}


def test_lost_track_keeps_moving_but_stops_changing_size():
    """Someone walking towards the camera (box growing 2 px a frame) disappears behind a pillar."""
    tracker = ByteTrack()
    for t in range(20):
        tracker.update(frame([[100 + 3 * t, 100, 140 + 3 * t, 180 + 2 * t]]), t / 30)
    last_height = 180 + 2 * 19 - 100
    for t in range(20, 50):
        tracker.update(frame(np.zeros((0, 4))), t / 30)
    (x1, y1, x2, y2), = tracker.predicted_boxes()
    assert y2 - y1 == pytest.approx(last_height, abs=3)  # not 60 px taller
    assert (x1 + x2) / 2 == pytest.approx(120 + 3 * 49, abs=10)  # still walking right


def test_low_score_detections_keep_a_track_alive_but_never_start_one():
    scenes = []
    for t in range(50):
        faint = 20 <= t < 35  # partly occluded: the detector is unsure
        scene = [("a", box_at(100 + 5 * t, 100), 0.15 if faint else 0.9)]
        scene.append(("ghost", box_at(600, 300 + t), 0.15))  # never confident: never a track
        scenes.append(scene)
    result = ids_by_object(ByteTrack(), scenes)
    assert all(r == {"a": 1} for r in result)


def test_below_low_threshold_is_ignored():
    scenes = [[("a", box_at(100 + 5 * t, 100), 0.9 if t < 10 else 0.05)] for t in range(20)]
    result = ids_by_object(ByteTrack(), scenes)
    assert result[9] == {"a": 1} and all(r == {} for r in result[10:])


def test_new_object_after_the_first_frame_needs_a_second_sighting():
    scenes = [[("a", box_at(100, 100), 0.9)]] + [[("a", box_at(100, 100), 0.9), ("b", box_at(300, 100), 0.9)]] * 3
    result = ids_by_object(ByteTrack(), scenes)
    assert result[1] == {"a": 1}  # b seen once: tentative, no id yet
    assert result[2] == {"a": 1, "b": 2} == result[3]


SAMPLE_TIMES = [0, 1, 2, 3, 5, 6, 7, 9, 10, 11]  # 1 fps sampling with two dropped samples


def test_timestamps_not_frame_counts_drive_the_motion_model():
    """A car moving 150 px/s sampled at 1 fps with drops: the 2 s gaps move it 300 px, more than its 250 px width."""
    tracker = ByteTrack(fps=30)
    ids = [tracker.update(frame([box_at(150 * t, 100, w=250, h=150)]), float(t)).track_id.tolist()
           for t in SAMPLE_TIMES]
    assert ids == [[1]] * len(SAMPLE_TIMES)


def test_counting_calls_instead_of_time_would_lose_the_track():
    """The same samples without timestamps (one frame per call): the check above is not vacuous."""
    tracker = ByteTrack(fps=1)
    ids = [tracker.update(frame([box_at(150 * t, 100, w=250, h=150)])).track_id.tolist() for t in SAMPLE_TIMES]
    assert ids[-1] != [1]


def test_two_instances_share_no_state():
    scenes = [frame([box_at(100 + 5 * t, 100)]) for t in range(5)]
    a, b = ByteTrack(), ByteTrack()
    for t, dets in enumerate(scenes):
        a.update(dets, t / 30)
    out = b.update(frame([box_at(500, 500), box_at(10, 10)]), 0.0)
    assert out.track_id.tolist() == [1, 2]
    assert a.update(scenes[-1], 5 / 30).track_id.tolist() == [1]
    a.reset()
    assert a.update(frame([box_at(0, 0)]), 0.0).track_id.tolist() == [1]


def test_output_keeps_detection_boxes_scores_and_classes():
    dets = frame([box_at(10, 10), box_at(300, 10)], np.array([0.8, 0.6]), np.array([1, 0]))
    out = ByteTrack().update(dets, 0.0)
    np.testing.assert_array_equal(out.xyxy, dets.xyxy)
    assert out.class_name.tolist() == ["car", "person"] and out.score.tolist() == pytest.approx([0.8, 0.6])


def test_registry_and_parameter_checks():
    assert create_tracker("none", 30) is None
    assert isinstance(create_tracker("bytetrack", 25, {"track_buffer": 60}), ByteTrack)
    with pytest.raises(InputError, match="unknown tracker"):
        create_tracker("sort", 30)
    with pytest.raises(InputError, match="unknown parameter"):
        ByteTrack(track_bufer=10)
    with pytest.raises(InputError, match="track_low_thresh"):
        ByteTrack(track_low_thresh=0.6, track_high_thresh=0.5)
    with pytest.raises(InputError, match="relink_s must be >= 0"):
        ByteTrack(relink_s=-1)
    with pytest.raises(InputError, match="unknown parameter.*reacquire_distance"):  # replaced by relink_s
        ByteTrack(reacquire_distance=0.25)


class FixedTrack:
    """A stand-in tracker that puts every detection on track 1, so the vote alone is under test."""

    name, Config = "fixed", None

    def update(self, detections, time=None, frame_size=None):
        return detections.with_track_ids(np.ones(len(detections), np.int64))

    def reset(self) -> None:
        pass

    def params(self) -> dict:
        return {}


def test_a_track_has_the_class_of_its_heaviest_score_weighted_vote():
    """Detections alternate between `cell phone` (0.3) and `car` (0.8), phone first: the vote says phone on
    frame 0 (the only evidence) and car from frame 1 on, every frame, although half the frames say phone."""
    from vidpipe.tracking import ClassVote

    names = ("car", "cell phone")
    vote = ClassVote(FixedTrack())
    voted, own = [], []
    for i in range(10):
        cls, score = (1, 0.3) if i % 2 == 0 else (0, 0.8)
        out = vote.update(Detections([[0, 0, 10, 10]], [score], [cls], names), time=i / 10)
        voted.append(out.track_class_name[0])
        own.append(out.class_name[0])
    assert voted == ["cell phone"] + ["car"] * 9
    assert own == ["cell phone", "car"] * 5  # the detector's own class is kept, per row


def test_votes_of_long_gone_tracks_are_forgotten():
    from vidpipe.tracking import ClassVote

    vote = ClassVote(FixedTrack(), forget_after_s=5)
    names = ("car", "cell phone")
    vote.update(Detections([[0, 0, 10, 10]], [0.9], [1], names), time=0.0)
    vote.update(Detections.empty(names), time=6.0)  # the track has not been seen for 6 s
    out = vote.update(Detections([[0, 0, 10, 10]], [0.3], [0], names), time=7.0)
    assert out.track_class_name.tolist() == ["car"]  # a fresh tally, not the old cell phone's 0.9


def cyclist_scenes(frames: int = 60) -> list[Detections]:
    """A cyclist riding right: a person box over a bicycle box, moving together. Every fifth frame the
    detector places the two boxes the other way round (the person box low, the bicycle box high), as happens
    when one box of the pair is poorly localised."""
    scenes = []
    for t in range(frames):
        person, bicycle = box_at(100 + 3 * t, 40, 40, 100), box_at(95 + 3 * t, 80, 50, 70)
        if t % 5 == 4:
            person, bicycle = box_at(95 + 3 * t, 75, 50, 75), box_at(100 + 3 * t, 45, 40, 95)
        scenes.append(Detections(np.array([person, bicycle], float), np.array([0.9, 0.85]), np.array([0, 1]),
                                 ("person", "bicycle")))
    return scenes


@pytest.mark.parametrize("consistent", [True, False])
def test_a_cyclist_stays_two_tracks_each_with_one_class(consistent):
    """Matching within a class first keeps the person track on the person box and the bicycle track on the
    bicycle box; matching on geometry alone swaps them whenever the boxes are placed the other way round."""
    tracker = ByteTrack(fps=30, class_consistent=consistent)
    classes: dict[int, set] = {}
    for t, detections in enumerate(cyclist_scenes()):
        tracked = tracker.update(detections, t / 30)
        for track, class_id in zip(tracked.track_id.tolist(), tracked.class_id.tolist()):
            classes.setdefault(track, set()).add(class_id)
    if consistent:
        assert sorted(classes) == [1, 2] and all(len(c) == 1 for c in classes.values()), classes
    else:  # the control: geometry alone hops between the two boxes
        assert any(len(c) > 1 for c in classes.values()), classes


def test_a_class_flicker_keeps_its_track():
    """A car the detector calls a truck now and then, alone in the frame: the class round finds no truck
    track, the cross-class round keeps the car's track."""
    tracker = ByteTrack(fps=30)
    ids = set()
    for t in range(40):
        box = np.array([box_at(50 + 4 * t, 100, 80, 50)], float)
        detections = Detections(box, np.array([0.8]), np.array([1 if t % 3 == 2 else 0]), ("car", "truck"))
        ids |= set(tracker.update(detections, t / 30).track_id.tolist())
    assert ids == {1}


@pytest.mark.parametrize("consistent", [True, False])
def test_a_one_frame_misreading_does_not_seed_the_track_of_the_object(consistent):
    """A parked car the detector calls `person` in the second frame it sees it, `car` otherwise (as on the
    street montage, where that box confirmed the car's new track): the track the car keeps is a car from its
    first row. The control (class-consistent matching off) lets the misread box confirm the track, whose
    voted class then changes."""
    tracker = create_tracker("bytetrack", 30.0, {"class_consistent": consistent}, vote=True)
    tracker.update(Detections.empty(NAMES), 0.0)  # the run starts before the car appears
    voted = []
    for t in range(1, 20):
        box = np.array([box_at(100, 100, 120, 60)], float)
        out = tracker.update(Detections(box, np.array([0.9]), np.array([0 if t == 2 else 1]), NAMES), t / 30)
        voted += [(int(i), NAMES[c]) for i, c in zip(out.track_id, out.track_class)]
    ids, classes = {i for i, _ in voted}, {c for _, c in voted}
    if consistent:
        assert len(ids) == 1 and classes == {"car"}, voted
    else:
        assert classes == {"person", "car"}, voted


def panned_scenes(compensate: bool, frames: int = 40):
    """Three people standing still while the camera pans in jerks: the picture jumps 30 px left every
    fourth frame. Returns the ids per person and frame, the tracker told the camera's motion or not."""
    tracker = ByteTrack(fps=30)
    people = [box_at(200, 100), box_at(260, 110), box_at(330, 95)]
    offset, out = 0.0, []
    for t in range(frames):
        jump = 30.0 if t % 4 == 3 else 0.0
        offset += jump
        if compensate and jump:
            tracker.warp(np.array([[1.0, 0.0, -jump], [0.0, 1.0, 0.0]]))  # what CameraMotion measures
        boxes = np.array(people, float) - [offset, 0, offset, 0]
        tracked = tracker.update(Detections(boxes, np.full(3, 0.9), np.zeros(3, int), NAMES), t / 30)
        out.append({int(np.argmin(np.abs(boxes - b).sum(axis=1))): int(i)
                    for b, i in zip(tracked.xyxy, tracked.track_id)})
    return out


def test_a_panning_camera_keeps_every_id_when_the_tracks_move_with_it():
    with_motion = panned_scenes(compensate=True)
    assert all(frame == with_motion[0] for frame in with_motion) and len(with_motion[0]) == 3
    without = panned_scenes(compensate=False)  # the control: the jumps break the tracks
    assert len({i for frame in without for i in frame.values()}) > 3


def panned_out_and_back(frame_size) -> list[int]:
    """A person standing still while the camera pans 10 px a frame until they have left the picture's left edge,
    waits, and pans back (the tracker told the motion). The detector's boxes are cut by the border, and missing
    once under 15 px are left. Returns every id the person was given."""
    tracker = ByteTrack(fps=30)
    person = np.array([[100.0, 100.0, 160.0, 220.0]])
    offset, ids = 0.0, set()
    for t in range(60):
        step = 10.0 if t < 18 else (-10.0 if 30 <= t < 48 else 0.0)
        offset += step
        if step:
            tracker.warp(np.array([[1.0, 0.0, -step], [0.0, 1.0, 0.0]]))
        seen = np.clip(person - [offset, 0, offset, 0], 0, [640, 360, 640, 360])
        seen = seen[seen[:, 2] - seen[:, 0] >= 15]
        tracked = tracker.update(Detections(seen, np.full(len(seen), 0.9), np.zeros(len(seen), int), NAMES),
                                 t / 30, frame_size)
        ids |= set(tracked.track_id.tolist())
    return sorted(ids)


def test_an_object_the_camera_pans_away_from_comes_back_with_its_id():
    """Told the picture's size, the tracker takes a box shrinking into the border for the object leaving view,
    not for the object shrinking and moving; the control, without the size, learns that motion while the box
    shrinks, keeps it while the person is out of view, and gives them a new id when they come back."""
    assert panned_out_and_back((640, 360)) == [1]
    assert len(panned_out_and_back(None)) == 2


def mot17_09_through_a_panning_window() -> dict[int, dict[int, int]]:
    """MOT17-09's real detections (det.txt) seen through a 1440x810 window that pans 472 px across the scene
    and back every 4 s (the camera-motion bench's pan, without its shake), the tracker told the exact motion
    and the window's size. Returns, per labelled person (gt.txt), frame -> the id their box got."""
    from scipy.optimize import linear_sum_assignment

    from conftest import shared_path
    from vidpipe.detections import box_iou
    from vidpipe.evaluation.motchallenge import MotSequence, read_mot_file

    sequence = MotSequence.open(shared_path("data", "mot", "MOT17", "train", "MOT17-09"))
    labels = read_mot_file(sequence.gt_file)
    labels = labels[(labels[:, 6] == 1) & (labels[:, 7] == 1)]  # people MOTChallenge scores
    size = np.array([1440, 810, 1440, 810])
    tracker, corner, ids = ByteTrack(fps=sequence.fps), None, {}
    for i, (_, found) in enumerate(sequence.detections()):
        x = round(236 * (1 - np.cos(2 * np.pi * i / sequence.fps / 4.0)) + 4)
        if corner is not None and x != corner:
            tracker.warp(np.array([[1.0, 0.0, corner - x], [0.0, 1.0, 0.0]]))  # the picture moves against the window
        corner, boxes = x, found.xyxy - [x, 135, x, 135]
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = ((centre >= 0) & (centre < size[:2])).all(axis=1)
        tracked = tracker.update(Detections(np.clip(boxes[inside], 0, size), found.score[inside],
                                            found.class_id[inside], found.names), i / sequence.fps, (1440, 810))
        truth = labels[labels[:, 0] == i + 1]
        iou = box_iou(np.hstack([truth[:, 2:4], truth[:, 2:4] + truth[:, 4:6]]) - [x, 135, x, 135], tracked.xyxy)
        for row, column in zip(*linear_sum_assignment(-iou)):
            if iou[row, column] >= 0.5:
                ids.setdefault(int(truth[row, 1]), {})[i] = int(tracked.track_id[column])
    return ids


def test_a_person_the_pan_hides_at_the_border_comes_back_with_their_own_id():
    """Person 22 walks out of the window's right edge as it pans (frame 223) and back in 1.3 s later, where
    person 10's track was lost beside them. The returning box, cut by the border, is compared with each lost
    track's whole expected box, also past the border: it overlaps neither enough, and its new track continues
    person 22's (relinking). Matched by the slivers the border leaves of the lost tracks' expected boxes, it
    overlapped person 10's a little more (IoU 0.23 against 0.21, though half its height) and took their id."""
    person = mot17_09_through_a_panning_window()[22]
    assert min(person) < 223 and max(person) > 263  # seen before and after the pan hid them
    assert len(set(person.values())) == 1, person


def suburban_first_frame() -> np.ndarray:
    """The quickstart clip's first frame: a real picture for the camera-motion tests."""
    from conftest import SUBURBAN
    from vidpipe.sources import open_source

    source = open_source(SUBURBAN)
    try:
        return next(iter(source)).image
    finally:
        source.close()


def test_camera_motion_measures_a_known_shift_on_a_real_frame():
    import cv2

    from vidpipe.tracking import CameraMotion

    image = suburban_first_frame()
    motion = CameraMotion("on")
    assert motion(image, 0.0) is None  # nothing to compare the first frame with
    shifted = cv2.warpAffine(image, np.float32([[1, 0, -12], [0, 1, 5]]), image.shape[1::-1],
                             borderMode=cv2.BORDER_REPLICATE)
    affine = motion(shifted, 0.04)
    assert affine is not None and np.allclose(affine[:, 2], [-12, 5], atol=1.0), affine
    assert np.allclose(affine[:, :2], np.eye(2), atol=0.01)
    still = CameraMotion("auto")
    for t in range(60):  # a still camera: nothing applied, and after a second it only checks now and then
        assert still(image, t / 30) is None
    assert still.profile.items == 60 and still.moving_frames == 0


@pytest.mark.parametrize("far_px", [8.0, float("inf")])
def test_camera_motion_measures_a_shift_beyond_the_pyramids_reach(monkeypatch, far_px):
    """Frames a second apart from a fast pan: 240 px, 120 of the grey copy's, where following the corners from
    where they were finds nothing. Phase correlation's whole-picture shift seeds the search; the control
    (`FAR_PX` infinite: never seeded) measures no motion at all."""
    import cv2

    from vidpipe.tracking import CameraMotion, motion

    monkeypatch.setattr(motion, "FAR_PX", far_px)
    image = suburban_first_frame()
    camera = CameraMotion("on")
    camera(image, 0.0)
    panned = cv2.warpAffine(image, np.float32([[1, 0, -240], [0, 1, 0]]), image.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    affine = camera(panned, 1.0)
    if far_px == 8.0:
        assert affine is not None and np.allclose(affine[:, 2], [-240, 0], atol=1.5), affine
    else:
        assert affine is None or not np.allclose(affine[:, 2], [-240, 0], atol=10), affine


def test_camera_motion_follows_the_background_not_a_large_object_moving_in_front_of_it():
    """A fixed camera; a large, richly textured object (a crop of a real frame) moves 6 px right in front of a
    plain background. With the object's box left out the estimate finds no motion; the control, every corner
    kept, takes the object's motion for the camera's."""
    import cv2

    from vidpipe.tracking import CameraMotion

    texture = suburban_first_frame()[60:300, 100:460]
    background = cv2.GaussianBlur(np.full((352, 640, 3), 120, np.uint8) + texture.mean().astype(np.uint8), (0, 0), 5)
    background[::40] = 255  # a few plain lines: the background's own corners, where the camera's motion shows
    background[:, ::40] = 255

    def scene(x: int) -> np.ndarray:
        picture = background.copy()
        picture[60:300, x:x + 360] = texture
        return picture

    box = np.array([[100, 60, 460, 300]], float)
    for leave_out in (True, False):
        motion = CameraMotion("on")
        motion(scene(100), 0.0)
        if leave_out:
            motion.exclude(box)
        affine = motion(scene(106), 0.04)
        shift = np.zeros(2) if affine is None else affine[:, 2]
        if leave_out:
            assert np.abs(shift).max() < 1.0, shift  # the camera did not move
        else:
            assert shift[0] > 3.0, shift  # fooled by the object: the control shows what leaving it out is for


@pytest.mark.parametrize("relink_s", [3.0, 0.0])
def test_relinking_joins_two_tracklets_of_one_object_split_by_a_gap(relink_s):
    """A person walks behind a pillar for 2.5 s, longer than the 2 s a lost track is matched by overlap, and
    comes out where they were heading. The new track takes the old id (the default); with relinking off it
    keeps a new one."""
    scenes = [[("a", box_at(100 + 2 * t, 100), 0.9)] if not 20 <= t < 95 else [] for t in range(110)]
    result = ids_by_object(ByteTrack(fps=30, relink_s=relink_s), scenes)
    assert result[19] == {"a": 1}
    assert result[96] == result[109] == ({"a": 1} if relink_s else {"a": 2})


def test_relinking_never_joins_two_objects_that_overlap_in_time():
    """Person A walks towards person B, who has been standing since frame 5 where A is heading, and is hidden
    at frame 20. B's track was confirmed while A's was alive, so it never takes A's id."""
    scenes = [[("b", box_at(180, 300), 0.9)] * (t >= 5) + [("a", box_at(100 + 2 * t, 300), 0.9)] * (t < 20)
              for t in range(90)]
    result = ids_by_object(ByteTrack(fps=30), scenes)
    assert result[19] == {"a": 1, "b": 2}
    assert all(r == {"b": 2} for r in result[20:])


@pytest.mark.parametrize(("height", "kind", "relinked"), [(80, "person", True), (160, "person", False),
                                                          (80, "car", False)])
def test_relinking_needs_the_size_and_class_of_the_lost_track(height, kind, relinked):
    """Person A is hidden at frame 20; at frame 85, after the 2 s in which overlap alone would match it, a box
    appears where A was heading. Of A's size and class it continues A (the control); twice as tall, or a car,
    it is another object."""
    tracker = ByteTrack(fps=30)
    for t in range(20):
        assert tracker.update(frame([box_at(100 + 2 * t, 300)]), t / 30).track_id.tolist() == [1]
    for t in range(20, 85):
        tracker.update(frame([]), t / 30)
    found = []
    for t in range(85, 90):
        x, y = 120 + 2 * t - height / 4, 340 - height / 2  # centred on A's predicted centre
        found += tracker.update(frame([box_at(x, y, height / 2, height)], classes=np.array([NAMES.index(kind)])),
                                t / 30).track_id.tolist()
    assert set(found) == ({1} if relinked else {2})


def test_camera_motion_stays_still_when_an_undetected_object_outnumbers_the_background(monkeypatch):
    """A fixed camera over little texture (a few specks on asphalt); a richly textured object no detector has
    boxed yet moves 6 px. Its corners outnumber the background's, so the fit follows it, but the specks that
    stayed in place say the camera did not move. The control, that check switched off, is fooled; a real pan
    of the same picture is still measured."""

    from vidpipe.tracking import CameraMotion
    from vidpipe.tracking import motion as motion_module

    texture = suburban_first_frame()[100:220, 200:360]  # a car's size
    background = np.full((352, 640, 3), 70, np.uint8)
    for y, x in np.random.default_rng(0).integers((10, 10), (342, 630), (90, 2)):
        background[y:y + 6, x:x + 6] = 230  # specks: the background's only corners, fewer than the object's

    def scene(x: int, pan: int = 0) -> np.ndarray:
        picture = background.copy()
        picture[60:180, x:x + 160] = texture
        return np.roll(picture, pan, axis=1)

    def shift(moved: int, pan: int = 0) -> np.ndarray:
        motion = CameraMotion("on")
        motion(scene(100), 0.0)
        affine = motion(scene(100 + moved, pan), 0.04)
        return np.zeros(2) if affine is None else affine[:, 2]

    assert np.abs(shift(6)).max() < 1.0, shift(6)
    assert np.allclose(shift(0, pan=-8), [-8, 0], atol=1.0), shift(0, pan=-8)  # the camera pans: measured
    monkeypatch.setattr(motion_module, "STILL_SHARE", np.inf)
    assert shift(6)[0] > 3.0, shift(6)  # the control: the object taken for the camera


def test_auto_camera_motion_leaves_a_fixed_camera_over_plain_ground_alone(monkeypatch):
    """`parking-lot-cars.mp4` is filmed from a fixed camera above plain asphalt. There, a car driving in
    before the detector boxes it has more corners than the ground. The default, `auto`, gives exactly the
    tracks that `off` gives, with the real detector on the whole clip, and applies no motion. In the control,
    the check for corners that stayed in place is off, and the car is taken for a pan (on frames where, at
    int8, it also moves the tracks; at bf16 and fp32 no track is there yet to move)."""
    from conftest import PARKING
    from vidpipe.detectors import load_detector
    from vidpipe.sources import open_source
    from vidpipe.streams import track
    from vidpipe.tracking import CameraMotion
    from vidpipe.tracking import motion as motion_module

    source = open_source(PARKING)
    frames = list(source)  # 30 s; cars drive in from the top and from the bottom
    source.close()
    detector = load_detector("yolo", conf=0.1)
    found = [detector.detect([frame.image])[0] for frame in frames]

    def tracks(mode: str) -> tuple[list, int]:
        motion = CameraMotion(mode)
        pairs = track(ByteTrack(fps=source.info.fps), frames, found, motion)
        return [(frame.index, d.track_id.tolist(), d.xyxy.round(1).tolist()) for frame, d in pairs], \
            motion.moving_frames

    off, _ = tracks("off")
    assert tracks("auto") == (off, 0)
    monkeypatch.setattr(motion_module, "STILL_SHARE", np.inf)
    assert tracks("auto")[1] > 0  # the control: without the check, the car is taken for the camera moving


def test_camera_motion_measures_a_slow_pan_of_a_large_frame():
    """At 1920 px wide a grey-copy pixel is six of the frame's, so a pan of 1.2 px a frame moves every corner
    by a fifth of one: it must still be measured, not taken for a picture that stayed in place."""
    import cv2

    from vidpipe.tracking import CameraMotion

    large = cv2.resize(suburban_first_frame(), (1920, 1056), interpolation=cv2.INTER_CUBIC)
    panned = cv2.warpAffine(large, np.float32([[1, 0, 1.2], [0, 1, 0]]), (1920, 1056), borderMode=cv2.BORDER_REPLICATE)
    motion = CameraMotion("on")
    motion(large, 0.0)
    affine = motion(panned, 0.04)
    assert affine is not None and abs(affine[0, 2] - 1.2) < 0.5 and abs(affine[1, 2]) < 0.5, affine


@pytest.mark.parametrize("hold_s", [3.0, 0.0])
def test_auto_camera_motion_keeps_up_with_a_hand_held_camera_at_rest(monkeypatch, hold_s):
    """A camera pans 4 px a frame for 1.5 s, then is held by a hand at rest for 2 s: a 2 px jolt every third
    frame, so the median shift over a second is 0. `auto` still applies those jolts for 3 s after the camera
    last moved (the default); without that hold (the control) it turns off and leaves them to the tracks."""
    from vidpipe.tracking import CameraMotion
    from vidpipe.tracking import motion as motion_module

    monkeypatch.setattr(motion_module, "HOLD_S", hold_s)
    picture = suburban_first_frame()
    window = (picture.shape[1] - 240, picture.shape[0] - 40)
    # the window's left edge: the pan (230 down to 54), then a 2 px jolt every third frame (down to 14)
    positions = [230 - 4 * i for i in range(45)] + [54 - 2 * ((i + 1) // 3) for i in range(60)]
    motion = CameraMotion("auto")
    applied = []
    for i, left in enumerate(positions):
        affine = motion(picture[20:20 + window[1], left:left + window[0]], i / 30)
        applied.append(0.0 if affine is None else float(affine[0, 2]))
    jolts = [applied[45 + i] for i in range(60) if i % 3 == 2]
    assert np.mean(np.abs(np.array(applied[5:44]) - 4) < 0.5) > 0.9  # the pan is measured and applied
    if hold_s:
        assert all(abs(j - 2) < 0.5 for j in jolts), jolts
    else:
        assert sum(j == 0.0 for j in jolts) >= 10, jolts  # left out once the pan is a second past


def test_a_clock_that_goes_back_costs_no_warning_and_keeps_a_lost_tracks_age():
    """A stream whose timestamps restart (a camera switched to another resolution, two recordings joined): the
    frame after the jump counts as one frame later. Here the clock jumps from 3.0 s back to 0.25 s as a car is
    hidden, and a person confirmed at 0.5 s is 2.5 s "before" the car was last seen, where the relinking gate's
    limit was 0 and numpy divided by it. The car is back 2 frames later, within its buffer, with its id."""
    car, person = box_at(100, 100), box_at(500, 300)
    clock = [i / 4 for i in range(13)] + [0.25, 0.5, 0.75, 1.0]  # 4 fps: times exact in binary
    scenes = [[car]] * 13 + [[person]] * 2 + [[car, person]] * 2
    tracker = ByteTrack()
    with np.errstate(all="raise"):
        tracked = [tracker.update(frame(boxes), time) for time, boxes in zip(clock, scenes)]
    by_place = [{"car" if x < 300 else "person": int(t) for x, t in zip(d.xyxy[:, 0], d.track_id)} for d in tracked]
    assert by_place[0] == {"car": 1} and by_place[14] == {"person": 2}
    assert by_place[-1] == {"car": 1, "person": 2}
