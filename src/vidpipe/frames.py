"""The frame that travels through the pipeline, and the facts about the stream it came from."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture.

    `index` is the 0-based position in the source (before any sampling), so rows written for it join
    back with the video; `time` is seconds since the stream started, from the frame's own timestamp,
    so it stays right for fractional and variable frame rates (live sources: from the capture clock).
    `captured` is when a live frame was captured (`time.monotonic()`), for measuring latency.
    """

    index: int
    time: float
    image: np.ndarray  # H x W x 3, uint8, BGR
    captured: float | None = None
    target_s: float | None = None  # with --sample-fps: the start of the sampling slot this frame stands for

    @property
    def size(self) -> tuple[int, int] | None:
        """The picture's (width, height); None for a frame known only by index and time."""
        return (self.image.shape[1], self.image.shape[0]) if self.image.size else None

    @property
    def stands_for(self) -> float:
        """The time this frame's rows stand for: its sampling slot's (`target_s`), else its own."""
        return self.time if self.target_s is None else self.target_s


@dataclass(frozen=True)
class VideoInfo:
    """What a source knows about itself before the first frame is read."""

    name: str  # short id used in tables (the file stem)
    uri: str
    kind: str  # "video", "images", "image"
    width: int
    height: int
    fps: float  # nominal (average) frame rate
    frame_count: int | None = None  # from the container header, when it says
    duration: float | None = None  # seconds, when known
    codec: str | None = None
    time_base: Fraction | None = None  # of the video stream; the video sink reuses it for exact timestamps
    audio_codec: str | None = None
    rotation: int = 0  # degrees counter-clockwise the source asks players to turn it (phones); frames come upright
    origin_s: float = 0.0  # the source's own clock at time 0 (its start: a picture may start after its sound)
    file: dict | None = None  # a local input's {path, size_bytes, mtime_ns}: an export checks it is unchanged

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "uri": self.uri,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "frame_count": self.frame_count,
            "duration_s": self.duration,
            "codec": self.codec,
            "audio_codec": self.audio_codec,
            "rotation": self.rotation,
            "file": self.file,
        }
