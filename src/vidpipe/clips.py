"""Event clips (`--clips PRE,POST`): each object's video, `OUT/clips/<object id>.mp4`, from PRE seconds before its
first detection to POST seconds after its last, with the source's timestamps.

An object is `new` only once its track is confirmed, after it started, and its `end` comes once the tracker has
dropped it, `forget_s` after its last detection: the frames a clip needs have left the pipeline by then. So
every frame goes into a ring that keeps the last `hold_s` seconds of video as JPEG (PRE, plus CONFIRM_WAIT_S
for the confirmation, or the writers' lag and a second if longer): memory is bounded by seconds of video, not
by how long the stream runs. A track confirmed later than CONFIRM_WAIT_S after its start gets a clip that
starts where the ring does.

One writer per object while it lives, `lag = max(0, forget_s - POST)` seconds behind the newest frame: when its
`end` arrives, every frame up to end + POST is still in the ring and none past it has been written. A clip is
written under a hidden `.partial` name (`files.PartialFile`) and renamed once its last frame is in, so a
`clips/<id>.mp4` is always complete; a crash or a kill leaves a `.partial` only.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import InputError
from .frames import Frame, VideoInfo
from .sinks import VideoSink

CONFIRM_WAIT_S = 3.0  # how long after its start a track is expected to be confirmed (`new`), at the latest
MAX_S = 600.0  # the longest PRE or POST: the ring holds PRE seconds of frames in memory
JPEG_QUALITY = 90
LAG_MARGIN_S = 1.0  # the ring keeps this much more than the writers' lag: an `end` arrives a frame late
FOLDER = "clips"


def parse_clips(value: object) -> tuple[float, float] | None:
    """`PRE,POST` (the command line's text, or a preset's `[pre, post]`) as seconds; None: no clips."""
    if value is None or value is False:
        return None
    parts = value.split(",") if isinstance(value, str) else value
    try:
        pre, post = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise InputError(f"clips must be PRE,POST: seconds before an object's start and after its end "
                         f"(e.g. 5,5), got {value!r}") from None
    for number in (pre, post):
        if not math.isfinite(number) or not 0 <= number <= MAX_S:
            raise InputError(f"clips: PRE and POST must be seconds from 0 to {MAX_S:g}, got {value!r}")
    return pre, post


def clip_path(object_id: str) -> str:
    """An object's clip, relative to the output folder (object ids are letters, digits, `.`, `-` and `_`)."""
    return f"{FOLDER}/{object_id}.mp4"


@dataclass
class _Clip:
    """One object's clip being written: the times (input seconds) it spans, and its last frame written."""

    sink: VideoSink
    start: float  # the object's start - PRE
    end: float = math.inf  # its end + POST, once it has ended
    written: float = -math.inf


class ClipRecorder:
    """One camera's clips: a ring of its recent frames and a writer per living object. `write` every frame with
    that frame's lifecycle messages; `close` at the input's end with the last ones; `abort` discards."""

    def __init__(self, out_dir: Path, info: VideoInfo, pre: float, post: float, forget_s: float,
                 preset: str, crf: int) -> None:
        self.out_dir, self.info, self.pre, self.post = out_dir, info, pre, post
        self._encoding = {"preset": preset, "crf": crf}
        self.lag = max(0.0, forget_s - post)
        self.hold_s = max(pre + CONFIRM_WAIT_S, self.lag + LAG_MARGIN_S)
        self._ring: deque[tuple[int, float, bytes]] = deque()  # (index, time, JPEG), oldest first
        self._clips: dict[str, _Clip] = {}

    def write(self, frame: Frame, image: np.ndarray, lifecycle: Sequence[dict]) -> None:
        """This frame (`image`: the picture the clips show, boxes drawn or not) into the ring; each lifecycle
        message opens its object's clip (`new`) or sets where it ends (`end`), and names it (`clip`); every open
        clip is written up to what is settled, and those past their end are finished."""
        self.follow(lifecycle)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if ok:
            self._ring.append((frame.index, frame.time, jpeg.tobytes()))
        while self._ring and self._ring[0][1] < frame.time - self.hold_s:
            self._ring.popleft()
        self._advance(frame.time - self.lag, finished=lambda clip: frame.time >= clip.end)

    def follow(self, lifecycle: Sequence[dict]) -> None:
        """Open a clip for each `new` object, set each ended object's end, and name the clip in each message."""
        for message in lifecycle:
            object_id, after = message["object_id"], message["after"]
            if message["kind"] == "new":
                sink = VideoSink(self.out_dir / clip_path(object_id), self.info, copy_audio=False, threads=1,
                                 **self._encoding)
                self._clips[object_id] = _Clip(sink, after["start_time_s"] - self.pre)
            elif message["kind"] == "end" and object_id in self._clips:
                self._clips[object_id].end = after["end_time_s"] + self.post
            message["clip"] = clip_path(object_id)

    def close(self, lifecycle: Sequence[dict]) -> None:
        """The input ended (`lifecycle`: its last `end`s): every clip gets the frames it still lacks, up to its
        end or the input's, and is finished."""
        self.follow(lifecycle)
        self._advance(math.inf, finished=lambda clip: True)
        self._ring.clear()

    def abort(self) -> None:
        """Discard every clip being written (their `.partial` files)."""
        for clip in self._clips.values():
            clip.sink.abort()
        self._clips.clear()

    def _advance(self, settled: float, finished) -> None:
        """Write each clip's frames from the ring up to `settled` (input seconds; an ended clip: up to its end)
        and finish those that `finished` says are complete."""
        decoded: dict[int, np.ndarray] = {}
        for object_id, clip in list(self._clips.items()):
            until = settled if math.isinf(clip.end) else clip.end
            for index, time, jpeg in self._ring:
                if clip.written < time <= until and time >= clip.start - 1e-6:
                    if index not in decoded:
                        decoded[index] = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    clip.sink.write(Frame(index, time, decoded[index]), None)
                    clip.written = time
            if finished(clip):
                del self._clips[object_id]
                clip.sink.close()
