"""How a live source is opened and kept: capture requests, timeouts, reconnect back-off.

Its own small module, free of heavy imports, so the command line shows these defaults without loading
OpenCV or FFmpeg.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LiveOptions:
    """How to open and keep a live source."""

    width: int | None = None  # camera capture size and rate requests
    height: int | None = None
    camera_fps: float | None = None
    open_timeout: float = 10.0  # seconds to connect to a stream
    read_timeout: float = 10.0  # seconds without data before a stream counts as lost
    reconnect_delay: float = 0.5  # first wait before reconnecting; doubles up to max_reconnect_delay
    max_reconnect_delay: float = 10.0
    max_reconnects: int | None = None  # None: keep trying
