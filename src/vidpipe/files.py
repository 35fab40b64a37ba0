"""Files that appear whole or not at all: written under a hidden temporary name, renamed into place when complete.

A crash, a kill or a full disk never leaves a file under its final name that is not finished. Every
output of vidpipe (videos, tables, summaries, corpus markers, cached exports) is written this way.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError, VidpipeError


class PartialFile:
    """A file written under `.<name>.partial` and renamed to `<name>` by `commit()`.

    The partial name starts with a dot, so dataset readers (pyarrow, pandas, polars, DuckDB globs) skip it:
    a table being written in a dataset folder never breaks a reader. It is fixed, so a run that is watched
    (or killed) shows which output it was writing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial.unlink(missing_ok=True)

    def commit(self) -> None:
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)

    @contextlib.contextmanager
    def rewriting(self) -> Iterator[Path]:
        """A hidden file to write the partial's new content into (a column known only at the end): it replaces
        the partial when the block ends, and is removed where the block fails."""
        redone = self.partial.with_name(f"{self.partial.name}.rewritten")
        try:
            yield redone
            os.replace(redone, self.partial)
        finally:
            redone.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` to `path` whole: through a hidden temporary file of its own in the same folder, so two
    processes writing the same file (a shared cache) each publish a complete copy."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode() if isinstance(data, str) else data)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide outputs from the other users of a shared folder
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold `folder` for one run: a second vidpipe writing into it at the same time is refused (exit 2), so
    two runs never mix their outputs. The lock is the operating system's (flock on the folder itself): it
    leaves no file behind, and a killed run holds none."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise VidpipeError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{folder} is being written by another vidpipe run; wait for it, or use another "
                             f"--out") from None
        yield
    finally:
        os.close(handle)


def safe_name(name: str) -> str:
    """`name` with every character but letters, digits, `-` and `_` made `-`: safe in a file's name and a URL."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)
