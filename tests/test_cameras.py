"""Many cameras in one process: one detector, each camera's own tracks, lines and outputs, one page."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_events import Receiver

from conftest import PARKING, SUBURBAN, free_port, run_cli, vidpipe, wait_for
from streaming import LiveStreamServer, shrinking_transport_stream, transport_stream
from vidpipe.cameras import camera_names, live_many
from vidpipe.config import CameraEntry, PipelineConfig
from vidpipe.errors import InputError
from vidpipe.events import CLOSE_WAIT_S
from vidpipe.live_options import LiveOptions

TABLES = ("detections", "frames", "tracks", "events")





def table(folder: Path, name: str) -> pd.DataFrame:
    """A table without what differs between any two live runs (the wall clock, which objects' ids begin with)
    or names the run (video); which tracks have an object id stays."""
    frame = pd.read_parquet(folder / f"{name}.parquet")
    if "object_id" in frame.columns:
        frame["object_id"] = frame["object_id"].notna()
    return frame.drop(columns=[c for c in ("wall_time", "video") if c in frame.columns])


def test_two_files_in_one_process_give_the_tables_of_two_separate_runs(tmp_path):
    """Each camera with its own line, every frame processed (files without --realtime): one shared detector
    gives exactly the tables of two separate `vidpipe live` runs, wall-clock times aside."""
    gate, middle = "gate=0,0.6,1,0.6", "middle=0.5,0,0.5,1"
    preset = tmp_path / "cameras.yaml"
    preset.write_text(yaml.safe_dump({"cameras": [
        {"name": "lot", "source": str(PARKING), "lines": [gate]},
        {"name": "road", "source": str(SUBURBAN), "lines": [middle]}]}))
    shared = tmp_path / "shared"
    result = run_cli("live", "--pipeline", str(preset), "--max-frames", "150", "-o", str(shared), "-q")
    assert result.returncode == 0, result.stderr
    for name, clip, line in (("lot", PARKING, gate), ("road", SUBURBAN, middle)):
        alone = tmp_path / name
        single = run_cli("live", str(clip), "--line", line, "--max-frames", "150", "-o", str(alone), "-q")
        assert single.returncode == 0, single.stderr
        summary = json.loads((shared / name / "summary.json").read_text())
        assert summary["frames_processed"] == 150 and summary["live"]["frames_dropped"] == 0
        assert set(summary["lines"]) == {line.split("=")[0]}  # its own line, not the other camera's
        assert set(pd.read_parquet(shared / name / "frames.parquet")["video"]) == {name}
        for kind in TABLES:
            pd.testing.assert_frame_equal(table(shared / name, kind), table(alone, kind), check_dtype=True)
    assert len(pd.read_parquet(shared / "road" / "events.parquet")) > 0  # the comparison covers real counts
    gathered = json.loads((shared / "summary.json").read_text())
    assert gathered["status"] == "complete" and gathered["failed"] == []
    assert set(gathered["cameras"]) == {"lot", "road"}
    assert gathered["frames_processed"] == 300
    assert {c["summary"]["frames_processed"] for c in gathered["cameras"].values()} == {150}


def test_a_camera_that_fails_or_goes_away_does_not_end_the_others(tmp_path):
    """Three streams: one that goes away (given up), an address where nothing answers (failed), one that
    halves its resolution; and a file played in real time. The file and the resizing stream run to the
    end, each failure is one line, and the run exits 1 naming the failed cameras."""
    going = LiveStreamServer(transport_stream(SUBURBAN, max_frames=240))
    shrinking = LiveStreamServer(shrinking_transport_stream(SUBURBAN, 300, 100))
    out = tmp_path / "out"
    process = vidpipe("live", f"going={going.url}", f"nothing=http://127.0.0.1:{free_port()}/live.ts",
                      f"resizing={shrinking.url}", f"lot={PARKING}", "--realtime", "--duration", "14",
                      "--max-reconnects", "1", "--reconnect-delay", "0.2", "--open-timeout", "2", "-o", str(out), "-q")
    try:
        wait_for(lambda: (out / "going" / ".detections.parquet.partial").exists())
        time.sleep(2)
        going.stop()  # and it stays away
        stdout, stderr = process.communicate(timeout=120)
    finally:
        shrinking.stop()
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "camera(s) going, nothing failed or gave up" in stderr.strip().splitlines()[-1]
    gathered = json.loads((out / "summary.json").read_text())
    cameras = gathered["cameras"]
    assert cameras["going"]["status"] == "gave_up" and cameras["going"]["frames_processed"] > 0
    assert cameras["nothing"]["status"] == "failed" and cameras["nothing"]["error"]
    assert cameras["resizing"]["status"] == "complete" and cameras["lot"]["status"] == "complete"
    assert cameras["resizing"]["summary"]["input"]["size_changes"][0]["width"] == 320
    lot = cameras["lot"]["summary"]  # in real time (12.5 fps) until --duration, undisturbed by the others
    assert lot["frames_processed"] >= 0.8 * 12.5 * 12 and lot["live"]["frames_dropped"] < 0.2 * lot["frames_processed"]
    for name in ("going", "resizing", "lot"):  # finished tables, as in a one-camera run
        summary = json.loads((out / name / "summary.json").read_text())
        assert len(pd.read_parquet(out / name / "frames.parquet")) == summary["frames_processed"]
    assert not (out / "nothing").exists()
    assert set(gathered["failed"]) == {"going", "nothing"}
    for name in ("going", "nothing", "resizing", "lot"):
        assert name in stdout  # a line per camera


def test_the_terminal_gives_each_cameras_answers_and_no_latency_for_a_camera_without_frames(tmp_path):
    """Two files with a line and a zone, and an address where nothing answers: under each file's line the
    terminal prints its line's and zone's answers exactly as a one-camera run of that file prints them;
    the camera that never connected shows no latency (it has none), not "latency p50 0 ms"."""
    regions = ["--line", "road=0,0.55,1,0.55", "--zone", "near=0.3,0.5,0.9,0.5,0.9,1,0.3,1", "--max-frames", "120"]
    result = run_cli("live", f"lot={PARKING}", f"road={SUBURBAN}", f"nothing=http://127.0.0.1:{free_port()}/x.ts",
                     *regions, "--max-reconnects", "1", "--reconnect-delay", "0.2", "--open-timeout", "2",
                     "-o", str(tmp_path / "cameras"), "-q")
    assert result.returncode == 1, result.stderr  # the camera that never connected failed
    blocks: dict[str, list[str]] = {}  # each camera's line, and the indented lines under it
    for line in result.stdout.splitlines():
        if not line.startswith("  "):
            camera = blocks.setdefault(line.split(": ")[0], [])
        camera.append(line)
    nothing = blocks["nothing"]
    assert len(nothing) == 1 and "latency" not in nothing[0] and "0 frames" in nothing[0], nothing
    for name, clip in (("lot", PARKING), ("road", SUBURBAN)):
        alone = run_cli("live", str(clip), *regions, "-o", str(tmp_path / name), "-q")
        assert alone.returncode == 0, alone.stderr
        answers = [line for line in alone.stdout.splitlines() if line.startswith(("  line ", "  zone ", "  objects"))]
        assert [a for a in answers if a.startswith("  line road: ")] and [a for a in answers if "zone near" in a]
        assert blocks[name][1:] == answers, (blocks[name], alone.stdout)
        assert "latency p50" in blocks[name][0]
    assert "visits" in "".join(blocks["road"])  # the answers are real counts: cars cross and enter


def test_one_page_shows_every_camera_and_a_stop_finishes_them_all(tmp_path, browser):
    """Two looped real-time files with --serve: the page is a grid with both, each with its figures and its
    own moving stream; /stats gives both; SIGINT finishes every camera's outputs and the gathered summary."""
    out, port = tmp_path / "out", free_port()
    process = vidpipe("live", f"lot={PARKING}", f"road={SUBURBAN}", "--realtime", "--loop", "--line",
                      "mid=0,0.55,1,0.55", "--serve", f"127.0.0.1:{port}", "-o", str(out), "-q")
    try:
        wait_for(lambda: all((out / name / ".detections.parquet.partial").exists() for name in ("lot", "road")))
        browser.get(f"http://127.0.0.1:{port}/")
        for name in ("lot", "road"):
            tile = f"#camera-{name}"
            wait_for(lambda tile=tile: float(browser.find_element("css selector", f"{tile} .figures").get_attribute(
                "data-fps") or 0) > 0, timeout=30)
            assert browser.find_element("css selector", f"{tile} .state").text.startswith("connected")
            assert "mid" in browser.find_element("css selector", f"{tile} .figures").text  # its line, live
            assert browser.execute_script(f"return document.querySelector('{tile} img').naturalWidth") > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/cameras/road/stream.mjpg", timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            assert b"\xff\xd8" in stream.read(64 * 1024)  # a JPEG comes
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10).read())
        assert set(stats["cameras"]) == {"lot", "road"}
        assert all(s["processed_fps"] > 0 and "mid" in s["lines"] for s in stats["cameras"].values())
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr  # a stopped live run is a normal end
    assert "Traceback" not in stderr
    gathered = json.loads((out / "summary.json").read_text())
    assert gathered["status"] == "stopped"
    for name in ("lot", "road"):
        summary = json.loads((out / name / "summary.json").read_text())
        assert summary["status"] == "stopped" and summary["frames_processed"] > 0
        assert len(pd.read_parquet(out / name / "frames.parquet")) == summary["frames_processed"]
        assert (out / name / "report.html").exists() and not list((out / name).glob(".*.partial"))


def test_a_stop_waits_for_every_cameras_hanging_webhook_together_not_one_after_the_other(tmp_path):
    """Two cameras whose events go to a webhook that never answers, each with events stuck behind the hung
    request when SIGINT comes: their sinks drain side by side, so the run ends within one CLOSE_WAIT_S (and
    a margin), not one per camera; every event is counted dropped."""
    hanging = Receiver(hang=True)
    out = tmp_path / "out"
    process = vidpipe("live", f"a={SUBURBAN}", f"b={SUBURBAN}", "--realtime", "--loop", "--line",
                      "road=0,0.55,1,0.55", "--no-video", "--no-report", "--events", hanging.url, "-o", str(out), "-q")
    try:
        wait_for(lambda: {body["camera"] for body in hanging.bodies} == {"a", "b"})
        time.sleep(5)  # the next crossings (2.8 and 4.9 s into the clip) queue up behind the hung requests
    finally:
        stopped = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        took = time.monotonic() - stopped
        hanging.close()
    assert process.returncode == 0, stderr
    assert CLOSE_WAIT_S - 0.5 < took < CLOSE_WAIT_S + 2, f"{took:.1f} s from the stop to the end"
    for name in ("a", "b"):
        summary = json.loads((out / name / "summary.json").read_text())
        events = len(pd.read_parquet(out / name / "events.parquet"))
        (figures,) = summary["events_out"]  # the crossings, and each object's `new` and `end` at least
        assert figures["sent"] == 0 and figures["dropped"] >= events + 2 * summary["tracks"] and events >= 2


def test_a_camera_that_gave_up_says_why_in_the_gathered_summary(tmp_path):
    """A stream that goes away for good (one reconnect allowed) beside an address where nothing answers: the
    gathered summary gives each its reason, the one that gave up with its reconnect attempts and their last
    error, as the one that failed at the start has it."""
    going = LiveStreamServer(transport_stream(SUBURBAN, max_frames=120))
    nowhere = f"http://127.0.0.1:{free_port()}/live.ts"
    options = LiveOptions(max_reconnects=1, reconnect_delay=0.2, open_timeout=2)
    frames = 0
    for _ in live_many([f"going={going.url}", f"nothing={nowhere}"], tmp_path / "out", options=options):
        frames += 1
        if frames == 20:
            going.stop()  # and it stays away
    cameras = json.loads((tmp_path / "out" / "summary.json").read_text())["cameras"]
    assert cameras["going"]["status"] == "gave_up" and cameras["going"]["frames_processed"] >= 20
    error = cameras["going"]["error"]
    assert error and error.startswith("lost (") and going.url in error.split("the last: ")[1], error
    assert "gave up after 1 reconnect attempt(s)" in error, error
    assert cameras["nothing"]["status"] == "failed" and nowhere in cameras["nothing"]["error"]


def test_live_many_yields_each_cameras_frames_in_order(tmp_path):
    """The Python API: (camera, frame, detections), each camera's frames in order and all of them (files
    without --realtime), the outputs written per camera."""
    config = PipelineConfig(max_frames=40, report=False)
    seen: dict[str, list[int]] = {}
    for name, frame, detections in live_many([f"a={PARKING}", str(SUBURBAN)], tmp_path / "out", pipeline=config):
        seen.setdefault(name, []).append(frame.index)
        assert len(detections.xyxy) == len(detections.track_id)
    assert seen == {"a": list(range(40)), "suburban-traffic": list(range(40))}
    gathered = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {n: c["frames_processed"] for n, c in gathered["cameras"].items()} == {"a": 40, "suburban-traffic": 40}


def test_camera_names_come_from_the_sources_and_stay_unique():
    entries = [CameraEntry.of(s) for s in ("clips/door.mp4", "rtsp://user:pw@10.0.0.5:554/stream1", "0",
                                           "clips/door.mp4", "door=rtsp://10.0.0.6/x")]
    assert camera_names(entries) == ["door-2", "10.0.0.5-stream1", "camera0", "door-3", "door"]
    with pytest.raises(InputError, match="given twice"):
        camera_names([CameraEntry.of("a=x.mp4"), CameraEntry.of("a=y.mp4")])
    assert CameraEntry.of("rtsp://h/s?x=1").source == "rtsp://h/s?x=1"  # no name before an '=' in a URL
    with pytest.raises(InputError, match="camera name"):
        CameraEntry.of({"name": "a/b", "source": "x.mp4"})


@pytest.mark.parametrize("args, message", [
    (["{parking}", "{missing}"], "does not exist"),
    (["{parking}", "{suburban}", "--show"], "--show is for one camera"),
    (["rtsp://127.0.0.1:9/a", "rtsp://127.0.0.1:9/b", "--realtime"], "--realtime and --loop are for files"),
], ids=["missing-file", "show", "realtime-without-files"])
def test_bad_camera_lists_are_one_line(tmp_path, args, message):
    args = [a.format(parking=PARKING, suburban=SUBURBAN, missing=tmp_path / "none.mp4") for a in args]
    result = run_cli("live", *args, "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_a_presets_cameras_are_for_live_alone(tmp_path):
    preset = tmp_path / "cameras.yaml"
    preset.write_text(yaml.safe_dump({"cameras": [str(PARKING), {"name": "road", "source": str(SUBURBAN)}]}))
    for args, message in ((["run", str(PARKING)], "cameras: is for vidpipe live"),
                          (["batch", str(PARKING), "-o", str(tmp_path / "corpus")], "cameras: is for vidpipe live"),
                          (["live", str(PARKING)], "not both")):
        result = run_cli(*args, "--pipeline", str(preset))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert message in result.stderr.strip().splitlines()[-1]
    assert [c.name for c in PipelineConfig.load(preset).cameras] == [None, "road"]
