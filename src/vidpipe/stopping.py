"""Stopping on Ctrl-C or SIGTERM between frames, never in the middle of one.

A stop signal raises KeyboardInterrupt, which the pipeline turns into finished outputs. Raised in the middle
of writing a frame, it could leave that frame in the video but not in the tables; inside `frame_boundary()`
the signal is held and raised when the frame is complete.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_held = False  # a signal arrived inside a frame_boundary() block
_holding = False


def install() -> None:
    """Route SIGINT and SIGTERM through this module (main thread only, as Python requires)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_signal)
        signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum, frame) -> None:
    global _held
    if _holding:
        _held = True
        return
    raise KeyboardInterrupt


@contextmanager
def frame_boundary() -> Iterator[None]:
    """Hold stop signals until the block is done, then act on them."""
    global _holding, _held
    outer = _holding
    _holding = True
    try:
        yield
    finally:
        _holding = outer
        if _held and not outer:
            _held = False
            raise KeyboardInterrupt
