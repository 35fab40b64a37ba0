"""Measuring vidpipe: tracking metrics on MOTChallenge sequences (`mot`), detection AP on labelled images (`det`).

The metric libraries (TrackEval, py-motmetrics, pycocotools) are the `eval` extra and are imported only here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError, missing_modules

EXTRA = "pip install 'vidpipe[eval]'"


def require(*modules: str) -> None:
    """Fail with one line naming the extra when a metric library is missing."""
    missing = missing_modules(*modules)
    if missing:
        raise InputError(f"vidpipe eval needs {', '.join(missing)}: {EXTRA}")


def read_numbers(path: Path, what: str, delimiter: str | None = None, min_columns: int = 1) -> np.ndarray:
    """A text table of numbers, one row per line (none: shape (0, min_columns)). Every value must be a finite
    number and every row as long as the first: a line that is not is one error naming the file and the line."""
    try:
        with warnings.catch_warnings():  # an empty file is no error here: it has no rows
            warnings.simplefilter("ignore", UserWarning)
            rows = np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=np.float64)
        if rows.size == 0:
            return np.zeros((0, min_columns))
        if rows.shape[1] >= min_columns and np.isfinite(rows).all():
            return rows
    except (ValueError, UnicodeDecodeError):
        pass  # found again below, with its line number
    width = None
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(delimiter) if delimiter else line.split()
        try:
            values = np.asarray([float(v) for v in fields])
        except ValueError:
            values = None
        width = width or len(fields)
        if values is None or not np.isfinite(values).all() or len(values) != width or width < min_columns:
            raise InputError(f"{path}, line {number}: not {what}: {line.strip()[:80]!r}")
    raise InputError(f"{path} is not {what}")  # unreachable for a file loadtxt refused; kept for odd encodings


def line_of(path: Path, row: int) -> int:
    """The 1-based line number of the `row`th (0-based) non-empty line of a text table."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [number for number, line in enumerate(lines, start=1) if line.strip()][row]
