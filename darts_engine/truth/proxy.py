"""The offline proxy: the `analog-nasbench` package's CIFAR-10 baseline accuracies.

It ships `analognasbench/data.anb`, a pickle of {op indices (6,): Architecture} for all 15,625
cells, with `baseline_accuracy` from its own training recipe: not NAS-Bench-201's numbers, so an
entry says "AnalogNAS-Bench baseline, CIFAR-10, its own recipe". Keys are in NASLib's order
(`naslib/search_spaces/nasbench201/conversions.py`): edges (1,2),(1,3),(1,4),(2,3),(2,4),(3,4)
in 1-based nodes, i.e. 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2, and ops skip, none, conv3x3,
conv1x1, avgpool. We read the file with the restricted unpickler, its two classes replaced by
an inert record, so none of the package's code runs.
"""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

from .base import TruthEntry, TruthError, TruthTable
from .unpickle import load_plain

PROXY = "AnalogNAS-Bench baseline, CIFAR-10, its own recipe"
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))  # (node, input), NB201 numbering


class _Record:
    """Stands in for analognasbench.data.Architecture / DriftMeasurement: attributes only."""


def arch_from_naslib(key: tuple[int, ...]) -> str:
    """NB201 arch string of a NASLib op-index tuple."""
    ops = {edge: NASLIB_OPS[i] for edge, i in zip(NASLIB_EDGES, key, strict=True)}
    return "+".join("|" + "|".join(f"{ops[(node, j)]}~{j}" for j in range(node)) + "|"
                    for node in (1, 2, 3))


def proxy_file() -> Path:
    spec = importlib.util.find_spec("analognasbench")  # locates it without running it
    if spec is None or not spec.submodule_search_locations:
        raise TruthError("the offline proxy needs the analog-nasbench package: "
                         "pip install analog-nasbench")
    return Path(next(iter(spec.submodule_search_locations))) / "data.anb"


class AnalogProxy(TruthTable):
    label = PROXY

    def __init__(self, path: Path | None = None) -> None:
        path = path or proxy_file()
        try:
            data = path.read_bytes()
        except OSError as e:
            raise TruthError(f"{path}: cannot read the analog-nasbench table ({e})") from None
        stand_ins = {("analognasbench.data", name): _Record
                     for name in ("Architecture", "DriftMeasurement")}
        table = load_plain(data, str(path), stand_ins)
        self._acc = {}
        for key in itertools.product(range(5), repeat=6):
            record = table.get(key) if isinstance(table, dict) else None
            if record is None or not hasattr(record, "baseline_accuracy"):
                raise TruthError(f"{path}: no baseline_accuracy for cell {key}; expected all "
                                 "15,625 cells of analog-nasbench 0.1.x")
            self._acc[arch_from_naslib(key)] = float(record.baseline_accuracy)
        super().__init__(path, {arch: i for i, arch in enumerate(self._acc)})

    def _entry(self, arch: str) -> TruthEntry:
        return TruthEntry(arch, {"cifar10": self._acc[arch]}, source=PROXY)
