"""Atomic, safe-to-load search checkpoints.

A checkpoint is written to a temp file in the same folder, fsynced and renamed over the old
one, so a crash mid-save leaves the previous checkpoint intact. Loading uses
`torch.load(weights_only=True)`, which never runs code from the file; the price is that a state
may hold only tensors, dicts, lists, tuples, ints, floats, strings, bools and None. Model and
optimizer `state_dict()`s and `torch.get_rng_state()` (a uint8 tensor) qualify; NumPy arrays and
NumPy scalars do not (convert them: `torch.from_numpy(a)`, `float(x)`). `save_checkpoint` checks
this up front, so a state that could not be loaded back fails at save time, not at resume.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

# Exact types: subclasses such as np.float64 (a float) pickle as their own class, which
# weights_only refuses to load.
_SCALARS = (int, float, str, bool, type(None))
_SEQUENCES = (list, tuple, torch.Size)
_MAPPINGS = (dict, OrderedDict)  # state_dict() returns an OrderedDict


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; the message names the file and the fix."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` to `path` atomically (temp file, fsync, rename)."""
    path = Path(path)
    _check_state(state, "state")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`; tensors land on `map_location`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises many types for a bad file (zip, pickle, EOF, ...)
        raise CheckpointError(
            f"checkpoint {path} cannot be loaded: it is corrupt, or holds objects other than "
            f"tensors and plain Python data. Delete it to start the run over. ({e})") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a dict")
    return state


def _check_state(obj: Any, where: str) -> None:
    """Raise CheckpointError naming the first value weights_only loading would refuse."""
    if isinstance(obj, torch.Tensor) or type(obj) in _SCALARS:
        return
    if type(obj) in _SEQUENCES:
        for i, item in enumerate(obj):
            _check_state(item, f"{where}[{i}]")
        return
    if type(obj) in _MAPPINGS:
        for key, value in obj.items():
            if type(key) not in _SCALARS:
                raise CheckpointError(f"{where} has a key of type {type(key).__name__}; "
                                      "checkpoint keys must be strings or numbers")
            _check_state(value, f"{where}[{key!r}]")
        return
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; checkpoints hold only "
        "tensors, dicts, lists, tuples, ints, floats, strings, bools and None (convert NumPy "
        "with torch.from_numpy or float())")


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX; no-op elsewhere).
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
