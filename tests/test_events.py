"""Events out as they happen, to real receivers started here: a JSON-lines file, local HTTP servers (one
that answers, one that fails, one that hangs) and Debian's mosquitto broker."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from conftest import PARKING, SUBURBAN, free_port, run_cli, vidpipe, wait_for

LINE = "road=0,0.55,1,0.55"
FIELDS = {"id", "camera", "time", "time_s", "frame", "kind", "name", "direction", "track_id", "object_id",
          "class_name", "score", "box", "snapshot", "snapshot_url"}
LIFECYCLE = ("new", "update", "end")  # the kinds of the objects' lifecycle events, on `vidpipe/events`


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
    everything = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert everything == good.bodies  # the same events, in the same order: the objects' lifecycle too
    lines = [e for e in everything if e["kind"] not in LIFECYCLE]
    assert sorted((e["frame"], e["track_id"], e["kind"], e["direction"]) for e in lines) == expected
    assert all(set(e) == FIELDS and e["camera"] == "suburban-traffic" and len(e["box"]) == 4 for e in lines)
    assert all(e["snapshot_url"] is None for e in lines)  # no server, no address
    assert len({e["id"] for e in lines}) == len(lines)  # one id per event
    for event in lines:  # each snapshot is a real JPEG of the frame, beside the tables
        picture = (out / event["snapshot"]).read_bytes()
        assert picture[:2] == b"\xff\xd8" and len(picture) > 5_000
    assert len(list((out / "snapshots").glob("*.jpg"))) == len(table)
    summary = json.loads((out / "summary.json").read_text())
    assert len(everything) > len(table)
    assert {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}[jsonl.as_uri()] == (len(everything), 0)
    assert {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}[good.url] == (len(everything), 0)


def test_a_failing_or_hanging_webhook_does_not_hold_up_the_run(webhook_run):
    """The 500 server gets each event with its retries, the hanging one holds its connection for 10
    minutes: the run still ends in seconds, every undelivered event counted as dropped."""
    out, jsonl, _, failing, hanging, took, result = webhook_run
    events = len(jsonl.read_text().splitlines())  # line crossings and the objects' lifecycle
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


class Broker:
    """Debian's mosquitto on a loopback port, that can be stopped (a broker that goes away) and started again
    on the same port; what it holds (retained messages, a lasting subscriber's session and the messages queued
    for it) is saved when it stops and is there again when it starts."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.port, self._binary = _free_port(), binary
        self._config = folder / "mosquitto.conf"
        self._config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                                f"persistence_location {folder}/\n")
        self.start()

    def start(self) -> None:
        self._process = subprocess.Popen([self._binary, "-c", str(self._config)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def _mosquitto_binary() -> str:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        pytest.skip("needs Debian's mosquitto (.ci/run installs it)")
    return binary


@pytest.fixture
def mosquitto(tmp_path):
    """Debian's mosquitto on a free loopback port, for this test only."""
    broker = Broker(_mosquitto_binary(), tmp_path)
    yield broker
    broker.stop()


class Listener:
    """A paho subscriber to `topics` that records each message with when it came (and whether the broker gave
    it as retained: a subscriber that connects after it was published)."""

    def __init__(self, port: int, *topics: str) -> None:
        from paho.mqtt import client as mqtt

        self.messages: list[tuple[float, str, bytes, bool]] = []
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self._client.on_message = lambda client, data, m: self.messages.append((time.monotonic(), m.topic,
                                                                                m.payload, m.retain))
        self._client.connect("127.0.0.1", port)
        for topic in topics:
            self._client.subscribe(topic, qos=1)
        self._client.loop_start()

    def payloads(self, topic: str) -> list[bytes]:
        return [payload for _, t, payload, _ in self.messages if t == topic]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_a_realtime_run_publishes_its_events_counts_and_snapshots_to_mqtt(mosquitto, tmp_path):
    from paho.mqtt import client as mqtt

    from streaming import transport_stream

    clip = tmp_path / "camera1.ts"
    clip.write_bytes(transport_stream(SUBURBAN, max_frames=240))
    received: list[tuple[str, bytes, bool]] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda client, data, message: received.append((message.topic, message.payload,
                                                                           message.retain))
    listener.connect("127.0.0.1", mosquitto.port)
    listener.subscribe("vidpipe/#", qos=1)
    listener.loop_start()
    out = tmp_path / "out"
    result = run_cli("live", str(clip), "--realtime", "-o", str(out), "--line", LINE, "--snapshots", "--events",
                     f"mqtt://127.0.0.1:{mosquitto.port}/vidpipe", "-q", timeout=300)
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
    reader.connect("127.0.0.1", mosquitto.port)
    reader.subscribe("vidpipe/camera1/counts")
    reader.loop_start()
    deadline = time.time() + 10
    while not late and time.time() < deadline:
        time.sleep(0.1)
    reader.loop_stop()
    assert late and json.loads(late[0]) == counts[-1]
    lifecycle = [json.loads(p) for t, p, _ in received if t == "vidpipe/events"]
    assert {m["type"] for m in lifecycle} == set(LIFECYCLE) and all(m["camera"] == "camera1" for m in lifecycle)
    figures = summary["events_out"][0]  # events (crossings, the lifecycle), not the messages (snapshots, counts)
    assert (figures["sent"], figures["dropped"]) == (crossings + len(lifecycle), 0)


def test_a_bad_events_url_is_one_line(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "out"), "--events", "ftp://example.com/x", "-q")
    assert result.returncode == 2 and "is not file:///path.jsonl, http(s)://... or mqtt://" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_events_file_on_a_full_disk_drops_its_events_and_the_run_finishes(tmp_path):
    """/dev/full fails every write with ENOSPC, as a full disk does: its events are dropped and counted, with
    one warning; the run's own outputs, and a second events file, are complete."""
    out, jsonl = tmp_path / "run", tmp_path / "events.jsonl"
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--line", LINE, "--max-frames", "150", "--no-video",
                     "--no-report", "--events", "file:///dev/full", "--events", jsonl.as_uri(), "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    crossings = len(pd.read_parquet(out / "events.parquet"))
    events = [json.loads(line) for line in jsonl.read_text().splitlines()]  # crossings and the lifecycle
    assert summary["status"] == "complete" and crossings >= 2
    assert len([e for e in events if e["kind"] == "cross"]) == crossings
    figures = {s["url"]: (s["sent"], s["dropped"]) for s in summary["events_out"]}
    assert figures == {"file:///dev/full": (0, len(events)), jsonl.as_uri(): (len(events), 0)}
    assert not list(out.glob(".*.partial"))
    warnings = [line for line in result.stderr.splitlines() if "/dev/full" in line]
    assert len(warnings) == 1 and "No space left on device" in warnings[0], result.stderr


def test_a_line_cut_short_by_a_full_disk_is_taken_back_so_the_file_holds_whole_lines(tmp_path):
    """A file size limit (RLIMIT_FSIZE) that the next line crosses half-way: the disk fills up in the middle of
    a line. That line and the next are dropped and the part written is taken back; once there is room again,
    the next line starts on its own."""
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"before": "x" * 1000}) + "\n")
    script = f"""
import json, resource
from vidpipe.events import JsonLinesFile
sink = JsonLinesFile({path.as_uri()!r})
resource.setrlimit(resource.RLIMIT_FSIZE, ({path.stat().st_size + 40}, resource.RLIM_INFINITY))
sink.send({{"event": 1, "pad": "y" * 100}}, None)
sink.send({{"event": 2, "pad": "z" * 100}}, None)
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))  # room again
sink.send({{"event": 3}}, None)
print(json.dumps(sink.close(0)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sent"] == 1 and json.loads(result.stdout)["dropped"] == 2
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"before": "x" * 1000}, {"event": 3}]
    assert result.stderr.count("File too large") == 1  # one warning


@pytest.mark.parametrize("url", ["mqtt://127.0.0.1:99999/x", "http://127.0.0.1:70000/hook", "mqtt://127.0.0.1:0/x",
                                 "mqtt://127.0.0.1:port/x", "mqtt:///x", "mqtt://127.0.0.1/home/+"])
def test_an_events_url_with_a_port_host_or_prefix_it_cannot_have_is_one_line_before_a_model_loads(tmp_path, url):
    preset = tmp_path / "events.yaml"
    preset.write_text(json.dumps({"events": [url]}))  # JSON is YAML
    for given in (["--events", url], ["--pipeline", str(preset)]):
        out = tmp_path / "out"
        result = run_cli("run", str(SUBURBAN), "-o", str(out), *given, "-q")
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and url in lines[0], result.stderr
        assert not out.exists()  # refused at load: no model loaded, nothing written
        assert lines[0].startswith("vidpipe: error: events:")


def test_a_broker_that_goes_away_and_comes_back_gets_every_event_and_none_is_counted_dropped(mosquitto, tmp_path):
    """The broker stops for four seconds in the middle of a real-time run and starts again on the same port.
    paho keeps what is published meanwhile and sends it once the broker is back: the subscriber (whose session
    outlives the outage) gets every event, the summary counts each one sent (events, not messages) and none
    dropped, and the run said once that the broker went away and once that it is back."""
    from paho.mqtt import client as mqtt

    from streaming import transport_stream

    clip = tmp_path / "camera1.ts"
    clip.write_bytes(transport_stream(SUBURBAN, max_frames=300))  # 12.5 s, crossings at 0.4, 2.8, 4.9, 6.9, 9.4 s
    received: list[dict] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="listener", clean_session=False)
    listener.on_connect = lambda client, *args: client.subscribe([("vidpipe/camera1/events", 1),
                                                                   ("vidpipe/events", 1)])
    listener.on_message = lambda client, data, message: received.append(json.loads(message.payload))
    listener.reconnect_delay_set(1, 1)
    listener.connect("127.0.0.1", mosquitto.port)
    listener.loop_start()
    out = tmp_path / "out"
    process = vidpipe("live", str(clip), "--realtime", "-o", str(out), "--line", LINE, "--events",
                      f"mqtt://127.0.0.1:{mosquitto.port}/vidpipe", "-q")
    try:
        wait_for(lambda: received)
        mosquitto.stop()
        away = dt.datetime.now(dt.timezone.utc)
        time.sleep(4)
        mosquitto.start()
        back = dt.datetime.now(dt.timezone.utc)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    table = pd.read_parquet(out / "events.parquet")
    expected = sorted(zip(table["frame"], table["track_id"], table["kind"], table["direction"]))
    got = lambda: sorted({(e["frame"], e["track_id"], e["kind"], e["direction"])  # noqa: E731
                          for e in received if e["kind"] == "cross"})
    wait_for(lambda: got() == expected, timeout=30)  # QoS 1: a message in flight at the stop may come twice
    listener.loop_stop()
    listener.disconnect()
    times = [dt.datetime.fromisoformat(e["time"]) for e in received]
    assert any(away + dt.timedelta(seconds=1) < t < back for t in times)  # events happened while it was away
    lifecycle = {(e["object_id"], e["kind"], e["frame"]) for e in received if e["kind"] in LIFECYCLE}
    assert {kind for _, kind, _ in lifecycle} == set(LIFECYCLE)
    figures = json.loads((out / "summary.json").read_text())["events_out"][0]
    assert (figures["sent"], figures["dropped"]) == (len(expected) + len(lifecycle), 0)
    assert stderr.count("the broker went away") == 1 and stderr.count("the broker is back") == 1, stderr


@pytest.mark.parametrize("sources, folders", [([str(SUBURBAN)], {"suburban-traffic": ""}),
                                              ([f"a={SUBURBAN}", f"b={SUBURBAN}"], {"a": "a", "b": "b"})],
                         ids=["one-camera", "two-cameras"])
def test_an_events_snapshot_url_is_served_by_the_preview(tmp_path, sources, folders):
    """With --serve, each event names its snapshot's address on the preview server (a camera of many under
    /cameras/<name>/), and fetching it gives the JPEG written to the output folder; nothing else is served
    from there: a missing snapshot or a path out of the folder is a 404."""
    out, port, jsonl = tmp_path / "out", free_port(), tmp_path / "events.jsonl"
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8 not for the web")
    process = vidpipe("live", *sources, "--realtime", "--loop", "--line", LINE, "--snapshots", "--events",
                      jsonl.as_uri(), "--serve", f"127.0.0.1:{port}", "--no-report", "-o", str(out), "-q")

    def events() -> list[dict]:  # the crossings (the lifecycle's have no snapshot)
        lines = jsonl.read_text().splitlines() if jsonl.exists() else []
        return [event for event in map(json.loads, lines) if event["kind"] not in LIFECYCLE]

    def get(path: str) -> tuple[int, str, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path)  # sent as it is: no client-side tidying of `..`
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type"), answer.read()

    try:
        wait_for(lambda: {e["camera"] for e in events()} == set(folders), timeout=90)
        for event in events():
            url = urllib.parse.urlsplit(event["snapshot_url"])
            assert url.netloc == f"127.0.0.1:{port}", event
            prefix = f"/cameras/{event['camera']}/" if folders[event["camera"]] else "/"
            assert url.path == prefix + event["snapshot"], event
            picture = (out / folders[event["camera"]] / event["snapshot"]).read_bytes()
            with urllib.request.urlopen(event["snapshot_url"], timeout=10) as answer:
                assert answer.headers["Content-Type"] == "image/jpeg"
                assert answer.read() == picture
            assert get(f"/api/events/{event['id']}/snapshot.jpg")[::2] == (200, picture)  # the API's route too
        for camera in folders:  # each camera's latest frame, by its name
            assert get(f"/api/{camera}/latest.jpg")[:2] == (200, "image/jpeg"), camera
        prefix = urllib.parse.urlsplit(events()[0]["snapshot_url"]).path.rsplit("/", 1)[0]
        for path in ("missing.jpg", "..%2F..%2Fsecret.jpg", "../../secret.jpg", "..%2Fsummary.json", "",
                     "%00.jpg", "a" * 300 + ".jpg"):
            assert get(f"{prefix}/{path}")[0] == 404, path
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr


# Home automation on Frigate's conventions: a real-time run of the parking clip's first 15 seconds (a car drives
# into the left half and out of the picture again), its objects in view, best pictures, availability and Home
# Assistant's discovery configs, as a subscriber that was there all along and one that connects afterwards get
# them.
ZONE = "left=0,0,0.5,0,0.5,1,0,1"
PARKING_LINE = "road=0,0.5,1,0.5"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from streaming import transport_stream

    folder = tmp_path_factory.mktemp("home")
    broker = Broker(_mosquitto_binary(), folder)
    clip = folder / "driveway.ts"
    clip.write_bytes(transport_stream(PARKING, max_frames=190))  # 15 s: the last 6 without a car
    listener = Listener(broker.port, "vidpipe/#", "homeassistant/#")
    out = folder / "out"
    # The driveway car's int8 scores sit at 0.5, on the default confirmation rule's edge (a model compiled with
    # or without the appearance outputs moves them by 0.01), and these tests are about its messages, not about
    # confirming it: the rule is set a little lower here.
    preset = folder / "driveway.yaml"
    preset.write_text("confirm_score: 0.4\n")
    result = run_cli("live", str(clip), "--realtime", "-o", str(out), "--classes", "car", "--line", PARKING_LINE,
                     "--pipeline", str(preset),
                     "--zone", ZONE, "--snapshots", "--ha-discovery", "--no-report", "--events",
                     f"mqtt://127.0.0.1:{broker.port}/vidpipe", "-q", timeout=300)
    time.sleep(1)
    listener.close()
    late = Listener(broker.port, "vidpipe/#", "homeassistant/#")
    time.sleep(2)
    late.close()
    yield {"result": result, "out": out, "live": listener, "late": late,
           "frames": pd.read_parquet(out / "frames.parquet") if result.returncode == 0 else None}
    broker.stop()


def test_objects_in_view_follow_the_frames_table_and_a_late_subscriber_gets_the_last_frames(home):
    """`<camera>/car` and `<camera>/<zone>/car` carry the frames table's counts (`n_car`, `left_n`): each value
    sent is one a frame had, the car that drove out makes them 0 (not silence), and the values retained for a
    dashboard that connects afterwards are the last frame's."""
    assert home["result"].returncode == 0, home["result"].stderr
    frames, live, late = home["frames"], home["live"], home["late"]
    for topic, column in (("vidpipe/driveway/car", "n_car"), ("vidpipe/driveway/left/car", "left_n")):
        values = [int(p) for p in live.payloads(topic)]
        assert values and set(values) <= set(frames[column]), (topic, values)
        assert 0 in values[values.index(max(values)):] and max(values) >= 1, (topic, values)
        assert [int(p) for p in late.payloads(topic)] == [frames[column].iloc[-1]], topic


def test_objects_in_view_go_out_on_change_at_most_twice_a_second_and_at_least_every_five_seconds(home):
    """Changes coalesce (0.5 s at least between sends of a topic, as the README says), and every topic is sent
    again within 5 s while frames come, unchanged or not. The last send, at the run's end, carries the last
    frame's values whenever it comes. (The car flickers in and out of view: sent at once, it would be sent
    more often.)"""
    change_s, heartbeat_s = 0.5, 5.0
    live = home["live"]
    for topic in ("vidpipe/driveway/car", "vidpipe/driveway/left/car"):
        sent = [(t, payload) for t, name, payload, _ in live.messages if name == topic][:-1]
        gaps = np.diff([t for t, _ in sent])
        assert len(sent) >= 3 and gaps.min() >= change_s / 2 and gaps.max() <= heartbeat_s + 1.0, (topic, gaps)
        assert any(a == b for (_, a), (_, b) in zip(sent, sent[1:])), sent  # unchanged, sent again: a heartbeat


def test_a_late_subscriber_gets_each_class_s_best_picture_and_the_latest_event_s(home):
    """`<camera>/car/snapshot` is retained: a Home Assistant camera shows a car as soon as it connects, not at
    the next event. It is the last picture sent for the class, a JPEG of the whole frame that OpenCV reads."""
    assert home["result"].returncode == 0, home["result"].stderr
    for topic in ("vidpipe/driveway/car/snapshot", "vidpipe/driveway/snapshot"):
        retained = home["late"].payloads(topic)
        assert retained and retained == home["live"].payloads(topic)[-1:], topic
        picture = cv2.imdecode(np.frombuffer(retained[0], np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (432, 768, 3)


def test_available_is_online_during_the_run_and_offline_after_a_clean_exit(home):
    assert home["result"].returncode == 0, home["result"].stderr
    assert home["live"].payloads("vidpipe/available") == [b"online", b"offline"]
    assert home["late"].payloads("vidpipe/available") == [b"offline"]  # retained


def test_the_state_topics_are_not_counted_as_events(home):
    """`events_out` counts the events (those of events.parquet and the objects' lifecycle), not the messages of
    the objects in view, the pictures or the discovery configs."""
    summary = json.loads((home["out"] / "summary.json").read_text())
    events = len(pd.read_parquet(home["out"] / "events.parquet"))
    lifecycle = len(home["live"].payloads("vidpipe/events"))
    assert events >= 2 and len(home["live"].payloads("vidpipe/driveway/events")) == events and lifecycle >= 2
    figures = summary["events_out"][0]
    assert (figures["sent"], figures["dropped"]) == (events + lifecycle, 0)


# Home Assistant's MQTT integration, as documented: the configuration variables of an MQTT sensor
# (https://www.home-assistant.io/integrations/sensor.mqtt/) and an MQTT camera
# (https://www.home-assistant.io/integrations/camera.mqtt/), the device map they share, and the `origin` of a
# discovery payload (https://www.home-assistant.io/integrations/mqtt/#discovery-payload). `platform` is only
# for device-based discovery, so it is left out of these single-component configs.
COMMON_KEYS = {"availability", "availability_mode", "availability_template", "availability_topic", "device",
               "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
               "json_attributes_template", "json_attributes_topic", "name", "object_id", "unique_id", "origin"}
SCHEMA = {
    "sensor": {"required": {"state_topic"},
               "allowed": COMMON_KEYS | {"device_class", "expire_after", "force_update", "last_reset_value_template",
                                         "options", "payload_available", "payload_not_available",
                                         "suggested_display_precision", "qos", "state_class", "state_topic",
                                         "unit_of_measurement", "value_template"}},
    "camera": {"required": {"topic"}, "allowed": COMMON_KEYS | {"image_encoding", "topic"}},
}
DEVICE_KEYS = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
               "name", "serial_number", "suggested_area", "sw_version", "via_device"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
STATE_CLASSES = {"measurement", "total", "total_increasing"}  # developers.home-assistant.io: sensor state classes


def test_home_assistant_discovery_configs_follow_its_documented_schema_and_name_topics_the_run_published(home):
    """Each config (retained under homeassistant/<component>/<object id>/config, the id of [a-zA-Z0-9_-]) has
    only documented keys and every required one, the availability topic, a unique id and a device; every topic
    it names is one the run published. A sensor per class in view and per line and direction, a camera per
    class's picture and one for the events' pictures; each line sensor's value_template, rendered by Jinja2 as
    Home Assistant renders it, reads the line's totals of the summary from the retained counts."""
    import jinja2

    assert home["result"].returncode == 0, home["result"].stderr
    published = {topic for _, topic, _, _ in home["live"].messages if not topic.startswith("homeassistant/")}
    configs = {topic: json.loads(payload) for _, topic, payload, retained in home["late"].messages
               if topic.startswith("homeassistant/") and retained}
    assert configs and set(configs) == {t for _, t, _, _ in home["live"].messages if t.startswith("homeassistant/")}
    seen_ids = set()
    for topic, config in configs.items():
        match = re.fullmatch(r"homeassistant/(sensor|camera)/([a-zA-Z0-9_-]+)/config", topic)
        assert match, topic
        schema = SCHEMA[match[1]]
        assert schema["required"] <= set(config) <= schema["allowed"], (topic, set(config) - schema["allowed"])
        assert set(config["device"]) <= DEVICE_KEYS and config["device"]["identifiers"], topic
        assert set(config["origin"]) <= ORIGIN_KEYS and config["origin"]["name"] == "vidpipe", topic
        assert config["state_class"] in STATE_CLASSES if "state_class" in config else True
        assert config["availability_topic"] == "vidpipe/available" and config["unique_id"] not in seen_ids
        seen_ids.add(config["unique_id"])
        assert config.get("state_topic", config.get("topic")) in published, topic
    by_topic = {config.get("state_topic", config.get("topic")): config for config in configs.values()}
    assert {"vidpipe/driveway/car", "vidpipe/driveway/car/snapshot", "vidpipe/driveway/snapshot"} <= set(by_topic)
    summary = json.loads((home["out"] / "summary.json").read_text())
    counts = json.loads(home["late"].payloads("vidpipe/driveway/counts")[0])
    lines = [c for c in configs.values() if c.get("state_topic") == "vidpipe/driveway/counts"]
    assert len(lines) == 2
    rendered = {c["name"]: jinja2.Template(c["value_template"]).render(value_json=counts) for c in lines}
    totals = {d: sum(summary["lines"]["road"][d].values()) for d in ("in", "out")}
    assert rendered == {f"road {d}": str(totals[d]) for d in ("in", "out")}


def test_ha_discovery_without_a_broker_is_one_line(tmp_path):
    result = run_cli("run", str(SUBURBAN), "-o", str(tmp_path / "out"), "--ha-discovery", "--events",
                     (tmp_path / "e.jsonl").as_uri(), "-q")
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        "vidpipe: error: --ha-discovery needs an mqtt:// --events URL: Home Assistant reads its discovery messages "
        "from the broker"]


def test_the_broker_says_offline_for_a_vidpipe_killed_with_sigkill(mosquitto, tmp_path):
    """`kill -9` leaves vidpipe no time to say anything: the broker publishes its last will, `offline` on
    `<prefix>/available`, retained, as soon as the connection drops."""
    listener = Listener(mosquitto.port, "vidpipe/available")
    process = vidpipe("live", str(PARKING), "--realtime", "--loop", "-o", str(tmp_path / "out"), "--no-report",
                      "--events", f"mqtt://127.0.0.1:{mosquitto.port}/vidpipe", "-q")
    try:
        wait_for(lambda: listener.payloads("vidpipe/available") == [b"online"], timeout=120)
    finally:
        process.kill()  # SIGKILL
        process.communicate(timeout=30)
    killed = time.monotonic()
    wait_for(lambda: listener.payloads("vidpipe/available") == [b"online", b"offline"], timeout=20)
    assert listener.messages[-1][0] - killed < 5  # the socket closed with the process: at once, not a keep-alive
    listener.close()
    late = Listener(mosquitto.port, "vidpipe/available")
    wait_for(lambda: late.payloads("vidpipe/available") == [b"offline"], timeout=10)
    late.close()


def test_a_camera_that_ends_early_does_not_take_the_others_offline(mosquitto, tmp_path):
    """Two cameras in one process share one connection to the broker: `available` says `online` once and
    `offline` once, after the last camera's last message, not when the first camera's clip ends seconds before."""
    from streaming import transport_stream

    (tmp_path / "short.ts").write_bytes(transport_stream(PARKING, max_frames=25))  # 2 s
    (tmp_path / "long.ts").write_bytes(transport_stream(PARKING, max_frames=100))  # 8 s
    listener = Listener(mosquitto.port, "vidpipe/#")
    result = run_cli("live", f"a={tmp_path / 'short.ts'}", f"b={tmp_path / 'long.ts'}", "--realtime", "--classes",
                     "car", "-o", str(tmp_path / "out"), "--no-report", "--events",
                     f"mqtt://127.0.0.1:{mosquitto.port}/vidpipe", "-q", timeout=300)
    time.sleep(1)
    listener.close()
    assert result.returncode == 0, result.stderr
    assert listener.payloads("vidpipe/available") == [b"online", b"offline"]
    last = {topic.split("/")[1]: at for at, topic, _, _ in listener.messages}
    assert last["available"] == max(last.values()) and last["available"] - last["a"] > 3, last


# The event lifecycle (Frigate's `frigate/events`): the traffic clip's first 6 s, its cars crossing the road line
# into the near half of the picture (a zone), to a broker and a file at once. A track the tracker drops ends
# before the input does (the first car's: last seen at 1.7 s, dropped 3 s later); the others end with the input.
NEAR = "near=0,0.55,1,0.55,1,1,0,1"


@pytest.fixture(scope="module")
def lifecycle(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lifecycle")
    broker = Broker(_mosquitto_binary(), folder)
    listener = Listener(broker.port, "vidpipe/#")
    out, jsonl = folder / "out", folder / "events.jsonl"
    result = run_cli("run", str(SUBURBAN), "-o", str(out), "--max-frames", "150", "--line", LINE, "--zone", NEAR,
                     "--no-video", "--no-report", "--events", f"mqtt://127.0.0.1:{broker.port}/vidpipe", "--events",
                     jsonl.as_uri(), "-q", timeout=300)
    time.sleep(1)
    listener.close()
    broker.stop()
    assert result.returncode == 0, result.stderr
    return {"out": out, "tracks": pd.read_parquet(out / "tracks.parquet"),
            "messages": [json.loads(p) for p in listener.payloads("vidpipe/events")],
            "camera": [json.loads(p) for p in listener.payloads("vidpipe/suburban-traffic/events")],
            "file": [json.loads(line) for line in jsonl.read_text().splitlines()]}


def test_a_car_crossing_is_new_then_updated_on_entering_a_zone_then_ends_after_it_left_under_one_id(lifecycle):
    """The first car to cross the line: on `vidpipe/events`, `new`, then `update`s (one of them its entry into
    the zone), then `end`, in that order, all with the id its crossing names; each `before` is the previous
    message's `after`. Its `end` is decided once the tracker has dropped it, seconds after its last detection
    (tracks.parquet's last_time_s), which is its end_time, and its start_time its first detection's."""
    crossing = next(e for e in lifecycle["camera"] if e["kind"] == "cross")
    mine = [m for m in lifecycle["messages"] if m["after"]["id"] == crossing["object_id"]]
    types = [m["type"] for m in mine]
    assert types[0] == "new" and types[-1] == "end" and set(types[1:-1]) == {"update"} and len(types) >= 3, types
    assert all(m["kind"] == m["type"] and m["object_id"] == m["after"]["id"] == m["before"]["id"] for m in mine)
    assert mine[0]["before"]["false_positive"] and not mine[0]["after"]["false_positive"]
    assert all(m["before"] == previous["after"] for previous, m in zip(mine, mine[1:]))
    assert [m["time_s"] for m in mine] == sorted(m["time_s"] for m in mine)
    assert any("near" in m["after"]["entered_zones"] and "near" not in m["before"]["entered_zones"]
               for m in mine if m["type"] == "update")
    track = lifecycle["tracks"].set_index("object_id").loc[crossing["object_id"]]
    assert track["track_id"] == crossing["track_id"] and track["confirmed"]
    end = mine[-1]
    assert end["after"]["end_time_s"] == pytest.approx(track["last_time_s"], abs=1e-3)
    # gone: the tracker gave up on it seconds after it was last seen, before the input ended
    assert track["last_time_s"] + 2 < end["time_s"] < lifecycle["tracks"]["last_time_s"].max()
    assert mine[0]["after"]["start_time"] <= end["after"]["end_time"] <= end["after"]["frame_time"] + 1e-3
    assert mine[0]["after"]["start_time_s"] == pytest.approx(track["first_time_s"], abs=1e-3)
    # it was lost inside the zone: its exit goes out when the tracker drops it, before its end
    order = [(e["kind"], e["object_id"]) for e in lifecycle["file"]]
    assert order.index(("exit", crossing["object_id"])) < order.index(("end", crossing["object_id"]))
    assert crossing["object_id"].endswith(f"-suburban-traffic-{crossing['track_id']}")
    assert float(crossing["object_id"].split("-")[0]) == pytest.approx(mine[0]["after"]["start_time"], abs=1e-3)


def test_every_object_has_one_new_and_one_end_and_a_track_never_confirmed_none(lifecycle):
    """tracks.parquet's confirmed tracks each have an `object_id` (unique), one `new` and one `end`, and
    nothing else of them comes before `new` or after `end`; the tracks never confirmed have none. An update
    comes a second (of video) or more after the object's previous message, and shows a change: its zones, its
    label, or a top score 0.05 higher."""
    tracks, messages = lifecycle["tracks"], lifecycle["messages"]
    confirmed, unconfirmed = tracks[tracks["confirmed"]], tracks[~tracks["confirmed"]]
    assert len(confirmed) >= 5 and len(unconfirmed) >= 1 and unconfirmed["object_id"].isna().all()
    assert confirmed["object_id"].notna().all() and confirmed["object_id"].is_unique
    seen = lambda state: (state["label"], state["current_zones"], state["entered_zones"])  # noqa: E731
    for row in confirmed.itertuples():
        mine = [m for m in messages if m["object_id"] == row.object_id]
        types = [m["type"] for m in mine]
        assert types[0] == "new" and types[-1] == "end" and types.count("new") == types.count("end") == 1, types
        assert {m["after"]["track_id"] for m in mine} == {row.track_id}
        for previous, update in [(p, m) for p, m in zip(mine, mine[1:]) if m["type"] == "update"]:
            before, after = update["before"], update["after"]
            assert update["time_s"] - previous["time_s"] >= 1.0
            assert seen(after) != seen(before) or after["top_score"] >= before["top_score"] + 0.05 - 1e-4
    assert "update" in {m["type"] for m in messages}
    assert {m["object_id"] for m in messages} == set(confirmed["object_id"])


def test_crossings_and_zone_changes_carry_their_object_s_id_and_every_sink_counts_the_lifecycle(lifecycle):
    """Each line and zone event names its track's object (tracks.parquet's object_id); the lifecycle stays off
    the camera's topic. The file gets the same events as the broker, and `events_out` counts them all for
    both: the line and zone events and the lifecycle messages."""
    ids = dict(zip(lifecycle["tracks"]["track_id"], lifecycle["tracks"]["object_id"]))
    table = pd.read_parquet(lifecycle["out"] / "events.parquet")
    camera = lifecycle["camera"]
    assert len(camera) == len(table) >= 4 and {e["kind"] for e in camera} == {"cross", "enter", "exit"}
    assert all(set(e) == FIELDS and e["object_id"] == ids[e["track_id"]] for e in camera)
    by_kind = {kind: [e for e in lifecycle["file"] if (e["kind"] in LIFECYCLE) == kind] for kind in (True, False)}
    assert by_kind[True] == lifecycle["messages"] and by_kind[False] == camera
    summary = json.loads((lifecycle["out"] / "summary.json").read_text())
    total = len(table) + len(lifecycle["messages"])
    assert [(s["sent"], s["dropped"]) for s in summary["events_out"]] == [(total, 0), (total, 0)]
