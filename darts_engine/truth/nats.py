"""Reader for the NATS-Bench topology fast-mode folder (`NATS-tss-v1_0-3ffb9-simple`).

Layout (`nats_bench/api_topology.py`, `NATStopology.__init__` and `api_utils.py`, `reload`):
`meta.pickle.pbz2` holds {"meta_archs": [15,625 arch strings]}, the list index is the file name
`NNNNNN.pickle.pbz2` (or unpadded), each {hp: ArchResults state dict} with hp "12" or "200".
The API's `get_more_info` defaults to hp="12"; we always read "200".
"""

from __future__ import annotations

from pathlib import Path

from ..registries import TRUTH
from .base import TruthEntry, TruthError, TruthTable
from .results import entry_from_results
from .unpickle import load_pbz2

META = "meta.pickle.pbz2"
HP = "200"


class NatsFastFolder(TruthTable):
    label = "NATS-Bench topology fast-mode folder"
    expects = f"a NATS-Bench topology fast-mode folder (NATS-tss-v1_0-3ffb9-simple) with {META}"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.is_dir()

    def __init__(self, path: Path) -> None:
        if not (path / META).is_file():
            raise TruthError(f"{path} has no {META}: expected {self.expects}")
        meta = load_pbz2(path / META)
        archs = meta.get("meta_archs") if isinstance(meta, dict) else None
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise TruthError(f"{path / META}: expected a dict with 'meta_archs', a list of arch "
                             "strings")
        super().__init__(path, {arch: i for i, arch in enumerate(archs)})
        self._cache: dict[str, TruthEntry] = {}

    def file(self, arch: str) -> Path:
        i = self.index[arch]
        plain = self.path / f"{i}.pickle.pbz2"  # api_utils.reload accepts both names
        return plain if plain.is_file() else self.path / f"{i:06d}.pickle.pbz2"

    def archs(self):
        return (arch for arch in self.index if self.file(arch).is_file())

    def _entry(self, arch: str) -> TruthEntry:
        if arch not in self._cache:
            path = self.file(arch)
            data = load_pbz2(path)
            if not isinstance(data, dict) or HP not in data:
                found = sorted(data) if isinstance(data, dict) else type(data).__name__
                raise TruthError(f"{path}: no 200-epoch results (hp '{HP}'); found {found}")
            self._cache[arch] = entry_from_results(arch, data[HP], str(path))
        return self._cache[arch]


TRUTH.register("nats-tss-fast", NatsFastFolder, NatsFastFolder.expects)
