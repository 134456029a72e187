"""Reader for the NAS-Bench-201 v1.1 file (`NAS-Bench-201-v1_1-096897.pth`).

Layout (`nas_201_api/api_201.py`, `NASBench201API.__init__`): a torch.save'd dict with
`meta_archs` (arch strings; the index is the key of `arch2infos`) and `arch2infos`
{index: {"less": 12-epoch, "full": 200-epoch ArchResults state dict}}. We read "full".
`weights_only=True` makes torch's own unpickler refuse anything but containers and tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..registries import TRUTH
from .base import TruthEntry, TruthError, TruthTable
from .results import entry_from_results

FULL = "full"  # the 200-epoch results; "less" is the 12-epoch schedule


class NB201Pth(TruthTable):
    label = "NAS-Bench-201 .pth"
    expects = "a NAS-Bench-201 v1.1 .pth file (NAS-Bench-201-v1_1-096897.pth)"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.is_file() and path.suffix == ".pth"

    def __init__(self, path: Path) -> None:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated, not a torch file, or a class weights_only refuses
            raise TruthError(f"{path}: not a readable NAS-Bench-201 .pth ({type(e).__name__}: "
                             f"{str(e).splitlines()[0] if str(e) else ''})") from None
        if not isinstance(data, dict) or not {"meta_archs", "arch2infos"} <= set(data):
            raise TruthError(f"{path}: expected a dict with 'meta_archs' and 'arch2infos'")
        self._infos = data["arch2infos"]
        super().__init__(path, {a: i for i, a in enumerate(data["meta_archs"])
                                if i in self._infos})

    def _entry(self, arch: str) -> TruthEntry:
        infos = self._infos[self.index[arch]]
        if FULL not in infos:
            raise TruthError(f"{self.path}: no 200-epoch results ('{FULL}') for {arch}")
        return entry_from_results(arch, infos[FULL], str(self.path))


TRUTH.register("nb201-pth", NB201Pth, NB201Pth.expects)
