"""Build typed, validated config dataclasses from plain YAML mappings.

Each layer owns the frozen dataclasses of its own settings and checks their *values* in
``__post_init__``; this module checks *shape and types* (unknown keys, wrong types, missing sections)
and prefixes every error with the dotted key path, so a bad ``params.yaml`` fails with one line that
names the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class ParamsError(ValueError):
    """A params file that cannot be turned into a valid config; the message is one line naming the fix."""


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Return ``value`` as type ``tp`` or raise ParamsError naming ``path``."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return _convert(value, option, path)
            except ParamsError as err:
                errors.append(err)
        raise ParamsError(f"{path}: expected {_type_name(tp)}, got {value!r}; fix the value in params.yaml")
    if tp is type(None):
        if value is None:
            return None
        raise ParamsError(f"{path}: expected null, got {value!r}")
    if origin is Literal:
        if value in get_args(tp):
            return value
        hint = "; quote it: YAML reads a bare on/off/yes/no as true/false" if isinstance(value, bool) else ""
        raise ParamsError(f"{path}: must be one of {', '.join(map(repr, get_args(tp)))}, got {value!r}{hint}")
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{path}: expected a list, got {value!r}")
        item_tp = get_args(tp)[0]
        return tuple(_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is float:
        # YAML reads "1e-3" without a dot as a string and "8" as an int; accept both as floats.
        if isinstance(value, bool):
            raise ParamsError(f"{path}: expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ParamsError(f"{path}: expected a number, got {value!r}; fix the value in params.yaml")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ParamsError(f"{path}: expected an integer, got {value!r}; fix the value in params.yaml")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ParamsError(f"{path}: expected true or false, got {value!r}; fix the value in params.yaml")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ParamsError(f"{path}: expected a string, got {value!r}; fix the value in params.yaml")
    raise TypeError(f"{path}: unsupported config field type {tp!r}")  # a programming error, not a user one


def build(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass ``cls`` from mapping ``data``; missing keys take the field defaults."""
    where = path or "params"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected a mapping of keys, got {data!r}; fix the indentation in params.yaml")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = get_type_hints(cls)
    for key in data:
        if key not in fields:
            near = difflib.get_close_matches(str(key), fields, n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"known keys: {', '.join(fields)}"
            raise ParamsError(f"{path + '.' if path else ''}{key}: unknown key; {hint}")
    kwargs = {}
    for name in fields:
        sub = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], sub)
        elif fields[name].default is dataclasses.MISSING and fields[name].default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = build(hints[name], {}, sub)
            else:
                raise ParamsError(f"{sub}: missing; add it to params.yaml")
    try:
        return cls(**kwargs)
    except ValueError as err:
        # Value checks in __post_init__ say "<field>: <problem>; <fix>": prefix the section's path.
        raise ParamsError(f"{path + '.' if path else ''}{err}") from None

