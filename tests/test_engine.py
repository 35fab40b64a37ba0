"""The staged engine: order kept, errors surfaced, early stops clean, and outputs equal to the sequential path."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pandas as pd
import pytest

from conftest import SUBURBAN, run_cli
from vidpipe.detections import Detections
from vidpipe.engine import Stages
from vidpipe.frames import Frame
from vidpipe.sinks import DetectionTableSink
from vidpipe.sources import open_source


def test_items_flow_in_order_through_every_stage():
    def slow_square(x):
        time.sleep(0.001 * (x % 3))  # uneven work must not reorder anything
        return x * x

    stages = Stages(range(200), [("square", slow_square), ("negate", lambda x: -x)], queue_size=2)
    assert list(stages) == [-(x * x) for x in range(200)]
    read, square, negate = stages.profiles
    assert (read.items, square.items, negate.items) == (200, 200, 200)
    assert square.busy_s > 0 and 0 <= square.mean_queue <= 2


def test_an_error_in_a_stage_reaches_the_consumer():
    def fail_at_50(x):
        if x == 50:
            raise ValueError("bad item 50")
        return x

    with pytest.raises(ValueError, match="bad item 50"):
        list(Stages(range(1000), [("check", fail_at_50)]))
    assert not [t for t in threading.enumerate() if t.name.startswith("vidpipe-check")]


def test_a_consumer_that_stops_early_stops_the_stages():
    produced = []

    def endless():
        i = 0
        while True:
            produced.append(i)
            yield i
            i += 1

    stream = iter(Stages(endless(), [("identity", lambda x: x)], queue_size=2))
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    time.sleep(0.3)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count < 20  # bounded queues: the reader never ran far ahead, and it stopped
    assert not [t for t in threading.enumerate() if t.name.startswith("vidpipe-")]


STOPPED_TWICE = """
import os, signal, threading, time
from vidpipe import stopping
from vidpipe.engine import Stages

def infer(x):  # a model call: a stop cannot cut it short, and the engine must wait for it
    time.sleep(0.6)
    return x

def stop():
    os.kill(os.getpid(), signal.SIGINT)

stopping.install()
stages = Stages(range(100), [("detect", infer)])
threading.Timer(0.2, stop).start()  # lands while the consumer waits for the first result
threading.Timer(0.3, stop).start()  # lands while the engine waits for the stage it has just stopped
try:
    for item in stages:
        pass
except KeyboardInterrupt:
    pass
alive = [t.name for t in threading.enumerate() if t.name.startswith("vidpipe-")]
print("alive:", alive)
"""


def test_a_second_stop_while_the_engine_stops_its_stages_still_waits_for_them():
    """A quick second Ctrl-C used to cut short the engine's wait for its threads: the run then finished (and the
    process exited) with a model call still running, which ended 1 run in 9 in C++'s `terminate` (SIGABRT)."""
    result = subprocess.run([sys.executable, "-c", STOPPED_TWICE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "alive: []" in result.stdout, result.stdout


def test_threaded_and_sequential_runs_write_the_same_outputs(tmp_path):
    for engine, flags in (("threaded", []), ("sequential", ["--sequential"])):
        result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / engine), *flags, "--max-frames", "90", "-q")
        assert result.returncode == 0, result.stderr
    for name in ("detections.parquet", "frames.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "threaded" / name),
                                      pd.read_parquet(tmp_path / "sequential" / name))
    assert (tmp_path / "threaded" / "tracks.txt").read_text() == (tmp_path / "sequential" / "tracks.txt").read_text()
    videos = [[f.image for f in open_source(tmp_path / e / "annotated.mp4")] for e in ("threaded", "sequential")]
    assert len(videos[0]) == len(videos[1]) == 90
    assert all(np.array_equal(a, b) for a, b in zip(*videos))


def test_profile_reports_every_stage(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path), "--max-frames", "40", "--profile", "-q")
    assert result.returncode == 0, result.stderr
    for stage in ("read", "detect", "write"):
        assert f"\n{stage} " in result.stdout
    detector = json.loads((tmp_path / "summary.json").read_text())["detector"]  # the runtime this machine picked
    assert f"engine threaded, runtime {detector['runtime']} ({detector['precision']}), batch 4" in result.stdout




def test_detection_table_sink_releases_images(tmp_path):
    sink = DetectionTableSink(tmp_path / "d.parquet", "clip")
    image = np.zeros((720, 1280, 3), np.uint8)
    alive = weakref.ref(image)
    sink.write(Frame(0, 0.0, image), Detections([[0, 0, 5, 5]], [0.9], [0], ("person",)))
    del image
    gc.collect()
    assert alive() is None  # the buffered row kept the frame's index and time, not its pixels
    sink.close()
    assert len(pd.read_parquet(tmp_path / "d.parquet")) == 1


def test_detect_every_k_frames_fills_the_frames_between_with_the_trackers_predictions(tmp_path):
    """--detect-every 3: every frame is in the tables; detector rows on every 3rd frame; the rows between are
    predictions (detected = false) that move with their track; threaded and sequential agree."""
    for engine, flags in (("threaded", []), ("sequential", ["--sequential"])):
        result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / engine), "--detect-every", "3",
                         "--max-frames", "60", "--no-video", *flags, "-q")
        assert result.returncode == 0, result.stderr
    frames = pd.read_parquet(tmp_path / "threaded" / "frames.parquet")
    table = pd.read_parquet(tmp_path / "threaded" / "detections.parquet")
    assert frames["frame"].tolist() == list(range(60))
    assert set(table.loc[table["detected"], "frame"] % 3) == {0}
    assert set(table.loc[~table["detected"], "frame"] % 3) == {1, 2}
    predicted = table[~table["detected"] & (table["frame"] > 30)]
    assert len(predicted) > 20 and (predicted["track_id"] >= 1).all()
    moved = 0
    for _, rows in predicted.groupby("track_id"):
        moved += rows["x1"].nunique() > 1 or rows["y1"].nunique() > 1
    assert moved >= 1  # a predicted box follows its track's motion, it is not a copy of the last one
    pd.testing.assert_frame_equal(table, pd.read_parquet(tmp_path / "sequential" / "detections.parquet"))
    tracks = pd.read_parquet(tmp_path / "threaded" / "tracks.parquet")
    assert tracks["frames_detected"].sum() == table["detected"].sum()  # predictions are not detections
