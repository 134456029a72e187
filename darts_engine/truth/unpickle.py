"""A pickle reader that builds plain data only.

The NATS-Bench files are bz2-compressed pickles (`nats_bench/api_utils.py`, `pickle_load`). A
pickle can name any importable callable and have it called while loading (`os.system` is one
`find_class` away), so we never hand a downloaded file to `pickle.load`: this unpickler resolves
only the builtin containers and scalars a results table is made of, and refuses everything else
before it is called.
"""

from __future__ import annotations

import bz2
import collections
import io
import pickle
from pathlib import Path
from typing import Any

from .base import TruthError

# (module, name) -> object: the only globals a plain results pickle needs (None, numbers and
# strings have their own opcodes; the types are here for pickles that name them).
ALLOWED = {
    ("builtins", "dict"): dict, ("builtins", "list"): list, ("builtins", "tuple"): tuple,
    ("builtins", "set"): set, ("builtins", "int"): int, ("builtins", "float"): float,
    ("builtins", "str"): str, ("builtins", "bool"): bool,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose globals are limited to `ALLOWED`; `source` names the file."""

    def __init__(self, file: io.BufferedIOBase, source: str,
                 stand_ins: dict[tuple[str, str], type] | None = None) -> None:
        super().__init__(file)
        self.source = source
        self.allowed = {**ALLOWED, **(stand_ins or {})}  # stand_ins: inert classes we own

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise TruthError(
                f"{self.source}: refusing to load class {module}.{name}; a benchmark table may "
                "hold only dicts, lists, tuples, sets, numbers, strings and None") from None


def load_plain(data: bytes, source: str,
               stand_ins: dict[tuple[str, str], type] | None = None) -> Any:
    """Unpickle `data` with `RestrictedUnpickler`; broken data raises TruthError naming `source`."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), source, stand_ins).load()
    except TruthError:
        raise
    except Exception as e:  # truncated or not a pickle at all
        raise TruthError(f"{source}: not a readable pickle ({type(e).__name__}: {e}); expected "
                         "a complete NATS-Bench .pickle.pbz2 file") from None


def load_pbz2(path: Path) -> Any:
    """Read one bz2-compressed pickle (NATS-Bench's `.pickle.pbz2`) as plain data."""
    try:
        data = bz2.decompress(path.read_bytes())
    except FileNotFoundError:
        raise TruthError(f"{path}: file not found") from None
    except (OSError, EOFError, ValueError) as e:  # bz2 raises OSError/EOFError on bad data
        raise TruthError(f"{path}: not a complete bz2 file ({e}); expected a NATS-Bench "
                         ".pickle.pbz2 file") from None
    return load_plain(data, str(path))
