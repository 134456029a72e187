"""Open the truth file a user configured: the first registered reader that accepts the path.

The readers register in order (fast-mode folder, NAS-Bench-201 .pth, our CSV) when imported here.
`configured_truth` is what the CLI's --truth, $DARTBOARD_TRUTH and the form's field go through.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

from ..registries import TRUTH
from . import nats, nb201, table  # noqa: F401  (they register in TRUTH, in this order)
from .base import TruthError, TruthTable
from .proxy import AnalogProxy


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


ENV = "DARTBOARD_TRUTH"


def configured_truth(path: str | os.PathLike[str] | None = None,
                     environ: Mapping[str, str] = os.environ) -> TruthTable | None:
    """The table the user configured: `path` (--truth, the form's field), else $DARTBOARD_TRUTH;
    with neither, the labelled analog-nasbench proxy when it is installed, else None."""
    if path:
        return open_truth(path)
    if environ.get(ENV):
        try:
            return open_truth(environ[ENV])
        except TruthError as e:
            raise TruthError(f"{ENV}: {e}") from None
    if importlib.util.find_spec("analognasbench") is not None:
        return AnalogProxy()
    return None
