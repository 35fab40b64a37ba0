"""Stopping on Ctrl-C, SIGTERM or SIGHUP between frames, never in the middle of one, and never half-way
through finishing the outputs.

While frames flow, a stop signal raises KeyboardInterrupt, which the pipeline turns into finished outputs.
Raised in the middle of writing a frame, it could leave that frame in the video but not in the tables;
inside `frame_boundary()` the signal is held and raised when the frame is complete.

Once the frames have ended (or the first stop ended them), the run is *finishing*: closing the outputs and
writing the summary. A stop that lands then raises nothing: the first one lets the finishing complete, and
the next one cuts it short, which only the parts inside `cuttable()` obey (encoding the rest of the video,
the report). The tables and `summary.json` are always finished, and the summary names what was cut.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("vidpipe")
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")  # SIGHUP: the terminal was closed


class _State:
    holding = False  # inside a frame_boundary() block
    held = False  # a signal arrived inside it
    finishing = False  # the frames are over; the outputs are being closed
    stops = 0  # stops received since the run began finishing (counting the one that ended the frames)
    stops_before = 0  # of which the one that ended the frames
    cuttable = False  # inside a part of the finishing that a second stop cuts short
    finished = False  # a run in this process has finished its outputs
    raised: int | None = None  # the last signal raised as KeyboardInterrupt
    received = False  # a stop signal arrived in this process


_state = _State()


def install() -> None:
    """Route the stop signals through this module (main thread only, as Python requires)."""
    if threading.current_thread() is threading.main_thread():
        for name in SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _on_signal)
        sys.unraisablehook = _unraisable


def _unraisable(unraisable) -> None:
    """A stop that lands inside a finalizer (a weakref callback, a generator closed by the garbage collector)
    cannot be raised there: Python would print "Exception ignored ... KeyboardInterrupt" and carry on as if
    nothing had happened. Deliver it again a moment later, outside, instead."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _state.raised is not None:
        threading.Timer(0.02, os.kill, (os.getpid(), _state.raised)).start()
        return
    sys.__unraisablehook__(unraisable)


def _on_signal(signum, frame) -> None:
    _state.received = True
    if _state.finishing:
        _state.stops += 1
        if _state.stops == 1:
            log.warning("stop received while finishing: every output is being finished first (stop again to "
                        "cut the video and the report short)")
        elif _state.stops == 2:
            log.warning("stopping again: cutting the finishing short (the tables and summary.json are still "
                        "written; the summary names what was left out)")
            if _state.cuttable:
                raise KeyboardInterrupt
        return
    if _state.holding:
        _state.held = True
        return
    _state.raised = signum
    raise KeyboardInterrupt


@contextmanager
def frame_boundary() -> Iterator[None]:
    """Hold stop signals until the block is done, then act on them."""
    outer = _state.holding
    _state.holding = True
    try:
        yield
    finally:
        _state.holding = outer
        if _state.held and not outer:
            _state.held = False
            raise KeyboardInterrupt


def begin_finishing(stopped: bool) -> None:
    """The frames are over (`stopped`: a stop ended them): from now on a stop never raises until `end_finishing`."""
    _state.finishing, _state.held = True, False
    _state.stops = _state.stops_before = int(stopped)


def end_finishing(finished: bool) -> bool:
    """Back to normal (`finished`: the outputs were finished, not discarded); whether a stop arrived while
    finishing (one the caller did not already know of)."""
    received = _state.finishing and _state.stops > _state.stops_before
    _state.finished = _state.finished or finished
    _state.finishing, _state.stops, _state.cuttable = False, 0, False
    return received


def stop_received() -> bool:
    """Whether a stop signal has arrived in this process (an error that follows may be how a library took it)."""
    return _state.received


def outputs_finished() -> bool:
    """Whether a run in this process got as far as finishing its outputs (a later stop found nothing to cut)."""
    return _state.finished


def cut_short() -> bool:
    """A second stop asked to leave out what is left of the optional finishing work."""
    return _state.finishing and _state.stops >= 2


@contextmanager
def cuttable() -> Iterator[None]:
    """Finishing work a second stop may interrupt (raising KeyboardInterrupt inside the block)."""
    if cut_short():
        raise KeyboardInterrupt
    _state.cuttable = True
    try:
        yield
    finally:
        _state.cuttable = False
