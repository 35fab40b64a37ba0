"""vidpipe: video object detection and tracking, from frames to labeled video and tables.

    >>> import vidpipe
    >>> result = vidpipe.run("sample_videos/parking-lot-cars.mp4", classes=["car"])
    >>> result.outputs["detections"]
    >>> for camera, frame, detections in vidpipe.live_many(["door=rtsp://...", "yard=rtsp://..."]): ...

The public names are imported on first use, so `import vidpipe` (and `vidpipe --help`) stays fast.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vidpipe")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_EXPORTS = {
    "Frame": "frames",
    "VideoInfo": "frames",
    "Detections": "detections",
    "box_iou": "detections",
    "Sampling": "sources",
    "open_source": "sources",
    "Detector": "detectors",
    "load_detector": "detectors",
    "DetectorSettings": "detectors",
    "Tracker": "tracking",
    "ByteTrack": "tracking",
    "create_tracker": "tracking",
    "Annotator": "annotate",
    "LineCounter": "analytics",
    "Zone": "analytics",
    "Pipeline": "pipeline",
    "PipelineConfig": "config",
    "LiveOptions": "live_options",
    "live_many": "cameras",
    "CameraEntry": "config",
    "RunSession": "session",
    "RunResult": "session",
    "RunSummary": "summary",
    "run": "pipeline",
    "VidpipeError": "errors",
    "InputError": "errors",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'vidpipe' has no attribute {name!r}")
