"""The preview server's HTTP API (`vidpipe.api`) and its token, against a real `vidpipe live --realtime` run of
the suburban clip (with clips), asked with http.client as a Home Assistant or a webhook receiver would."""

from __future__ import annotations

import datetime as dt
import http.client
import io
import json
import signal
import socket
import urllib.parse

import av
import cv2
import numpy as np
import pytest

from conftest import SUBURBAN, free_port, run_cli, vidpipe, wait_for

TOKEN = "s3cret-token"
LINE, ZONE = "road=0,0.55,1,0.55", "near=0,0.6,1,0.6,1,1,0,1"
LIFECYCLE = ("new", "update", "end")


def get(port: int, path: str, headers: dict | None = None) -> tuple[int, str, bytes]:
    """GET `path` as it is written (no client-side tidying of `..` or of encoded slashes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    answer = connection.getresponse()
    return answer.status, answer.getheader("Content-Type"), answer.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A run bound to every address (reached through 127.0.0.1), its token from VIDPIPE_SERVE_TOKEN, its events
    also written to a file: the API's events are checked against those. Yields (port, out, events in the file:
    `events()` the line and zone ones, `events(True)` all) once a few events happened; stopped at the end."""
    folder = tmp_path_factory.mktemp("api")
    out, port, jsonl = folder / "out", free_port(), folder / "events.jsonl"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VIDPIPE_SERVE_TOKEN", TOKEN)
        process = vidpipe("live", str(SUBURBAN), "--realtime", "--loop", "--line", LINE, "--zone", ZONE,
                          "--snapshots", "--clips", "0.5,0.5", "--events", jsonl.as_uri(), "--serve", f"0.0.0.0:{port}",
                          "--no-report",
                          "-o", str(out), "-q")

    def events(lifecycle: bool = False) -> list[dict]:
        """The file's line and zone events, and with `lifecycle` the objects' new, update and end too."""
        written = [json.loads(line) for line in jsonl.read_text().splitlines()] if jsonl.exists() else []
        return [e for e in written if lifecycle or e["kind"] not in LIFECYCLE]

    try:
        wait_for(lambda: {e["kind"] for e in events()} >= {"cross", "enter"} and len(events()) >= 4, timeout=120)
        yield port, out, events
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr


def test_beyond_loopback_every_route_asks_for_the_token(served):
    port, _, _ = served
    an_end = _ended(port)
    for path in ("/", "/stats", "/api/events", "/api/suburban-traffic/latest.jpg",
                 f"/api/events/{an_end['object_id']}/clip.mp4"):
        assert get(port, path)[0] == 401, path
        assert get(port, path, {"Authorization": "Bearer wrong"})[0] == 401, path
        assert get(port, f"{path}?token=wrong")[0] == 401, path
        assert get(port, path, {"Authorization": f"Bearer {TOKEN}"})[0] == 200, path
        assert get(port, f"{path}?token={TOKEN}")[0] == 200, path


def test_the_events_route_gives_the_sinks_events_newest_first_with_their_filters(served):
    port, _, events = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    _ended(port)
    status, kind, body = get(port, "/api/events", auth)
    listed, sent = json.loads(body), events(True)
    assert (status, kind) == (200, "application/json")
    assert listed and all(e in sent for e in listed)  # the same objects as the file's (written first)
    assert {e["kind"] for e in listed} >= {"cross", "enter", *LIFECYCLE}  # line, zone and lifecycle events
    assert len({json.dumps(e, sort_keys=True) for e in listed}) == len(listed)
    assert [e["time"] for e in listed] == sorted((e["time"] for e in listed), reverse=True)
    assert all("token" not in (e.get("snapshot_url") or e.get("clip_url") or "")  # a receiver adds its own
               for e in listed)
    middle = listed[len(listed) // 2]["time"]
    for after in (middle, str(dt.datetime.fromisoformat(middle).timestamp())):
        later = json.loads(get(port, "/api/events?" + urllib.parse.urlencode({"after": after}), auth)[2])
        assert later and all(e["time"] > middle for e in later), after
    two = json.loads(get(port, "/api/events?limit=2", auth)[2])
    everything = json.loads(get(port, "/api/events", auth)[2])  # the run goes on: newer ones may have come
    first = everything.index(two[0])
    assert len(two) == 2 and everything[first:first + 2] == two and all(e["time"] >= two[0]["time"]
                                                                         for e in everything[:first])
    assert json.loads(get(port, "/api/events?label=no-such-class", auth)[2]) == []
    assert json.loads(get(port, "/api/events?camera=another", auth)[2]) == []
    assert json.loads(get(port, "/api/events?camera=suburban-traffic", auth)[2])[-len(listed):] == listed
    for one in (next(e for e in listed if e["kind"] == "cross"), next(e for e in listed if e["kind"] == "end")):
        label = _label(one)
        chosen = json.loads(get(port, f"/api/events?label={label}", auth)[2])
        assert one in chosen and all(_label(e) == label for e in chosen), label
    assert get(port, "/api/events?after=yesterday", auth)[0] == 400


def test_an_event_s_snapshot_and_the_latest_frame_are_served_and_nothing_else_is(served):
    port, out, events = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for event in events()[:3]:
        status, kind, body = get(port, f"/api/events/{event['id']}/snapshot.jpg", auth)
        assert (status, kind) == (200, "image/jpeg")
        assert body == (out / event["snapshot"]).read_bytes()
    status, kind, body = get(port, "/api/suburban-traffic/latest.jpg", auth)
    picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert (status, kind) == (200, "image/jpeg") and picture.shape[:2] == (352, 640)  # the clip's frame size
    an_id = events()[0]["id"]
    for path in ("/api/events/no-such-id/snapshot.jpg", "/api/another-camera/latest.jpg", f"/api/events/{an_id}",
                 "/api/events/..%2F..%2Fsummary.json/snapshot.jpg", "/api/../stats", "/api/%2e%2e/stats",
                 "/api/events/%2e%2e/snapshot.jpg", f"/api/events/{an_id}/..%2f..%2fsummary.json",
                 "/api/suburban-traffic%2flatest.jpg", "/api/suburban-traffic/latest.jpg/..", "/api/"):
        assert get(port, path, auth)[0] == 404, path


def test_an_object_s_clip_is_served_once_finished_at_its_clip_url_and_nothing_else_is(served):
    port, out, events = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    end = _ended(port)
    status, kind, body = get(port, f"/api/events/{end['object_id']}/clip.mp4", auth)
    assert (status, kind) == (200, "video/mp4") and body == (out / end["clip"]).read_bytes()
    with av.open(io.BytesIO(body)) as clip:  # a whole MP4 that FFmpeg decodes
        assert sum(1 for _ in clip.decode(video=0)) >= 2
    assert end["clip_url"] == (f"http://{socket.gethostname()}:{port}/api/events/"
                               f"{urllib.parse.quote(end['object_id'])}/clip.mp4")
    crossing = events()[0]  # a line or zone event: no clip of its own
    for path in ("/api/events/no-such-object/clip.mp4", f"/api/events/{crossing['id']}/clip.mp4",
                 "/api/events/..%2F..%2Fsummary.json/clip.mp4", f"/api/events/{end['object_id']}/..%2Fclip.mp4",
                 f"/api/events/{end['object_id']}/clip.mp4/.."):
        assert get(port, path, auth)[0] == 404, path


def _ended(port: int) -> dict:
    """The newest `end` the API lists, once one is there (a car that left the picture)."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ended = lambda: [e for e in json.loads(get(port, "/api/events", auth)[2]) if e["kind"] == "end"]  # noqa: E731
    wait_for(ended, timeout=120)
    return ended()[0]


def _label(event: dict) -> str:
    return event["class_name"] if "class_name" in event else event["after"]["label"]


def test_a_server_beyond_loopback_without_a_token_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("VIDPIPE_SERVE_TOKEN", raising=False)
    result = run_cli("live", str(SUBURBAN), "--serve", f"0.0.0.0:{free_port()}", "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "needs a token" in result.stderr, result.stderr


def test_the_page_opened_with_its_token_passes_it_on_to_its_stream_and_figures(served, browser):
    """In headless Chromium: the page's own requests (the MJPEG stream, /stats) carry the token of its URL,
    so the picture shows and the figures fill in."""
    port, _, _ = served
    browser.get(f"http://127.0.0.1:{port}/?token={TOKEN}")
    wait_for(lambda: browser.execute_script("return document.getElementById('stream').naturalWidth") == 640
             and browser.execute_script("return document.getElementById('fps').textContent") != "-", timeout=30)
