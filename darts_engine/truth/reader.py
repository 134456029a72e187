"""Open the truth file a user configured: the first registered reader that accepts the path.

The readers register in order (fast-mode folder, NAS-Bench-201 .pth, our CSV) when imported here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..registries import TRUTH
from . import nats, nb201, table  # noqa: F401  (they register in TRUTH, in this order)
from .base import TruthError, TruthTable


def open_truth(path: str | os.PathLike[str]) -> TruthTable:
    """The registered reader that accepts `path`, opened; TruthError says what was expected."""
    path = Path(path)
    if not path.exists():
        raise TruthError(f"truth path {path} does not exist")
    for name in TRUTH:
        reader = TRUTH.get(name)
        if reader.accepts(path):
            return reader(path)
    expected = "; ".join(TRUTH.get(name).expects for name in TRUTH)
    raise TruthError(f"truth path {path} is not a known truth file: expected {expected}")
