"""Files that several processes may write or read at once, or that a kill may interrupt."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a reader or a kill never sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_new_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it exists, atomically: processes writing or reading it at once (vector
    envs building one model, harness drivers on one grid) never see a partial file."""
    if not path.exists():
        write_atomically(path, text)
