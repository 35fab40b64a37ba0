"""A real network camera stand-in for the tests: a sample clip served as a live MPEG-TS stream over HTTP.

Packets go out at real-time pace (each when its timestamp comes due), looping the clip forever, so a client
sees what an IP camera or a restreamer gives. The server can be stopped mid-stream and started again on the
same port, to test reconnecting.
"""

from __future__ import annotations

import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av


def transport_stream(clip: Path, max_frames: int | None = None) -> bytes:
    """The clip re-encoded as H.264 in MPEG-TS (what cameras and restreamers send), in memory."""
    buffer = io.BytesIO()
    with av.open(str(clip)) as source, av.open(buffer, "w", format="mpegts") as out:
        video = source.streams.video[0]
        stream = out.add_stream("libx264", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
        stream.codec_context.time_base = video.time_base  # the source's own timestamps, variable rate too
        stream.options = {"preset": "ultrafast", "g": "12", "bf": "0"}  # a keyframe every second, like cameras
        for i, frame in enumerate(source.decode(video)):
            if max_frames is not None and i >= max_frames:
                break
            for packet in stream.encode(frame.reformat(format="yuv420p")):  # keeps the frame's timestamp
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def shrinking_transport_stream(clip: Path, frames: int, switch_at: int) -> bytes:
    """The clip's first `frames` frames as H.264 in MPEG-TS at 25 fps that halves its picture size at frame
    `switch_at`, as a camera told to change resolution does (two encodes, one stream, timestamps running on)."""
    from fractions import Fraction

    def part(start: int, stop: int, scale: int) -> bytes:
        buffer = io.BytesIO()
        with av.open(str(clip)) as source, av.open(buffer, "w", format="mpegts") as out:
            video = source.streams.video[0]
            stream = out.add_stream("libx264", rate=25)
            stream.width, stream.height, stream.pix_fmt = video.width // scale, video.height // scale, "yuv420p"
            stream.codec_context.time_base = Fraction(1, 25)
            stream.options = {"preset": "ultrafast", "g": "25", "bf": "0"}
            for i, frame in enumerate(source.decode(video)):
                if i >= stop:
                    break
                if i >= start:
                    picture = frame.reformat(width=stream.width, height=stream.height, format="yuv420p")
                    picture.pts, picture.time_base = i, Fraction(1, 25)
                    for packet in stream.encode(picture):
                        out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        return buffer.getvalue()

    return part(0, switch_at, 1) + part(switch_at, frames, 2)


class LiveStreamServer:
    """Serves `ts` (MPEG-TS bytes) at /live.ts, in real time, looped; `stop()` cuts every viewer off."""

    def __init__(self, ts: bytes, port: int = 0) -> None:
        self._ts = ts
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._running = threading.Event()
        self.stalled = threading.Event()  # set: connections stay open but no data flows (a hung camera)
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/live.ts"

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._server.allow_reuse_address = True
        self.port = self._server.server_address[1]
        self._running.set()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Drop every connection, like a camera that goes away."""
        self._running.clear()
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name is http.server's API
                self.send_response(200)
                self.send_header("Content-Type", "video/mp2t")
                self.end_headers()
                try:
                    self._send_live()
                except (OSError, av.error.FFmpegError):
                    return  # the viewer left, or the server was stopped

            def _send_live(self) -> None:
                start, offset = time.monotonic(), 0.0
                while server._running.is_set():
                    with av.open(io.BytesIO(server._ts), format="mpegts") as source, \
                            av.open(self.wfile, "w", format="mpegts") as out:
                        video = source.streams.video[0]
                        stream = out.add_stream_from_template(video)
                        first = None
                        last = 0.0
                        for packet in source.demux(video):
                            if packet.dts is None:
                                continue
                            if not server._running.is_set():
                                return
                            seconds = float(packet.pts * packet.time_base)
                            first = seconds if first is None else first
                            last = seconds - first
                            delay = start + offset + last - time.monotonic()
                            if delay > 0:
                                time.sleep(delay)
                            while server.stalled.is_set() and server._running.is_set():
                                time.sleep(0.05)
                                offset = time.monotonic() - start - last  # after a stall, real time again
                            packet.stream = stream
                            out.mux(packet)
                            self.wfile.flush()
                    offset += last + 1 / 25

            def log_message(self, *args) -> None:
                pass

        return Handler
