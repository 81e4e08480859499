"""Atomic file writes, without torch: a temp file in the target's folder renamed over the target, so a
reader (the app, DVC, a resumed stage) never sees half a file and a crash never destroys the previous one.
And the one rule for a resume file (training checkpoint, attack state) made from other inputs: discarded,
with one line saying so."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable
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


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Have ``write`` fill a temp file beside ``path``, then rename it over ``path`` (any format: the
    caller's ``write`` may be ``torch.save``, so this module needs no torch). A failed ``write`` leaves
    ``path`` as it was and no temp file behind."""
    path = Path(path)
    tmp = atomic_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as pretty JSON to ``path`` atomically (metrics and progress files)."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


#: What a run says when its resume file was made from other inputs or settings than its own.
STALE = "stale checkpoint from other inputs, starting over"


def discard_stale(path: str | os.PathLike) -> None:
    """Delete resume file ``path``, made from other inputs (content hashes) or settings than the run now
    starting, and say so on stderr in one line: the run starts over instead of mixing two inputs' work."""
    print(f"{path}: {STALE}", file=sys.stderr, flush=True)
    Path(path).unlink(missing_ok=True)
