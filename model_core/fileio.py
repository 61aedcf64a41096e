"""Atomic file replacement, and a check that a folder takes new files, shared by everything in mdn
that writes results or weights."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# For tests only: ``NAME`` or ``NAME:SECONDS`` makes the atomic write of a file called NAME
# pause (60 s by default) once its temporary file holds the data, so that a test can send a
# real signal in the middle of a write.
PAUSE_ENV = "MDN_TEST_PAUSE_WRITING"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_replace(target: str | Path, write: Callable[[str], object]) -> Path:
    """Have ``write(tmp_path)`` fill a temporary sibling of ``target``, then move it into place.

    Readers see the old file or the new one, never a partial one; on any error the
    temporary file is removed and the error re-raised. The result gets the ordinary
    permissions of a new file (0666 less the umask), not ``mkstemp``'s 0600.
    """
    target = Path(target)
    tmp: str | None = None
    try:  # from the start: an interrupt right after mkstemp must not leave its file
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        write(tmp)
        pause_if_testing(target)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return target


def pause_if_testing(target: str | Path) -> None:
    """Sleep where :data:`PAUSE_ENV` names ``target`` (see there); else return at once."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, sep, seconds = spec.rpartition(":")
    if not sep:
        name, seconds = spec, "60"
    if name == Path(target).name:
        time.sleep(float(seconds))


def check_writable_folder(folder: str | Path, *, create: bool = False) -> None:
    """Fail now, not after hours of work, if no file can be created in ``folder``.

    Args:
        folder: Where outputs will be written.
        create: Create the folder (and its parents) first if it is missing.

    Raises:
        OSError: If the folder cannot be created or a temporary file cannot be created there;
            the message names the folder.
    """
    try:
        if create:
            Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot write to {folder}: {exc.strerror or exc}") from exc


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` atomically (flushed to disk before the rename)."""
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    return atomic_replace(target, write)
