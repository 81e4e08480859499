"""The artifact store: weights and datasets as ``.safetensors`` files with a checked metadata header.

Every artifact carries, in the safetensors metadata (string to string), the header of DESIGN section 4:

- ``kind``: "model" or "dataset"
- ``arch``: model architecture (models) or source/construction name (datasets)
- ``paradigm``: learning paradigm that made it ("supervised", "adversarial", ...), or "" for datasets
- ``sources``: JSON list of the artifact paths it was made from
- ``params``: JSON of the params that made it, and ``params_digest``: their SHA-256 (first 16 hex digits)
- ``advtui_version``: the version that wrote it

Any further string-valued (or JSON-serialisable) entries can ride along in ``extra``.
Writes are atomic: a temp file in the same folder is renamed over the target, so a crash never leaves a
half-written artifact and never destroys the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from advtui import __version__
from advtui.files import atomic_path

KINDS = ("model", "dataset")
_HEADER_KEYS = ("kind", "arch", "paradigm", "sources", "params", "params_digest", "advtui_version")


def params_digest(params: Any) -> str:
    """A short, stable digest of JSON-serialisable params (key order does not matter)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass
class Artifact:
    """A loaded artifact: its tensors and its decoded metadata header."""

    tensors: dict[str, torch.Tensor]
    kind: str
    arch: str = ""
    paradigm: str = ""
    sources: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    params_digest: str = ""
    advtui_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        """The header as one dict (extra entries merged in)."""
        head = {k: getattr(self, k) for k in _HEADER_KEYS}
        return {**self.extra, **head}


def save_artifact(
    path: str | os.PathLike,
    tensors: dict[str, torch.Tensor],
    *,
    kind: str,
    arch: str = "",
    paradigm: str = "",
    sources: list[str] | None = None,
    params: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``tensors`` with the metadata header to ``path`` atomically and return the path."""
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    params = params or {}
    header = {
        "kind": kind,
        "arch": arch,
        "paradigm": paradigm,
        "sources": json.dumps([str(s) for s in sources or []]),
        "params": json.dumps(params, sort_keys=True, default=str),
        "params_digest": params_digest(params),
        "advtui_version": __version__,
    }
    for key, value in (extra or {}).items():
        if key in header:
            raise ValueError(f"extra: key {key!r} clashes with the artifact header; rename it")
        header[key] = value if isinstance(value, str) else json.dumps(value, default=str)
    # safetensors refuses non-contiguous or shared-storage tensors; clone so callers' tensors stay untouched.
    clean = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    tmp = atomic_path(path)
    try:
        save_file(clean, str(tmp), metadata=header)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _decode(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def read_header(path: str | os.PathLike) -> dict[str, str]:
    """Read only the metadata header of a safetensors file (cheap: no tensor data is read)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such artifact; run the stage that makes it (see `advtui stage --help`)")
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if size <= 0 or size > 100_000_000 or size + 8 > path.stat().st_size:
                raise ValueError
            header = json.loads(fh.read(size))
    except (ValueError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a valid safetensors artifact (truncated or corrupt); delete it and rerun its stage") from err
    return header.get("__metadata__") or {}


def load_artifact(
    path: str | os.PathLike,
    kind: str,
    *,
    arch: str | None = None,
    device: str | torch.device = "cpu",
) -> Artifact:
    """Load an artifact, checking its header says ``kind`` (and ``arch`` when given).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (one line, naming the fix) for a
    truncated or corrupt file, a file without an advtui header, or a kind/architecture mismatch.
    """
    path = Path(path)
    meta = read_header(path)
    if "kind" not in meta:
        raise ValueError(f"{path}: has no advtui header (not written by advtui); rebuild it with its advtui stage")
    if meta["kind"] != kind:
        raise ValueError(f"{path}: is a {meta['kind']} artifact, expected a {kind}; check the path you passed")
    if arch is not None and meta.get("arch") != arch:
        raise ValueError(
            f"{path}: holds architecture {meta.get('arch')!r}, expected {arch!r}; pass the matching --arch or retrain"
        )
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be read ({err}); delete it and rerun its stage") from err
    decoded = {k: _decode(v) for k, v in meta.items()}
    return Artifact(
        tensors=tensors,
        kind=meta["kind"],
        arch=meta.get("arch", ""),
        paradigm=meta.get("paradigm", ""),
        sources=decoded.get("sources") or [],
        params=decoded.get("params") or {},
        params_digest=meta.get("params_digest", ""),
        advtui_version=meta.get("advtui_version", ""),
        extra={k: v for k, v in decoded.items() if k not in _HEADER_KEYS},
    )
