"""The artifact store: weights and datasets as ``.safetensors`` files with a checked metadata header.

Every artifact carries, in the safetensors metadata (string to string), the header of DESIGN section 4:

- ``kind``: "model" or "dataset"
- ``arch``: model architecture (models) or source/construction name (datasets)
- ``paradigm``: learning paradigm that made it ("supervised", "adversarial", ...), or "" for datasets
- ``sources``: JSON list of the artifact paths it was made from
- ``params``: JSON of the params that made it, and ``params_digest``: their SHA-256 (first 16 hex digits)
- ``checksum``: ``sha256:<hex>`` over the tensors (:func:`tensors_checksum`), verified on every load
- ``advtui_version``: the version that wrote it

Any further string-valued (or JSON-serialisable) entries can ride along in ``extra``. Nothing in a header
may depend on when or where it was written (no timings, dates or hostnames): equal tensors and settings
give a byte-identical file, so a deterministic rerun leaves DVC's hash, and everything downstream, as it was.

Loading checks, each failing with one line that names the fix: the file is a safetensors artifact with an
advtui header of the expected kind (and architecture); it has a checksum (files written before checksums
existed must be rebuilt); its tensors match that checksum (garbage or altered bytes under an intact
header); and every floating-point tensor is finite (a diverged run's NaN weights never load).

Writes are atomic: a temp file in the same folder is renamed over the target, so a crash never leaves a
half-written artifact and never destroys the previous one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from advtui import __version__
from advtui.catalog import paths
from advtui.catalog.stages import stage_of
from advtui.files import atomic_path

KINDS = ("model", "dataset")
_HEADER_KEYS = ("kind", "arch", "paradigm", "sources", "params", "params_digest", "checksum", "advtui_version")
#: Largest header read: a bigger length field means the file is not a safetensors artifact.
_MAX_HEADER = 100_000_000


def params_digest(params: Any) -> str:
    """A short, stable digest of JSON-serialisable params (key order does not matter)."""
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tensors_checksum(tensors: Mapping[str, torch.Tensor]) -> str:
    """``sha256:<hex>`` over each tensor's name, dtype, shape and bytes, in sorted name order.

    The prefix keeps the value a string when a header is decoded (a digit-only digest would read as a number).
    """
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        digest.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        # the raw bytes, whatever the dtype (NumPy has no bfloat16), without a copy
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return f"sha256:{digest.hexdigest()}"


def _project_relative(path: Path) -> Path:
    """``path`` as the pipeline spells it: relative to the project folder, the working directory of every stage."""
    if path.is_absolute():
        try:
            return path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
    return path


def stage_for(path: str | os.PathLike) -> str | None:
    """The ``dvc repro`` target that writes artifact ``path``, or None when no pipeline stage does."""
    return stage_of(_project_relative(Path(path)))


def rebuild_hint(path: str | os.PathLike, *, restore: bool = True) -> str:
    """How to get a good ``path`` back: the ``dvc repro`` stage that writes it, or (``restore``) ``dvc checkout``."""
    stage = stage_for(path)
    if stage is None:
        return "rebuild it with the advtui stage or command that made it"
    relative = _project_relative(Path(path)).as_posix()
    checkout = f" (or restore the recorded copy with `dvc checkout {relative}`)" if restore else ""
    return f"rebuild it with `dvc repro {stage}`{checkout}"


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
    checksum: str = ""
    advtui_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def meta(self) -> dict[str, Any]:
        """The header as one dict (extra entries merged in)."""
        head = {k: getattr(self, k) for k in _HEADER_KEYS}
        return {**self.extra, **head}


def _copy_with_sorted_header(src: Path, dst: Path) -> None:
    """Copy safetensors file ``src`` to ``dst`` with its JSON header's keys sorted.

    safetensors writes the metadata from a hash map whose order changes from one process to the next, so
    the same artifact would hash differently on every run; sorted keys make equal contents equal bytes.
    """
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        size = int.from_bytes(fin.read(8), "little")
        header = json.loads(fin.read(size))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        text += b" " * (-len(text) % 8)  # safetensors pads the header so the tensor data starts 8-byte aligned
        fout.write(len(text).to_bytes(8, "little"))
        fout.write(text)
        shutil.copyfileobj(fin, fout, 1 << 20)


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
    """Write ``tensors`` with the metadata header (and their checksum) to ``path`` atomically; return the path.

    The file's bytes depend only on the arguments, never on when or where it is written.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {KINDS}, got {kind!r}")
    path = Path(path)
    params = params or {}
    # safetensors refuses non-contiguous or shared-storage tensors; clone so callers' tensors stay untouched.
    clean = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    header = {
        "kind": kind,
        "arch": arch,
        "paradigm": paradigm,
        "sources": json.dumps([str(s) for s in sources or []]),
        "params": json.dumps(params, sort_keys=True, default=str),
        "params_digest": params_digest(params),
        "checksum": tensors_checksum(clean),
        "advtui_version": __version__,
    }
    for key, value in (extra or {}).items():
        if key in header:
            raise ValueError(f"extra: key {key!r} clashes with the artifact header; rename it")
        header[key] = value if isinstance(value, str) else json.dumps(value, default=str)
    raw, tmp = atomic_path(path), atomic_path(path)
    try:
        save_file(clean, str(raw), metadata=header)
        _copy_with_sorted_header(raw, tmp)
        os.replace(tmp, path)
    finally:
        raw.unlink(missing_ok=True)
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
    if path.is_dir():
        inside = sorted(path.glob("*.safetensors"))
        example = f", e.g. {inside[0]}" if inside else ""
        raise ValueError(f"{path}: is a folder, not an artifact; pass one .safetensors file{example}")
    if not path.exists():
        stage = stage_for(path)
        how = f"`dvc repro {stage}`" if stage else "(see `advtui stage --help`)"
        raise FileNotFoundError(f"{path}: no such artifact; run the stage that makes it {how}")
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if size <= 0 or size > _MAX_HEADER or size + 8 > path.stat().st_size:
                raise ValueError
            header = json.loads(fh.read(size))
        if not isinstance(header, dict):
            raise ValueError
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror or err}); check its permissions") from err
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError is a ValueError
        if path.suffix == ".safetensors":
            raise ValueError(f"{path}: not a valid safetensors artifact (truncated or corrupt); {rebuild_hint(path)}") from err
        raise ValueError(
            f"{path}: not a valid safetensors artifact (a {path.suffix or 'suffix-less'} file); "
            f"pass a .safetensors file written by advtui (under {paths.DATA}/)"
        ) from err
    return header.get("__metadata__") or {}


def stored_version(path: str | os.PathLike) -> dict[str, str]:
    """Which version of an artifact ``path`` holds, from its header alone: the digest of the params that
    made it and the checksum of its tensors. An artifact made from another records this to notice when
    its source is rebuilt (other settings or other weights) and it is stale."""
    header = read_header(path)
    return {"params_digest": header.get("params_digest", ""), "checksum": header.get("checksum", "")}


def load_artifact(
    path: str | os.PathLike,
    kind: str,
    *,
    arch: str | None = None,
    device: str | torch.device = "cpu",
) -> Artifact:
    """Load an artifact, checking its header says ``kind`` (and ``arch`` when given) and its contents.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (one line, naming the fix) for a
    folder, a truncated, corrupt or foreign file, a file without an advtui header or without a checksum
    (written before checksums existed), a kind/architecture mismatch, tensors that do not match the
    checksum, or a floating-point tensor holding NaN or infinity.
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
    if "checksum" not in meta:
        raise ValueError(f"{path}: written before advtui checksummed artifacts (no checksum in its header); {rebuild_hint(path)}")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot be read ({err}); {rebuild_hint(path)}") from err
    if tensors_checksum(tensors) != meta["checksum"]:
        raise ValueError(f"{path}: tensors do not match the checksum in its header (damaged or altered); {rebuild_hint(path)}")
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(
                f"{path}: tensor {name!r} holds NaN or infinite values (the run that wrote it diverged); "
                f"{rebuild_hint(path, restore=False)}, with a lower learning rate if it diverges again"
            )
    decoded = {k: _decode(v) for k, v in meta.items()}
    return Artifact(
        tensors={name: t.to(device) for name, t in tensors.items()},
        kind=meta["kind"],
        arch=meta.get("arch", ""),
        paradigm=meta.get("paradigm", ""),
        sources=decoded.get("sources") or [],
        params=decoded.get("params") or {},
        params_digest=meta.get("params_digest", ""),
        checksum=meta["checksum"],
        advtui_version=meta.get("advtui_version", ""),
        extra={k: v for k, v in decoded.items() if k not in _HEADER_KEYS},
    )
