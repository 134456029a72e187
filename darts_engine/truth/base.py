"""Ground-truth tables for the NAS-Bench-201 cell space: one entry per arch string.

A reader opens one kind of file (NATS-Bench fast-mode folder, NAS-Bench-201 .pth, our CSV) and
answers `query(arch)` with the cell's test (and valid) accuracies and the protocol they come from.
Readers register in `TRUTH`; `reader.open_truth(path)` picks the one that accepts the path.
Always keyed by arch string (Dong & Yang 2020, NAS-Bench-201 §2), never by index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..model.genotype import NB201_OPS

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NB201 = "NAS-Bench-201"
ARCH_FORMAT = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"


class TruthError(ValueError):
    """A truth file or query that cannot be answered; the message names the file or field."""


@dataclass(frozen=True)
class TruthEntry:
    """One cell's ground truth. Accuracies in percent, keyed by dataset (DATASETS)."""

    arch: str
    test: Mapping[str, float]
    valid: Mapping[str, float] = field(default_factory=dict)
    seeds: Mapping[str, int] = field(default_factory=dict)  # seeds averaged, per dataset
    source: str = NB201

    @property
    def protocol(self) -> str:
        if self.source != NB201:
            return self.source
        counts = sorted(set(self.seeds.values()))
        n = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        return f"{NB201}, 200 epochs, mean of {n} seeds"


def check_arch(arch: str) -> str:
    """`arch` if it is an NB201 arch string, else TruthError naming the field and the format."""
    groups = arch.split("+") if isinstance(arch, str) else []
    ok = len(groups) == 3
    for node, group in enumerate(groups, start=1):
        parts = group.split("|")
        ok = ok and len(parts) == node + 2 and parts[0] == parts[-1] == ""
        for j, piece in enumerate(parts[1:-1]):
            op, _, src = piece.partition("~")
            ok = ok and op in NB201_OPS and src == str(j)
    if not ok:
        raise TruthError(f"arch {arch!r} is not an NB201 arch string: expected {ARCH_FORMAT} "
                         f"with ops from {', '.join(NB201_OPS)}")
    return arch


class TruthTable:
    """Base of the readers: `label` names the file kind, `path` the file, `index` the archs."""

    label = ""
    expects = ""  # what `accepts` looks for, for the error when no reader fits

    def __init__(self, path: Path, index: Mapping[str, int]) -> None:
        self.path = path
        self.index = index  # arch string -> position in the file

    @classmethod
    def accepts(cls, path: Path) -> bool:
        raise NotImplementedError

    def archs(self) -> Iterator[str]:
        """The arch strings this table has results for, in the file's order."""
        return iter(self.index)

    def query(self, arch: str) -> TruthEntry:
        check_arch(arch)
        if arch not in self.index:
            raise TruthError(f"arch {arch!r} is not in {self.path} ({self.label})")
        return self._entry(arch)

    def _entry(self, arch: str) -> TruthEntry:
        raise NotImplementedError

    def __contains__(self, arch: object) -> bool:
        return arch in self.index
