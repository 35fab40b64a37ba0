"""Events out as they happen, to real receivers started here: a JSON-lines file, local HTTP servers (one
that answers, one that fails, one that hangs) and Debian's mosquitto broker."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from conftest import SUBURBAN, run_cli

LINE = "road=0,0.55,1,0.55"
FIELDS = {"camera", "time", "time_s", "frame", "kind", "name", "direction", "track_id", "class_name", "score", "box",
          "snapshot"}


class Receiver:
    """A webhook on loopback that records each POST's JSON and answers `status`, or never answers (`hang`)."""

    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.bodies.append(json.loads(body))
                if hang:
                    time.sleep(600)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def webhook_run(tmp_path_factory):
    """One run on the first 300 frames of the traffic clip (cars crossing a line) sending its events to a
    file and to three webhooks: one that answers 200, one that answers 500, one that never answers."""
    tmp = tmp_path_factory.mktemp("events")
    good, failing, hanging = Receiver(), Receiver(status=500), Receiver(hang=True)
    jsonl = tmp / "out-of-tree" / "events.jsonl"
    out = tmp / "run"
    started = time.monotonic()
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--line", LINE, "--max-frames", "300", "--no-video",
                     "--snapshots", "--events", jsonl.as_uri(), "--events", good.url, "--events", failing.url,
                     "--events", hanging.url, timeout=300)
    took = time.monotonic() - started
    for receiver in (good, failing, hanging):
        receiver.close()
    assert result.returncode == 0, result.stderr
    return out, jsonl, good, failing, hanging, took, result


def test_events_reach_a_file_and_a_webhook_as_the_tables_record_them(webhook_run):
    out, jsonl, good, _, _, _, _ = webhook_run
    table = pd.read_parquet(out / "events.parquet")
    assert len(table) >= 3  # cars crossed
    expected = sorted(zip(table["frame"], table["track_id"], table["kind"], table["direction"]))
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    for received in (lines, good.bodies):
        assert sorted((e["frame"], e["track_id"], e["kind"], e["direction"]) for e in received) == expected
        assert all(set(e) == FIELDS and e["camera"] == "suburban-traffic" and len(e["box"]) == 4 for e in received)
    for event in lines:  # each snapshot is a real JPEG of the frame, beside the tables
        picture = (out / event["snapshot"]).read_bytes()
        assert picture[:2] == b"\xff\xd8" and len(picture) > 5_000
    assert len(list((out / "snapshots").glob("*.jpg"))) == len(table)
    summary = json.loads((out / "summary.json").read_text())
    assert {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}[jsonl.as_uri()] == (len(table), 0)
    assert {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}[good.url] == (len(table), 0)


def test_a_failing_or_hanging_webhook_does_not_hold_up_the_run(webhook_run):
    """The 500 server gets each event with its retries, the hanging one holds its connection for 10
    minutes: the run still ends in seconds, every undelivered event counted as dropped."""
    out, _, _, failing, hanging, took, result = webhook_run
    events = len(pd.read_parquet(out / "events.parquet"))
    summary = json.loads((out / "summary.json").read_text())
    figures = {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}
    assert figures[failing.url] == (0, events) and figures[hanging.url] == (0, events)
    assert len(failing.bodies) >= 2 and 1 <= len(hanging.bodies) < events  # retried; stuck on the first
    assert took < 120  # it did not wait on the hung request
    assert "answered 500" in result.stderr and "not delivered" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mosquitto(tmp_path):
    """Debian's mosquitto on a free loopback port, for this test only."""
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        pytest.skip("needs Debian's mosquitto (.ci/run installs it)")
    port = _free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=10)


def test_a_realtime_run_publishes_its_events_counts_and_snapshots_to_mqtt(mosquitto, tmp_path):
    from paho.mqtt import client as mqtt

    from streaming import transport_stream

    clip = tmp_path / "camera1.ts"
    clip.write_bytes(transport_stream(SUBURBAN, max_frames=240))
    received: list[tuple[str, bytes, bool]] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda client, data, message: received.append((message.topic, message.payload,
                                                                           message.retain))
    listener.connect("127.0.0.1", mosquitto)
    listener.subscribe("vidpipe/#", qos=1)
    listener.loop_start()
    out = tmp_path / "out"
    result = run_cli("live", str(clip), "--realtime", "-o", str(out), "--line", LINE, "--snapshots", "--events",
                     f"mqtt://127.0.0.1:{mosquitto}/vidpipe", "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    time.sleep(1)
    listener.loop_stop()
    listener.disconnect()
    summary = json.loads((out / "summary.json").read_text())
    crossings = sum(sum(v.values()) for v in summary["lines"]["road"].values())
    assert crossings >= 2
    events = [json.loads(p) for t, p, _ in received if t == "vidpipe/camera1/events"]
    assert len(events) == crossings and all(e["kind"] == "cross" and e["camera"] == "camera1" for e in events)
    snapshots = [p for t, p, _ in received if t == "vidpipe/camera1/snapshot"]
    assert len(snapshots) == crossings and all(p[:2] == b"\xff\xd8" for p in snapshots)
    counts = [json.loads(p) for t, p, _ in received if t == "vidpipe/camera1/counts"]
    assert counts[-1]["lines"]["road"] == {d: sum(summary["lines"]["road"][d].values()) for d in ("in", "out")}
    # the counts stay on the broker (retained): a dashboard that connects later gets them at once
    late: list[bytes] = []
    reader = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    reader.on_message = lambda client, data, message: late.append(message.payload)
    reader.connect("127.0.0.1", mosquitto)
    reader.subscribe("vidpipe/camera1/counts")
    reader.loop_start()
    deadline = time.time() + 10
    while not late and time.time() < deadline:
        time.sleep(0.1)
    reader.loop_stop()
    assert late and json.loads(late[0]) == counts[-1]
    figures = summary["events_out"][0]
    assert figures["dropped"] == 0 and figures["sent"] == 2 * crossings + len(counts)  # events, snapshots, counts


def test_a_bad_events_url_is_one_line(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "out"), "--events", "ftp://example.com/x", "-q")
    assert result.returncode == 2 and "is not file:///path.jsonl, http(s)://... or mqtt://" in result.stderr
    assert "Traceback" not in result.stderr
