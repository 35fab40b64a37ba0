"""How a live source is opened and kept: capture requests, timeouts, reconnect back-off.

Its own small module, free of heavy imports, so the command line shows these defaults without loading
OpenCV or FFmpeg.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from .errors import InputError


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
    serve_token: str | None = None  # what every request to --serve must carry (needed beyond loopback)

    def __post_init__(self) -> None:
        for name in ("open_timeout", "read_timeout", "max_reconnect_delay", "camera_fps"):
            positive(f"--{name.replace('_', '-')}", getattr(self, name))
        delay = self.reconnect_delay
        if not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            raise InputError(f"--reconnect-delay must be a number of seconds >= 0, got {delay!r}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise InputError(f"--{name} must be at least 1 pixel, got {value}")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise InputError(f"--max-reconnects must be >= 0, got {self.max_reconnects}")

    @classmethod
    def take(cls, options: dict) -> LiveOptions:
        """The record of the command line's live options, taken out of `options` (the rest are the pipeline's)."""
        return cls(**{f.name: options.pop(f.name) for f in fields(cls) if f.name in options})

    @property
    def asks_camera(self) -> bool:
        """Whether a camera capture setting was given (meaningless for a stream or a file)."""
        return any(v is not None for v in (self.width, self.height, self.camera_fps))

    def check_sources(self, specs: list[str]) -> None:
        """A camera capture setting needs a camera among the sources: one line otherwise."""
        if self.asks_camera and not any(spec.isdigit() for spec in specs):
            raise InputError("--width, --height and --camera-fps are for cameras (SOURCE 0, 1...), not for a "
                             "stream or a file, which come at their own size and rate")


def positive(option: str, value: float | None) -> None:
    """A finite number above zero (or None, unset), else one line naming the option."""
    if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0):
        raise InputError(f"{option} must be a positive number, got {value!r}")
