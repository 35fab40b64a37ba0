"""Measuring vidpipe: tracking metrics on MOTChallenge sequences (`mot`), detection AP on labelled images (`det`).

The metric libraries (TrackEval, py-motmetrics, pycocotools) are the `eval` extra and are imported only here.
"""

from __future__ import annotations

from ..errors import InputError, missing_modules

EXTRA = "pip install 'vidpipe[eval]'"


def require(*modules: str) -> None:
    """Fail with one line naming the extra when a metric library is missing."""
    missing = missing_modules(*modules)
    if missing:
        raise InputError(f"vidpipe eval needs {', '.join(missing)}: {EXTRA}")
