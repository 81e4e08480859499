"""Atomic file writes, without torch: a temp file in the target's folder renamed over the target, so a
reader (the app, DVC, a resumed stage) never sees half a file and a crash never destroys the previous one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_path(path: Path) -> Path:
    """A fresh temp path beside ``path`` (same filesystem, so ``os.replace`` is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); artifacts are shared through DVC, so use the usual mode.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return Path(tmp)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (reports, and through :func:`write_json` metrics files)."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as pretty JSON to ``path`` atomically (metrics and progress files)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
