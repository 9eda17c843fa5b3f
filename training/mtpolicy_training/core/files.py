"""Files that several processes may write or read at once, or that a kill may interrupt."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str | bytes) -> None:
    """Write ``text`` (or bytes) to ``path`` through a temporary file: a reader or a kill never sees a partial file,
    and a failed write (a full disk) leaves ``path`` as it was and no temporary file, and raises its OSError with
    ``filename`` set to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            e.filename = str(path)
        raise


def write_failure(path: Path, error: OSError) -> str:
    """One line on a failed write of ``path``: the error and the space left on its file system."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:.1f} MB free"
    except OSError:
        free = "free space unknown"
    return f"cannot write {path}: {error.strerror or error} ({free} on {path.parent})"


def write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it exists, atomically: processes writing or reading it at once (vector
    envs building one model, harness drivers on one grid) never see a partial file."""
    if not path.exists():
        write_atomically(path, text)
