"""The lifecycle's `end` against the real tracker: an object ends exactly when its track can no longer come back."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from vidpipe.detections import Detections
from vidpipe.frames import Frame
from vidpipe.lifecycle import Lifecycle
from vidpipe.tracking import ConfirmRule, create_tracker

NAMES = ("person", "car")
IMAGE = np.zeros((1, 1, 3), np.uint8)
START = dt.datetime(2026, 12, 6, tzinfo=dt.timezone.utc)
FPS = 10.0


def _car() -> Detections:
    return Detections([[100, 100, 160, 140]], [0.9], [1], NAMES)


@pytest.mark.parametrize("gap_s, comes_back", [(1.5, True), (2.6, True), (3.5, False), (5.0, False)])
def test_an_object_ends_when_and_only_when_the_tracker_gives_its_id_to_no_one_again(gap_s, comes_back):
    """A parked car seen for 1 s, hidden for `gap_s`, then seen again where it was. Hidden 1.5 s, ByteTrack
    finds it again (a lost track); 2.6 s, it relinks it (a track kept for relinking up to its forget_s, 3 s):
    under its id, and its object never ended. Hidden longer, the object ends on the frame the tracker drops
    its track (the first more than forget_s after its last detection), before it is seen again as a new
    object with a new track."""
    tracker = create_tracker("bytetrack", FPS, vote=True, confirm=ConfirmRule(min_frames=2, min_score=0.5))
    life = Lifecycle("drive way", lambda t: START + dt.timedelta(seconds=t), tracker.forget_s)
    hidden = round(gap_s * FPS)
    messages, ids = [], []
    for i in range(10 + hidden + 4):
        frame = Frame(i, i / FPS, IMAGE)
        seen = i < 10 or i >= 10 + hidden
        tracked = tracker.update(_car() if seen else Detections.empty(NAMES), frame.time)
        ids += tracked.track_id.tolist()
        messages += [(m["type"], m["after"]["track_id"], i) for m in life.update(frame, tracked, {})]
    messages += [(m["type"], m["after"]["track_id"], None) for m in life.close()]
    assert (len(set(ids)) == 1) == comes_back, (set(ids), gap_s)
    first, *rest = sorted(set(ids))
    if comes_back:
        assert messages == [("new", first, 1), ("end", first, None)]
    else:
        (second,) = rest
        ended = next(i for kind, track, i in messages if kind == "end" and track == first)
        dropped = next(i for i in range(10, 10 + hidden) if (i - 9) / FPS > tracker.forget_s + 1e-9)
        assert ended == dropped and tracker.forget_s == 3.0
        assert [(kind, track) for kind, track, _ in messages] == [("new", first), ("end", first), ("new", second),
                                                                  ("end", second)]
    assert life.ids[first].endswith("-drive-way-1") and life.ids[first].startswith(f"{START.timestamp():.3f}")
