"""Event clips (`--clips PRE,POST`, `vidpipe.clips`): real runs of the suburban clip, the clips read back with
PyAV and their frames found among the source's own decoded frames, so each clip's first and last frame are
placed on the source's clock without trusting vidpipe's account of them."""

from __future__ import annotations

import http.client
import json
import os
import signal

import av
import numpy as np
import pytest
import yaml

from conftest import SUBURBAN, free_port, run_cli, vidpipe, wait_for

PRE, POST = 1.0, 1.0
FRAMES = 240  # 10 s of the clip: cars start and end inside it


def decoded(path, limit: int | None = None) -> list[tuple[float, np.ndarray]]:
    """Each frame's (timestamp in seconds from the stream's start, grey picture), decoded by PyAV."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        for frame in container.decode(stream):
            frames.append((float((frame.pts - start) * stream.time_base), frame.to_ndarray(format="gray")
                           .astype(np.int16)))
            if limit is not None and len(frames) == limit:
                break
    return frames


def found_at(picture: np.ndarray, source: list[tuple[float, np.ndarray]]) -> float:
    """The time of the source frame `picture` was made from: the nearest by mean absolute difference, and
    clearly nearer than any other (re-encoding leaves ~2 levels; the next frame of the road differs by more)."""
    distances = sorted((float(np.abs(picture - image).mean()), time) for time, image in source)
    (best, time), (second, _) = distances[:2]
    assert best < 0.85 * second, distances[:3]
    return time


@pytest.fixture(scope="module")
def clipped(tmp_path_factory):
    """A run of the clip's first FRAMES frames with --clips PRE,POST; its out folder and its lifecycle events."""
    out = tmp_path_factory.mktemp("clips") / "out"
    jsonl = out.parent / "events.jsonl"
    result = run_cli("run", str(SUBURBAN), "--clips", f"{PRE:g},{POST:g}", "--max-frames", str(FRAMES), "--events",
                     jsonl.as_uri(), "--no-report", "--no-video", "--no-mot", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return out, [e for e in events if e["kind"] in ("new", "update", "end")]


def test_a_clip_runs_from_pre_before_its_object_s_start_to_post_after_its_end_at_the_source_s_times(clipped):
    out, lifecycle = clipped
    source = decoded(SUBURBAN, FRAMES)
    step, last = source[1][0] - source[0][0], source[-1][0]
    inside = [e for e in lifecycle if e["kind"] == "end" and e["after"]["start_time_s"] >= PRE + step
              and e["after"]["end_time_s"] + POST <= last - step]  # whole clips, away from the input's ends
    assert len(inside) >= 2, [e["after"]["start_time_s"] for e in lifecycle if e["kind"] == "end"]
    for end in inside:
        start_s, end_s = end["after"]["start_time_s"], end["after"]["end_time_s"]
        clip = decoded(out / end["clip"])
        first, final = found_at(clip[0][1], source), found_at(clip[-1][1], source)
        assert start_s - PRE - 1e-3 <= first < start_s - PRE + step, (end["object_id"], first)  # within one frame
        assert end_s + POST - step < final <= end_s + POST + 1e-3, (end["object_id"], final)
        assert clip[0][0] == 0 and clip[-1][0] == pytest.approx(final - first, abs=1e-3)  # the source's timestamps
        assert len(clip) == sum(first <= time <= final for time, _ in source)  # every frame between, once


def test_each_lifecycle_event_names_its_object_s_clip_and_only_finished_clips_are_left(clipped):
    out, lifecycle = clipped
    assert lifecycle and all(e["clip"] == f"clips/{e['object_id']}.mp4" and e["clip_url"] is None for e in lifecycle)
    ids = {e["object_id"] for e in lifecycle}
    assert sorted(p.name for p in (out / "clips").iterdir()) == sorted(f"{i}.mp4" for i in ids)  # no .partial
    assert json.loads((out / "summary.json").read_text())["outputs"]["clips"] == "clips"


def test_annotated_clips_show_the_boxes_and_bare_ones_do_not(tmp_path, clipped):
    out = tmp_path / "out"
    frames = 48
    result = run_cli("run", str(SUBURBAN), "--clips", "0,0", "--clips-annotated", "--max-frames", str(frames),
                     "--no-report", "--no-video", "--no-mot", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    source = decoded(SUBURBAN, frames)
    bare_out, _ = clipped
    for folder, drawn in ((out, True), (bare_out, False)):
        clip = decoded(sorted((folder / "clips").glob("*-1.mp4"))[0])  # track 1's: it starts on the input's frame 0
        middle = len(clip) // 2
        assert clip[0][0] == 0 and found_at(clip[middle][1], source) == source[middle][0]
        marked = float((np.abs(clip[middle][1] - source[middle][1]) > 40).mean())  # box lines and labels
        assert (marked > 0.002) == drawn, (folder, marked)


def test_a_killed_run_leaves_no_clip_that_looks_complete_and_serves_none_unfinished(tmp_path):
    out, jsonl, port = tmp_path / "out", tmp_path / "events.jsonl", free_port()
    process = vidpipe("live", str(SUBURBAN), "--realtime", "--clips", "1,60", "--events", jsonl.as_uri(),
                      "--serve", str(port), "--no-report", "-o", str(out), "-q")
    try:
        def new() -> list[dict]:
            lines = jsonl.read_text().splitlines() if jsonl.exists() else []
            return [e for e in map(json.loads, lines) if e["kind"] == "new"]

        wait_for(lambda: new() and (out / "clips" / f".{new()[0]['object_id']}.mp4.partial").exists(), timeout=120)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", f"/api/events/{new()[0]['object_id']}/clip.mp4")
        assert connection.getresponse().status == 404  # being written: POST is a minute away
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    left = [p.name for p in (out / "clips").iterdir()]
    assert left and all(name.startswith(".") and name.endswith(".partial") for name in left), left


@pytest.mark.parametrize("value", ["5", "1,2,3", "a,b", "-1,2", "1,inf"])
def test_bad_clips_are_one_line_and_exit_2(tmp_path, value):
    result = run_cli("run", str(SUBURBAN), "--clips", value, "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "PRE" in result.stderr, result.stderr


def test_clips_without_a_tracker_are_refused_in_one_line(tmp_path):
    result = run_cli("run", str(SUBURBAN), "--clips", "1,1", "--tracker", "none", "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "tracker" in result.stderr, result.stderr


def test_a_camera_of_many_takes_its_own_clips_from_the_preset(tmp_path):
    preset = tmp_path / "cameras.yaml"
    preset.write_text(yaml.safe_dump({"cameras": [{"name": "clipped", "source": str(SUBURBAN), "clips": [0, 0]},
                                                  {"name": "plain", "source": str(SUBURBAN)}]}))
    result = run_cli("live", "--pipeline", str(preset), "--max-frames", "48", "--no-report", "-o",
                     str(tmp_path / "out"), "-q")
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "out" / "clipped" / "clips").glob("*.mp4"))
    assert not (tmp_path / "out" / "plain" / "clips").exists()
