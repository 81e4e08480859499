"""YAML parsed through libyaml's C loader where PyYAML was built with it (pure Python otherwise), for the files
the app reads again on every refresh: smoke's dvc.yaml (70 KB) parses in 13 ms instead of 180, its dvc.lock
(780 KB, every stage's code closure) in 0.5 s instead of 2.5."""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """What ``yaml.safe_load(text)`` returns, faster."""
    return yaml.load(text, Loader=_LOADER)
