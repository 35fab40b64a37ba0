"""The two kinds of failure a user can meet, so the CLI can map each to one line and an exit code."""

import importlib.util


class VidpipeError(Exception):
    """Something went wrong while processing (exit code 1)."""


class InputError(VidpipeError):
    """What the user asked for cannot be used: a missing file, an unknown class, a bad model (exit code 2)."""


def missing_modules(*names: str) -> list[str]:
    """The optional packages among `names` that are not installed (checked without importing them)."""
    return [name for name in names if importlib.util.find_spec(name) is None]
