"""Live sources: a real HTTP stream that drops and comes back, bounded latency, the browser preview, stopping."""

from __future__ import annotations

import functools
import http.server
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, REPO, SUBURBAN, frame_times, run_cli, top_level_atoms
from streaming import LiveStreamServer, transport_stream
from vidpipe.annotate import Annotator
from vidpipe.detections import Detections
from vidpipe.live import open_live
from vidpipe.preview import PreviewServer, parse_address
from vidpipe.sources import open_source


@pytest.fixture(scope="module")
def traffic_stream():
    """suburban-traffic (cars in every frame) as a live MPEG-TS stream over HTTP, in real time."""
    server = LiveStreamServer(transport_stream(SUBURBAN))
    yield server
    server.stop()


def vidpipe(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "vidpipe", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while not path.exists() and time.time() < deadline:
        time.sleep(0.1)


def test_stream_drop_and_reconnect_keeps_the_run_going(traffic_stream, tmp_path):
    out = tmp_path / "out"
    process = vidpipe("live", traffic_stream.url, "-o", str(out), "--duration", "14", "--reconnect-delay", "0.3",
                      "--max-reconnect-delay", "1", "-q")
    wait_for(out / ".detections.parquet.partial")
    time.sleep(4)  # a few seconds of traffic...
    traffic_stream.stop()  # ...then the camera goes away
    time.sleep(2.5)
    traffic_stream.start()  # and comes back on the same address
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "reconnecting" in stderr and "back after" in stderr
    summary = json.loads((out / "summary.json").read_text())
    live = summary["live"]
    assert live["reconnects"] == 1 and len(live["gaps"]) == 1
    gap = live["gaps"][0]
    assert 2.0 <= gap["seconds"] <= 8.0 and gap["reconnect_attempts"] >= 1
    frames = pd.read_parquet(out / "frames.parquet")  # one table across the gap: the outputs never restarted
    before, after = frames[frames["time_s"] < gap["start_s"]], frames[frames["time_s"] > gap["end_s"]]
    assert len(before) > 10 and len(after) > 10
    assert frames["frame"].is_monotonic_increasing and frames["time_s"].is_monotonic_increasing
    assert frames["wall_time"].notna().all() and "wall_time" in pd.read_parquet(out / "detections.parquet")
    tracks = pd.read_parquet(out / "detections.parquet")
    ids_before = set(tracks.loc[tracks["time_s"] < gap["start_s"], "track_id"])
    ids_after = set(tracks.loc[tracks["time_s"] > gap["end_s"], "track_id"])
    assert ids_before and ids_after
    assert all(i in ids_before or i > max(ids_before) for i in ids_after)  # the tracker was not reset
    assert summary["status"] == "complete" and not (out / "annotated.mp4").exists()  # no --save: tables only


def live_through_a_stall(server, out: Path, duration: float, before_s: float, stall_s: float, *options: str):
    """`vidpipe live` on `server` with --read-timeout 2; `stall_s` seconds without data (the connection kept
    open, as a hung camera does), `before_s` seconds into the run. Returns the finished process and stderr."""
    process = vidpipe("live", server.url, "-o", str(out), "--duration", str(duration), "--read-timeout", "2",
                      *options, "-q")
    try:
        wait_for(out / ".detections.parquet.partial")
        time.sleep(before_s)
        server.stalled.set()
        time.sleep(stall_s)
    finally:
        server.stalled.clear()
    _, stderr = process.communicate(timeout=120)
    return process, stderr


def test_a_hung_stream_is_a_gap_from_its_last_frame_with_a_plain_reason(traffic_stream, tmp_path):
    """The camera stops sending but keeps the connection open: after --read-timeout vidpipe reconnects, and the
    gap it records starts at the last frame received (not when the timeout fired) and says why."""
    out = tmp_path / "out"
    # a 5 s outage, of which 2 s pass before the read timeout notices it
    process, stderr = live_through_a_stall(traffic_stream, out, 16, 4, 5, "--reconnect-delay", "0.3",
                                           "--max-reconnect-delay", "1")
    assert process.returncode == 0, stderr
    assert "Immediate exit requested" not in stderr and "no data for 2 s (--read-timeout)" in stderr
    gaps = json.loads((out / "summary.json").read_text())["live"]["gaps"]
    assert len(gaps) >= 1 and gaps[0]["reason"] == "no data for 2 s (--read-timeout)"
    # The outage as the viewer saw it: from the last frame (the stream's buffer plays on for about a second
    # after the stall begins) to the first frame back, about 4 s; counted from the timeout it would be 2 s.
    assert gaps[0]["seconds"] >= 3.0, gaps


def test_latency_stays_bounded_when_the_source_is_faster_than_inference(traffic_stream, tmp_path):
    """A 24 fps stream into slow inference (torch on the CPU at 1280 px, far slower than 1/24 s a frame on
    any CPU): old frames are dropped, not queued."""
    out = tmp_path / "out"
    result = run_cli("live", traffic_stream.url, "-o", str(out), "--runtime", "torch", "--device", "cpu",
                     "--imgsz", "1280", "--duration", "12", "-q")
    assert result.returncode == 0, result.stderr
    live = json.loads((out / "summary.json").read_text())["live"]
    inference, latency = live["inference_ms"], live["latency_ms"]
    if inference["mean"] <= 1000 / 24:
        pytest.skip(f"this CPU runs torch at 1280 px in {inference['mean']:.0f} ms, faster than the 24 fps stream: "
                    f"no frame needs dropping")
    assert inference["mean"] > 1000 / 24  # the source is faster than inference...
    assert live["frames_dropped"] > 20  # ...so frames were dropped, and counted
    assert latency["p95"] <= 2 * inference["mean"] + 1000 / 24, (latency, inference)
    assert live["frames_captured"] >= live["frames_dropped"] + json.loads((out / "summary.json").read_text())[
        "frames_processed"]


def test_preview_page_in_a_real_browser(traffic_stream, tmp_path, browser):
    out = tmp_path / "out"
    port = _free_port()
    process = vidpipe("live", traffic_stream.url, "-o", str(out), "--serve", f"127.0.0.1:{port}", "--overlay",
                      "--line", "road=0,0.55,1,0.55", "--zone", "near=0.3,0.5,0.9,0.5,0.9,1,0.3,1", "--duration",
                      "60", "-q")
    try:
        wait_for(out / ".detections.parquet.partial")
        time.sleep(2)
        browser.get(f"http://127.0.0.1:{port}/")
        time.sleep(2)
        first = _stream_pixels(browser)
        time.sleep(1.5)
        second = _stream_pixels(browser)
        assert first.shape == second.shape and first.std() > 5  # a real picture...
        assert np.abs(first.astype(int) - second.astype(int)).mean() > 1  # ...that moves
        fps = float(browser.find_element("id", "fps").text)
        assert fps > 0
        assert browser.find_element("id", "latency").text.endswith("ms")
        assert "car" in browser.find_element("id", "counts").text
        assert "road" in browser.find_element("id", "lines").text  # the line's counts, live
        assert "inside now" in browser.find_element("id", "zones").text
        assert "car" in browser.find_element("id", "totals").text  # objects since the start, labelled as such
        assert "since the start" in browser.find_element("tag name", "aside").text
        stats = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10).read())
        assert set(stats["lines"]) == {"road"} and set(stats["zones"]) == {"near"}
        assert sum(stats["totals"].values()) >= sum(stats["counts"].values())
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr  # SIGTERM ends a live run cleanly
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"


def test_the_preview_scales_the_stream_to_fit_the_window(tmp_path, browser):
    """The 640x352 clip on the page of a 1600x1000 window is drawn as large as the room beside the figures
    allows, its shape kept (it used to stay 640 px wide); in a small window, it shrinks to fit."""
    out, port = tmp_path / "out", _free_port()
    process = vidpipe("live", str(SUBURBAN), "--realtime", "--loop", "--no-report", "--serve", f"127.0.0.1:{port}",
                      "-o", str(out), "-q")

    def picture() -> dict:
        return browser.execute_script(
            "const img = document.getElementById('stream'), box = img.getBoundingClientRect();"
            "return {width: box.width, height: box.height, natural: img.naturalWidth, room: window.innerWidth -"
            " document.querySelector('aside').getBoundingClientRect().width, tall: window.innerHeight};")

    try:
        wait_for(out / ".detections.parquet.partial")
        browser.set_window_size(1600, 1000)
        browser.get(f"http://127.0.0.1:{port}/")
        deadline = time.time() + 30
        while picture()["natural"] != 640 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)  # the page fits the picture within half a second of its first frame
        wide = picture()
        assert wide["natural"] == 640 and wide["width"] > 1.5 * 640, wide  # scaled up
        assert wide["width"] / wide["height"] == pytest.approx(640 / 352, rel=0.01)
        assert wide["width"] <= wide["room"] and wide["height"] <= wide["tall"]
        assert min(wide["room"] - wide["width"], wide["tall"] - wide["height"]) <= 1, wide  # fills one way
        shown = _stream_pixels(browser)
        assert shown.shape[1] >= 1.5 * 640 and shown.std() > 5  # the screenshot: a real picture, that large
        browser.set_window_size(700, 600)
        time.sleep(1)
        small = picture()
        assert small["width"] < 640 and small["width"] <= small["room"], small  # and down, to fit
        assert small["width"] / small["height"] == pytest.approx(640 / 352, rel=0.02)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr


def _stream_pixels(browser) -> np.ndarray:
    """The <img> showing the stream, as the browser rendered it (a screenshot of the element)."""
    import cv2

    png = browser.find_element("id", "stream").screenshot_as_png
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command, stop", [("run", signal.SIGINT), ("run", signal.SIGTERM), ("live", signal.SIGTERM)],
                         ids=["run-ctrl-c", "run-sigterm", "live-sigterm"])
def test_stopping_mid_run_leaves_valid_outputs(tmp_path, command, stop):
    """Ctrl-C or SIGTERM mid-run: the frames processed so far end up in complete, readable files."""
    out = tmp_path / "out"
    extra = ["--save"] if command == "live" else []
    process = vidpipe(command, str(SUBURBAN), "-o", str(out), *extra, "-q")
    partial = out / ".annotated.mp4.partial"
    deadline = time.time() + 120
    while not (partial.exists() and partial.stat().st_size > 20_000) and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == (130 if command == "run" else 0), stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == ("interrupted" if command == "run" else "stopped")
    processed = summary["frames_processed"]
    assert 0 < processed and len(frame_times(out / "annotated.mp4")) == processed
    atoms = top_level_atoms(out / "annotated.mp4")
    assert atoms.index("moov") < atoms.index("mdat")  # faststart, for live --save and interrupted runs too
    assert len(pd.read_parquet(out / "frames.parquet")) == processed
    pd.read_parquet(out / "detections.parquet")
    assert not list(out.glob("*.partial"))


def test_mjpeg_and_hls_streams_are_read(tmp_path):
    """MJPEG over HTTP (here: vidpipe's own preview) as a live source; HLS as a finite stream for `run`."""
    preview = PreviewServer("127.0.0.1:0", lambda: {})
    stop = threading.Event()

    def feed():
        for frame in open_source(PARKING):
            if stop.is_set():
                return
            preview.write(frame, Detections.empty(("x",)))
            time.sleep(0.04)

    threading.Thread(target=feed, daemon=True).start()
    source = open_live(preview.url + "stream.mjpg")
    try:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 10:
                break
        assert source.info.codec == "mjpeg" and frames[-1].image.shape == (432, 768, 3)
        assert frames[-1].captured is not None and frames[-1].time > frames[0].time
    finally:
        stop.set()
        source.close()
        preview.close()
    hls = tmp_path / "hls"
    hls.mkdir()
    with av.open(str(PARKING)) as clip, av.open(str(hls / "index.m3u8"), "w", format="hls",
                                                 options={"hls_time": "2", "hls_playlist_type": "vod"}) as out:
        video = clip.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        for frame in clip.decode(video):
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(hls))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = run_cli("run", f"http://127.0.0.1:{server.server_port}/index.m3u8", "-o", str(tmp_path / "out"),
                         "--sample-fps", "2", "--no-video", "-q")
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert len(pd.read_parquet(tmp_path / "out" / "frames.parquet")) == 61  # 30.16 s at 2 fps


def test_live_errors_are_one_line(tmp_path, monkeypatch):
    for args, message in (
        (["live", "7"], "camera 7 cannot be opened"),
        (["live", "http://127.0.0.1:9/none.ts", "--open-timeout", "2", "--max-reconnects", "0"],
         "is not a readable video"),
        (["live", str(PARKING), "--show"], "--show needs a display"),
        (["live", str(PARKING), "--serve", "localhost:http"], "--serve takes [HOST:]PORT"),
    ):
        result = subprocess.run([sys.executable, "-m", "vidpipe", *args, "-o", str(tmp_path), "-q"], cwd=REPO,
                                capture_output=True, text=True, timeout=120,
                                env={k: v for k, v in __import__("os").environ.items() if k != "DISPLAY"})
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, result.stderr)


def test_parse_address():
    assert parse_address("8000") == ("127.0.0.1", 8000)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)


def test_overlay_draws_status_text():
    image = np.full((360, 640, 3), 200, np.uint8)
    out = Annotator(overlay=lambda: ["12.0 fps  latency 80 ms  dropped 3"]).annotate(image, Detections.empty(("x",)))
    assert (out[:40, :300] != 200).any(axis=2).mean() > 0.3 and (out[100:] == 200).all()


def test_a_stop_signal_waits_for_the_frame_to_be_complete():
    """SIGTERM inside frame_boundary() is held until the block ends: no frame half in the video, half not."""
    import os

    from vidpipe import stopping

    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    stopping.install()
    finished = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with stopping.frame_boundary():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run by now, and held the signal
                finished.append(True)
        assert finished == [True]
        with pytest.raises(KeyboardInterrupt):  # outside a frame: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])


@pytest.fixture(scope="module")
def short_ts():
    """Ten seconds of the traffic clip as MPEG-TS, for servers a test starts and stops on its own."""
    return transport_stream(SUBURBAN, max_frames=240)


def test_a_stream_that_never_comes_back_ends_the_run_as_given_up(short_ts, tmp_path):
    server = LiveStreamServer(short_ts)
    out = tmp_path / "out"
    process = vidpipe("live", server.url, "-o", str(out), "--max-reconnects", "2", "--reconnect-delay", "0.2",
                      "--max-reconnect-delay", "0.2", "-q")
    wait_for(out / ".detections.parquet.partial")
    time.sleep(2)
    server.stop()  # and it stays away
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "gave up after 2 reconnect attempt(s)" in stderr.strip().splitlines()[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "gave_up" and summary["frames_processed"] > 0
    gap = summary["live"]["gaps"][-1]
    assert gap["end_s"] is None and gap["reconnect_attempts"] == 2
    assert len(pd.read_parquet(out / "frames.parquet")) == summary["frames_processed"]  # finished tables


def test_a_camera_that_comes_up_late_is_waited_for(short_ts, tmp_path):
    """The first connection follows the same retry policy as a reconnection: the server starts 2 s after
    vidpipe, and the run goes on."""
    port = _free_port()
    out = tmp_path / "out"
    process = vidpipe("live", f"http://127.0.0.1:{port}/live.ts", "-o", str(out), "--duration", "4",
                      "--reconnect-delay", "0.5", "--max-reconnect-delay", "1", "--open-timeout", "2", "-q")
    time.sleep(2)
    server = LiveStreamServer(short_ts, port=port)
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        server.stop()
    assert process.returncode == 0, stderr
    assert "cannot connect" in stderr and "next attempt in" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["frames_processed"] > 10


def test_a_stall_shorter_than_the_outage_it_causes_is_recorded_at_least_as_long_as_the_read_timeout(short_ts,
                                                                                                    tmp_path):
    """Reaching --read-timeout means at least that long without data: the gap is never recorded shorter, even
    when the stream comes back right after the timeout."""
    server = LiveStreamServer(short_ts)
    out = tmp_path / "out"
    try:
        process, stderr = live_through_a_stall(server, out, 9, 2, 2.6, "--reconnect-delay", "0.1",
                                               "--max-reconnect-delay", "0.5")
    finally:
        server.stop()
    assert process.returncode == 0, stderr
    gaps = json.loads((out / "summary.json").read_text())["live"]["gaps"]
    timeouts = [g for g in gaps if g["reason"] == "no data for 2 s (--read-timeout)"]
    assert timeouts and all(g["seconds"] is None or g["seconds"] >= 2.0 for g in timeouts), gaps


def test_the_preview_answers_head_and_takes_leaving_viewers_quietly(capfd):
    import socket

    stats = {"fps": 1.0, "counts": {"car": 2}}
    server = PreviewServer("127.0.0.1:0", lambda: stats)
    try:
        for path in ("", "stats", "stream.mjpg"):
            response = urllib.request.urlopen(urllib.request.Request(server.url + path, method="HEAD"), timeout=5)
            assert response.status == 200 and response.read() == b""
        host, port = server.url.split("//")[1].rstrip("/").split(":")
        for _ in range(20):  # viewers that ask and leave before the answer
            client = socket.create_connection((host, int(port)))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            client.sendall(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
            client.close()  # a reset, not a polite close: the reply hits a broken pipe
        time.sleep(0.5)
        assert json.loads(urllib.request.urlopen(server.url + "stats", timeout=5).read()) == stats
    finally:
        server.close()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err and "BrokenPipeError" not in captured.err, captured.err


def test_a_file_played_in_real_time_behaves_like_a_camera_and_loops(short_ts, tmp_path):
    """--realtime releases each frame at its timestamp: a 10 s clip takes about 10 s and most frames are
    processed; --loop starts it again with time carrying on."""
    clip = tmp_path / "ten-seconds.ts"
    clip.write_bytes(short_ts)
    out = tmp_path / "once"
    started = time.monotonic()
    result = run_cli("live", str(clip), "--realtime", "-o", str(out), "-q")
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert 9.5 <= took <= 60, took  # not as fast as it decodes (a second or two), about its length
    assert summary["live"]["frames_captured"] == 240 and summary["frames_processed"] >= 120
    assert [c["state"] for c in summary["live"]["connection"]] == ["connected", "ended"]
    frames = pd.read_parquet(out / "frames.parquet")
    assert frames["time_s"].max() == pytest.approx(239 / 24, abs=0.1)  # the clip's own clock, not the wall's

    looped = tmp_path / "looped"
    result = run_cli("live", str(clip), "--realtime", "--loop", "--duration", "14", "-o", str(looped), "-q")
    assert result.returncode == 0, result.stderr
    frames = pd.read_parquet(looped / "frames.parquet")
    assert frames["frame"].is_monotonic_increasing and frames["time_s"].is_monotonic_increasing
    assert frames["frame"].max() >= 240 and 11 <= frames["time_s"].max() <= 15  # into the second pass


def test_stopping_a_looped_demo_says_nothing_of_unread_frames(tmp_path):
    """A --loop demo has no end to fall short of: Ctrl-C in its first pass is a normal stop, with no
    "frame(s) of the input not read" on the terminal and none counted unread in the summary."""
    out = tmp_path / "out"
    process = vidpipe("live", str(SUBURBAN), "--realtime", "--loop", "--no-report", "-o", str(out), "-q")
    try:
        wait_for(out / ".detections.parquet.partial")
        time.sleep(3)  # a few seconds into the 38 s clip: most of its frames are still ahead
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and 0 < summary["frames_processed"] < 905
    assert "not read" not in stderr and summary["source_frames_unread"] == 0, stderr


def test_realtime_and_loop_are_refused_where_they_mean_nothing(tmp_path):
    for args, message in ((["live", "0", "--realtime"], "--realtime and --loop are for files"),
                          (["live", str(SUBURBAN), "--loop"], "--loop needs --realtime"),
                          (["run", str(SUBURBAN), "--realtime", "--sequential"], "--sequential: not for live")):
        result = run_cli(*args, "-o", str(tmp_path / "out"), "-q")
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


def test_the_page_shows_the_source_reconnecting_and_back(short_ts, tmp_path, browser):
    """/stats goes connected -> reconnecting -> connected across a stream cut, the page says so (and greys
    out the figures meanwhile), and the summary keeps the same changes."""
    server = LiveStreamServer(short_ts)
    out, port = tmp_path / "out", _free_port()
    process = vidpipe("live", server.url, "-o", str(out), "--serve", f"127.0.0.1:{port}", "--duration", "16",
                      "--reconnect-delay", "0.3", "--max-reconnect-delay", "1", "--read-timeout", "2", "-q")

    def stats() -> dict:
        return json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10).read())

    try:
        wait_for(out / ".detections.parquet.partial")
        time.sleep(2)
        browser.get(f"http://127.0.0.1:{port}/")
        time.sleep(1)
        assert stats()["source"]["state"] == "connected"
        assert browser.find_element("id", "state").text.startswith("connected")
        server.stop()
        deadline = time.time() + 20
        while stats()["source"]["state"] != "reconnecting" and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1)
        down = stats()["source"]
        assert down["state"] == "reconnecting" and down["last_frame_age_s"] > 0.5
        assert browser.find_element("id", "state").text.startswith("reconnecting")
        assert browser.find_element("id", "figures").get_attribute("class") == "stale"
        assert browser.find_element("id", "fps").text == "-"  # no figure pretends the source is still there
        server.start()
        deadline = time.time() + 20
        while stats()["source"]["state"] != "connected" and time.time() < deadline:
            time.sleep(0.2)
        assert stats()["source"]["reconnects"] == 1
        time.sleep(1)
        assert browser.find_element("id", "state").text.startswith("connected")
        assert float(browser.find_element("id", "fps").text) > 0
    finally:
        _, stderr = process.communicate(timeout=120)
        server.stop()
    assert process.returncode == 0, stderr
    live = json.loads((out / "summary.json").read_text())["live"]
    assert [c["state"] for c in live["connection"]][:3] == ["connected", "reconnecting", "connected"]
    gap = live["gaps"][0]
    assert live["connection"][1]["time_s"] == pytest.approx(gap["start_s"], abs=0.01)
    assert live["connection"][2]["time_s"] == pytest.approx(gap["end_s"], abs=0.01)
