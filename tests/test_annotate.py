"""Drawing: boxes in stable per-track colours, readable labels, trails, sizes that follow the frame."""

from __future__ import annotations

import numpy as np

from vidpipe.annotate import PALETTE, Annotator, color_for
from vidpipe.detections import Detections

NAMES = ("person", "car")


def dets(boxes, tracks=None, classes=None, scores=None) -> Detections:
    n = len(boxes)
    return Detections(np.asarray(boxes, float), scores if scores is not None else np.full(n, 0.87),
                      classes if classes is not None else np.zeros(n, int), NAMES, tracks)


def test_draws_on_a_copy_with_the_track_colour():
    image = np.zeros((360, 640, 3), np.uint8)
    out = Annotator().annotate(image, dets([[100, 100, 200, 300]], tracks=np.array([12])))
    assert not image.any()  # the source frame is untouched
    colour = color_for(12, 0)
    assert tuple(out[200, 100]) == colour and tuple(out[200, 200]) == colour  # left and right edges
    assert not out[200, 150].any()  # inside the box stays clear
    label = out[70:100, 100:200]  # the label patch sits just above the box
    assert (label == colour).all(axis=2).mean() > 0.3


def test_colours_are_stable_per_track_and_fall_back_to_class():
    assert color_for(7, 0) == color_for(7, 1) == tuple(int(c) for c in PALETTE[7])
    assert color_for(7, 0) != color_for(8, 0)
    assert color_for(-1, 1) == tuple(int(c) for c in PALETTE[1])


def test_label_text_contrasts_with_its_patch():
    image = np.full((360, 640, 3), 255, np.uint8)
    for track in (1, 12):  # a dark and a light palette colour
        out = Annotator().annotate(image, dets([[100, 100, 300, 300]], tracks=np.array([track])))
        patch = out[60:100, 102:298].reshape(-1, 3).astype(int)
        luminance = patch @ [0.114, 0.587, 0.299]
        assert luminance.max() - luminance.min() > 100, track


def test_label_stays_inside_the_frame_at_the_top_edge():
    out = Annotator().annotate(np.zeros((200, 300, 3), np.uint8), dets([[250, 0, 299, 60]], tracks=np.array([3])))
    assert out[0:25, 200:300].any()  # drawn inside the box, not above the image


def test_trails_follow_a_track():
    annotator, plain = Annotator(trails=True), Annotator()
    image = np.zeros((300, 600, 3), np.uint8)
    for x in range(50, 400, 25):
        box = [[x, 100, x + 40, 180]]
        trail = annotator.annotate(image, dets(box, tracks=np.array([4])))
        no_trail = plain.annotate(image, dets(box, tracks=np.array([4])))
    # the line its bottom centre walked along (y = 180: where lines and zones count it), behind the last box
    assert (trail[180, 100:300] == color_for(4, 0)).all(axis=1).sum() > 150
    assert not no_trail[180, 100:300].any() and not trail[140, 100:300].any()


def test_line_width_and_text_follow_the_frame_size():
    """The same box at 360p and 1080p covers about the same share of the picture."""
    share = []
    for width, height in ((640, 360), (1920, 1080)):
        box = np.array([[0.1, 0.2, 0.5, 0.6]]) * [width, height, width, height]
        out = Annotator().annotate(np.zeros((height, width, 3), np.uint8), dets(box, tracks=np.array([5])))
        share.append(out.any(axis=2).mean())
    assert 0.7 < share[1] / share[0] < 1.4


def test_the_label_names_the_tracks_voted_class_not_the_frames():
    """A car the detector called `cell phone` in this frame is labelled with its track's class."""
    names = ("person", "car", "cell phone")
    image = np.zeros((360, 640, 3), np.uint8)
    flicker = Detections([[100, 100, 300, 300]], [0.6], [2], names, [5], track_class=[1])
    steady = Detections([[100, 100, 300, 300]], [0.6], [1], names, [5])
    assert (Annotator().annotate(image, flicker) == Annotator().annotate(image, steady)).all()


def test_label_parts_can_be_chosen_or_left_out():
    image = np.zeros((360, 640, 3), np.uint8)
    box = dets([[100, 100, 300, 300]], tracks=np.array([12]))
    above = slice(60, 99), slice(100, 300)
    widths = {}
    for labels in (("class", "id", "score"), ("id",), ()):
        out = Annotator(labels=labels).annotate(image, box)
        widths[labels] = (out[above] == color_for(12, 0)).all(axis=2).any(axis=0).sum()
    assert widths[("class", "id", "score")] > widths[("id",)] > widths[()] == 0


def test_colour_by_class_gives_one_colour_per_class():
    assert color_for(7, 1, by="class") == color_for(8, 1, by="class") == tuple(int(c) for c in PALETTE[1])
    image = np.zeros((360, 640, 3), np.uint8)
    two = dets([[50, 100, 150, 300], [400, 100, 500, 300]], tracks=np.array([7, 8]), classes=np.array([1, 1]))
    out = Annotator(color_by="class").annotate(image, two)
    assert tuple(out[200, 50]) == tuple(out[200, 400]) == tuple(int(c) for c in PALETTE[1])


def test_a_label_that_would_cover_another_moves():
    """Two boxes whose labels would land on the same spot: both labels stay readable, neither covers the
    other (the second moves inside its box)."""
    image = np.zeros((360, 640, 3), np.uint8)
    two = dets([[100, 100, 300, 300], [110, 104, 310, 304]], tracks=np.array([1, 2]), scores=np.array([0.9, 0.8]))
    out = Annotator().annotate(image, two)
    for track in (1, 2):
        assert (out == color_for(track, 0)).all(axis=2)[60:140].sum() > 1000, track


def test_text_is_readable_at_640_pixels():
    """At 640x360 a label's patch is at least 19 px tall: text of about 11 px (Hershey at scale 0.5) with its
    baseline and padding (it was 17 px, with 9 px text, before labels were scaled for small frames)."""
    image = np.zeros((360, 640, 3), np.uint8)
    out = Annotator(labels=("id",)).annotate(image, dets([[100, 150, 300, 300]], tracks=np.array([12])))
    rows = np.flatnonzero((out[:150, 100:140] == color_for(12, 0)).all(axis=2).any(axis=1))
    assert rows.max() - rows.min() + 1 >= 19


def test_labels_in_a_crowd_leave_the_people_visible():
    """A far-field crowd: 30 people 14x36 px side by side, and one near person. Labels 150 px wide would
    bury the crowd; they are left out there (the boxes stay), and the near person keeps a full label."""
    image = np.zeros((720, 1280, 3), np.uint8)
    crowd = [[100 + 16 * i, 300, 114 + 16 * i, 336] for i in range(30)]
    boxes = crowd + [[700, 300, 900, 650]]
    scores = np.r_[np.full(30, 0.6), 0.95]
    out = Annotator().annotate(image, dets(boxes, tracks=np.arange(1, 32), scores=scores))
    inside = np.zeros(image.shape[:2], bool)
    for x1, y1, x2, y2 in crowd:
        inside[y1 + 3:y2 - 2, x1 + 3:x2 - 2] = True  # the people, inside their box lines
    assert (out[inside] == 0).all(axis=1).mean() > 0.9  # still visible
    near = color_for(31, 0)
    assert (out[240:300, 700:900] == near).all(axis=2).sum() > 2000  # the near person's label patch, above it
