"""The two kinds of failure a user can meet, so the CLI can map each to one line and an exit code."""


class VidpipeError(Exception):
    """Something went wrong while processing (exit code 1)."""


class InputError(VidpipeError):
    """What the user asked for cannot be used: a missing file, an unknown class, a bad model (exit code 2)."""
