"""Writing files so that an interruption or a full disk never leaves half of one behind."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write(path: Path, write: Callable[[BinaryIO], object], kept: str = "") -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, then rename it over ``path`` (``os.replace`` is atomic:
    a reader sees the old file or the new one, never half). On any error the temporary file is removed and ``path`` is
    left as it was; a full disk is reported as such, with ``kept``: what ``path`` holds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            kept = kept or (f"{path} is intact, as it was." if path.exists() else f"Nothing was written to {path}.")
            message = f"The disk is full: {path} was not written. {kept} Free some space and try again."
            raise OSError(errno.ENOSPC, message) from e
        raise
