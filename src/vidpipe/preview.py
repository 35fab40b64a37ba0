"""Watching a run as it happens: an OpenCV window, or a small web page with the annotated stream and stats.

Both are viewers (`vidpipe.sinks.Viewer`): the pipeline hands them each annotated frame, and they keep no
file. The web preview serves `/` (a page), `/stream.mjpg` (the annotated frames as MJPEG, which every
browser shows in an <img>) and `/stats` (JSON: `processed_fps`, `source_fps`, `latency_ms`, drops, the
objects in the latest frame (`counts`) and since the start (`totals`), `lines`, `zones`, and the source's
connection `state`), on 127.0.0.1 unless told otherwise. A many-camera run's page is a grid of its cameras,
each stream at `/cameras/<name>/stream.mjpg`, and `/stats` gives `{"cameras": {name: stats}}`. The events'
snapshots (`--snapshots`) are served from the output folder: `/snapshots/<file>`, or for a camera of many
`/cameras/<name>/snapshots/<file>`; a viewer's `outputs_url` is the base its events' `snapshot` paths join to.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from .detections import Detections
from .errors import InputError
from .frames import Frame

log = logging.getLogger("vidpipe")
JPEG_QUALITY = 80
IDLE_TIMEOUT_S = 10.0
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidpipe preview</title>
<style>
 body { margin: 0; background: #111; color: #eee; font: 14px system-ui, sans-serif; display: flex;
        align-items: flex-start; }
 main { flex: 1; min-width: 0; height: 100vh; }
 img { display: block; max-width: 100%; max-height: 100vh; }
 aside { flex: none; padding: 16px; min-width: 220px; }
 dt { color: #999; margin-top: 10px; } dd { margin: 0; font-size: 22px; }
 table { margin-top: 4px; border-collapse: collapse; } td { padding: 2px 10px 2px 0; }
 h3 { font-size: 13px; color: #999; font-weight: normal; margin: 14px 0 0; } small { color: #777; }
 .state { font-size: 18px; font-weight: 600; padding: 6px 10px; border-radius: 4px; background: #264; }
 .state.reconnecting { background: #a60; } .state.gave_up, .state.ended { background: #822; }
 .stale { opacity: 0.35; }
</style></head>
<body>
<main><img id="stream" src="/stream.mjpg" alt="annotated stream"></main>
<aside>
 <div id="state" class="state">-</div>
 <div id="figures">
 <dl>
  <dt>processed <small>(frames a second, last 2 s)</small></dt><dd id="fps">-</dd>
  <dt>from the source <small>(frames a second, last 2 s)</small></dt><dd id="source-fps">-</dd>
  <dt>latency <small>(capture to picture, median of the last 2 s)</small></dt><dd id="latency">-</dd>
  <dt>dropped frames <small>(since the start)</small></dt><dd id="dropped">-</dd>
 </dl>
 <h3>in this frame</h3>
 <table id="counts"></table>
 <h3>since the start <small>(objects: one per confirmed track)</small></h3>
 <table id="totals"></table>
 <h3 id="lines-title" hidden>lines <small>(crossings so far)</small></h3>
 <table id="lines"></table>
 <h3 id="zones-title" hidden>zones</h3>
 <table id="zones"></table>
 </div>
</aside>
<script>
const stream = document.getElementById("stream");
function fit() {  // the picture as large as the room beside the figures, its shape kept: up as well as down
  const area = stream.parentElement, w = stream.naturalWidth, h = stream.naturalHeight;
  if (!w || !h) return;  // no frame yet
  const scale = Math.min(area.clientWidth / w, area.clientHeight / h);
  stream.style.width = Math.floor(w * scale) + "px";
  stream.style.height = Math.floor(h * scale) + "px";
}
window.addEventListener("resize", fit);
async function refresh() {
  fit();  // also after the first frame comes, or the stream changes its size
  try {
    const stats = await (await fetch("/stats", {cache: "no-store"})).json();
    const source = stats.source || {state: "connected"}, live = source.state === "connected";
    const state = document.getElementById("state");
    state.className = "state " + source.state;
    state.textContent = source.state.replace("_", " ") + (live ? "" : " since " + source.since.slice(11, 19)) +
      (source.reconnects ? ` (${source.reconnects} reconnect${source.reconnects > 1 ? "s" : ""})` : "");
    document.getElementById("figures").className = live ? "" : "stale";  // last known, not current
    document.getElementById("fps").textContent = live ? stats.processed_fps.toFixed(1) : "-";
    document.getElementById("source-fps").textContent = live ? stats.source_fps.toFixed(1) : "-";
    document.getElementById("latency").textContent =
      !live || stats.latency_ms === null ? "-" : stats.latency_ms.toFixed(0) + " ms";
    document.getElementById("dropped").textContent = stats.dropped;
    const rows = (entries) => entries.map(([name, n]) => `<tr><td>${name}</td><td>${n}</td></tr>`).join("");
    document.getElementById("counts").innerHTML = rows(Object.entries(stats.counts));
    document.getElementById("totals").innerHTML = rows(Object.entries(stats.totals || {}));
    const lines = Object.entries(stats.lines || {}), zones = Object.entries(stats.zones || {});
    document.getElementById("lines-title").hidden = !lines.length;
    document.getElementById("zones-title").hidden = !zones.length;
    document.getElementById("lines").innerHTML = rows(lines.map(([name, c]) => [name, `in ${c.in}, out ${c.out}`]));
    document.getElementById("zones").innerHTML =
      rows(zones.map(([name, z]) => [name, `${z.inside} inside now, ${z.entries} entries`]));
  } catch (error) { /* the run may be over */ }
}
setInterval(refresh, 500);
refresh();
</script>
</body></html>
"""


GRID_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vidpipe cameras</title>
<style>
 body { margin: 0; background: #111; color: #eee; font: 13px system-ui, sans-serif; }
 main { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 8px; padding: 8px; }
 article { background: #1b1b1b; border-radius: 4px; overflow: hidden; }
 article img { width: 100%; display: block; background: #000; aspect-ratio: 16 / 9; object-fit: contain; }
 header { display: flex; justify-content: space-between; align-items: center; padding: 6px 8px; }
 h2 { font-size: 15px; margin: 0; } small, .label { color: #888; }
 .state { font-weight: 600; padding: 2px 8px; border-radius: 3px; background: #264; }
 .state.reconnecting, .state.connecting { background: #a60; }
 .state.gave_up, .state.ended, .state.failed { background: #822; }
 .figures { display: flex; flex-wrap: wrap; gap: 4px 14px; padding: 0 8px 8px; } .figures b { font-size: 16px; }
 .stale { opacity: 0.35; }
</style></head>
<body>
<main id="cameras"></main>
<script>
const grid = document.getElementById("cameras");
function tile(name) {
  let t = document.getElementById("camera-" + name);
  if (t) return t;
  t = document.createElement("article");
  t.id = "camera-" + name;
  t.innerHTML = `<img alt="${name}" src="/cameras/${encodeURIComponent(name)}/stream.mjpg"><header><h2></h2>` +
    `<span class="state"></span></header><div class="figures"></div>`;
  t.querySelector("h2").textContent = name;
  grid.appendChild(t);
  return t;
}
const pairs = (o) => Object.entries(o || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "-";
async function refresh() {
  try {
    const stats = await (await fetch("/stats", {cache: "no-store"})).json();
    for (const [name, s] of Object.entries(stats.cameras)) {
      const t = tile(name), source = s.source || {state: "connected"}, live = source.state === "connected";
      const state = t.querySelector(".state");
      state.className = "state " + source.state;
      state.textContent = source.state.replace("_", " ") +
        (source.reconnects ? ` (${source.reconnects} reconnect${source.reconnects > 1 ? "s" : ""})` : "");
      const figure = (label, value) => `<span><span class="label">${label}</span> <b>${value}</b></span>`;
      const lines = Object.entries(s.lines || {}).map(([n, c]) => figure(n, `in ${c.in}, out ${c.out}`));
      const zones = Object.entries(s.zones || {}).map(([n, z]) =>
        figure(n, `${z.inside} inside, ${z.entries} entries`));
      const f = t.querySelector(".figures");
      f.className = "figures" + (live ? "" : " stale");
      f.innerHTML = [figure("fps", live ? s.processed_fps.toFixed(1) : "-"),
        figure("of", live ? s.source_fps.toFixed(1) : "-"),
        figure("latency", !live || s.latency_ms === null ? "-" : s.latency_ms.toFixed(0) + " ms"),
        figure("dropped", s.dropped), figure("now", pairs(s.counts)), figure("since the start", pairs(s.totals)),
        ...lines, ...zones].join("");
      f.dataset.fps = live ? s.processed_fps : "";
    }
  } catch (error) { /* the run may be over */ }
}
setInterval(refresh, 500);
refresh();
</script>
</body></html>
"""


def parse_address(text: str) -> tuple[str, int]:
    """`8000` or `0.0.0.0:8000` -> (host, port); the host defaults to 127.0.0.1 (this machine only)."""
    host, _, port = text.rpartition(":")
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise InputError(f"--serve takes [HOST:]PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _snapshot_file(folder: Path, name: str) -> Path | None:
    """The snapshot `name` (as it came in the URL) in `folder`, if it is one: a plain JPEG name inside it, never
    a path that climbs out of it or a hidden (partial) file."""
    name = urllib.parse.unquote(name)
    if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".jpg"):
        return None
    path = folder / name
    try:
        return path if path.is_file() else None
    except OSError:  # a name too long for the file system names no snapshot
        return None


class _Feed:
    """The newest annotated frame of one camera, as JPEG, for its MJPEG stream; a viewer. `outputs_url`: where
    its output folder's snapshots are served (None without one)."""

    def __init__(self, outputs_url: str | None = None) -> None:
        self.outputs_url = outputs_url
        self.jpeg: bytes | None = None
        self.frame_id = 0
        self.changed = threading.Condition()
        self.closed = False

    def write(self, frame: Frame, detections: Detections) -> None:
        ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            with self.changed:
                self.jpeg, self.frame_id = jpeg.tobytes(), self.frame_id + 1
                self.changed.notify_all()

    def close(self) -> None:
        """The camera is done (its page tile keeps its last figures); the server may go on for others."""

    def end(self) -> None:
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def next_jpeg(self, last_id: int) -> tuple[bytes | None, int]:
        with self.changed:
            self.changed.wait_for(lambda: self.closed or self.frame_id != last_id, timeout=1.0)
            return (None if self.closed else self.jpeg), self.frame_id


class PreviewServer:
    """The annotated stream and live stats over HTTP; a viewer.

    With `cameras` (a many-camera run) the page is a grid of them: `/stats` gives `{"cameras": {name:
    stats}}`, each camera's stream is at `/cameras/<name>/stream.mjpg`, and `viewer(name)` is what that
    camera's frames are written to. With `out_dir`, the snapshots in its `snapshots/` (a camera of many:
    `<name>/snapshots/`) are served beside the stream."""

    def __init__(self, address: str, stats: Callable[[], dict], cameras: Sequence[str] = (),
                 out_dir: Path | None = None) -> None:
        host, port = parse_address(address)
        self._stats = stats
        self._page = GRID_PAGE if cameras else PAGE
        try:
            self._server = _QuietServer((host, port), self._handler())
        except OSError as exc:
            raise InputError(f"cannot serve on {host}:{port} ({exc.strerror or exc})") from None
        port = self._server.server_address[1]
        self.url = f"http://{host}:{port}/"
        # what a link in an event names: this machine's name where the server listens on every address
        base = f"http://{socket.gethostname() if host in ('', '0.0.0.0', '::') else host}:{port}/"
        served = out_dir is not None
        self._feeds = ({f"/cameras/{name}/stream.mjpg": _Feed(f"{base}cameras/{name}/" if served else None)
                        for name in cameras} or {"/stream.mjpg": _Feed()})
        self.outputs_url = base if served and not cameras else None
        self._snapshots = ({f"/cameras/{name}/snapshots/": out_dir / name / "snapshots" for name in cameras}
                           or {"/snapshots/": out_dir / "snapshots"}) if out_dir is not None else {}
        threading.Thread(target=self._server.serve_forever, name="vidpipe-preview", daemon=True).start()
        log.info("preview at %s", self.url)

    def viewer(self, camera: str) -> _Feed:
        return self._feeds[f"/cameras/{camera}/stream.mjpg"]

    def write(self, frame: Frame, detections: Detections) -> None:
        self._feeds["/stream.mjpg"].write(frame, detections)

    def close(self) -> None:
        for feed in self._feeds.values():
            feed.end()
        self._server.shutdown()
        self._server.server_close()

    def _snapshot(self, path: str) -> Path | None:
        """The snapshot file a request's path names, if any."""
        folder, name = path.rpartition("/")[0] + "/", path.rpartition("/")[2]
        return _snapshot_file(self._snapshots[folder], name) if folder in self._snapshots else None

    def _handler(self):
        preview = self

        class Handler(BaseHTTPRequestHandler):
            timeout = IDLE_TIMEOUT_S  # a client that connects and says nothing does not hold a thread for ever

            def do_GET(self, head: bool = False) -> None:  # the name is http.server's API
                path = urllib.parse.urlsplit(self.path).path  # exact routes; a query string is allowed
                if path == "/":
                    self._send(200, "text/html; charset=utf-8", preview._page.encode(), head)
                elif path == "/stats":
                    self._send(200, "application/json", json.dumps(preview._stats()).encode(), head)
                elif path in preview._feeds and not head:
                    self._stream(preview._feeds[path])
                elif path in preview._feeds:
                    self._send(200, "multipart/x-mixed-replace; boundary=frame", b"", head)
                elif snapshot := preview._snapshot(path):
                    self._send(200, "image/jpeg", snapshot.read_bytes(), head)
                else:
                    self._send(404, "text/plain", b"not found", head)

            def do_HEAD(self) -> None:  # link checkers and uptime monitors ask with HEAD
                self.do_GET(head=True)

            def _send(self, code: int, kind: str, body: bytes, head: bool = False) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _stream(self, feed: _Feed) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                last = -1
                try:
                    while True:
                        jpeg, last = feed.next_jpeg(last)
                        if feed.closed:
                            return
                        if jpeg is None:
                            continue
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                except OSError:  # the viewer left, or stopped reading for IDLE_TIMEOUT_S
                    return

            def log_message(self, *args) -> None:
                pass  # no access log on the user's terminal

        return Handler


class _QuietServer(ThreadingHTTPServer):
    """A viewer that leaves mid-reply (a closed tab, a reload) is normal on a live page: no traceback for it."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        log.warning("preview: %s from %s: %s", type(error).__name__, client_address[0], error)


class PreviewWindow:
    """An OpenCV window with the annotated frames; a viewer. Needs a display."""

    title = "vidpipe (q to stop)"

    def __init__(self) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise InputError("--show needs a display (DISPLAY is not set); use --serve PORT to watch in a browser")

    def write(self, frame: Frame, detections: Detections) -> None:
        cv2.imshow(self.title, frame.image)
        if cv2.waitKey(1) & 0xFF == ord("q"):
            raise KeyboardInterrupt  # stops the run cleanly, like Ctrl-C

    def close(self) -> None:
        cv2.destroyAllWindows()
