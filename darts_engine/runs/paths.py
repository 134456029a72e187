"""Roots for user-supplied paths: nothing typed into the UI reaches outside them.

The dashboard resolves every dataset folder against the data root (`DARTBOARD_DATA`, default
`./data`) and every export folder against the run store's home (`DARTBOARD_HOME`, default
`./runs`). Symlinks are resolved before the check, so a link pointing out of the root is
refused like `../` or an absolute path elsewhere. Run names are data and never become paths.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import ConfigError


def data_root() -> Path:
    return Path(os.environ.get("DARTBOARD_DATA", "./data")).resolve()


def resolve_inside(root: str | Path, user_path: str | Path, field: str) -> Path:
    """`user_path` (relative to `root`, or absolute) resolved; ConfigError if it leaves `root`."""
    base = Path(root).resolve()
    text = str(user_path).strip()
    if not text or "\x00" in text:
        raise ConfigError(f"{field} must be a folder name inside {base}, got {text!r}",
                          field=field)
    candidate = Path(text)
    target = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if target != base and base not in target.parents:
        raise ConfigError(f"{field} must stay inside {base}; {text!r} resolves to {target}",
                          field=field)
    return target
