"""Our small shareable CSV: one row per arch string, seed-mean accuracies, the protocol on top.

`export_csv` writes it from any opened table (a complete NAS-Bench-201 / NATS-Bench file gives the
15,625 rows, about 3.2 MB with full-precision floats, so a read-back is exact);
`CsvTable` reads it back. Layout:
    # source: NAS-Bench-201
    # 200 epochs (hp '200' / 'full'), mean over seeds; test: ..., valid: ...
    arch,cifar10_test,...,ImageNet16-120_seeds
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from ..registries import TRUTH
from .base import DATASETS, TruthEntry, TruthError, TruthTable, check_arch

COLUMNS = ("arch", *(f"{d}_test" for d in DATASETS), *(f"{d}_valid" for d in DATASETS),
           *(f"{d}_seeds" for d in DATASETS))
SOURCE = "# source: "
NOTE = ("# 200 epochs (hp '200' / 'full'), mean over seeds; test: cifar10 ori-test, cifar100 "
        "and ImageNet16-120 x-test; valid: cifar10-valid x-valid, x-valid")


def _number(text: str, where: str, cast: type) -> Any:
    if text == "":
        return None
    try:
        return cast(text)
    except ValueError:
        raise TruthError(f"{where}: expected a number, got {text!r}") from None


class CsvTable(TruthTable):
    label = "truth CSV"
    expects = "a truth .csv written by `python -m darts_engine truth export`"

    @classmethod
    def accepts(cls, path: Path) -> bool:
        return path.is_file() and path.suffix == ".csv"

    def __init__(self, path: Path) -> None:
        lines = path.read_text().splitlines()
        head = [line for line in lines[:2] if line.startswith("#")]
        if not head or not head[0].startswith(SOURCE):
            raise TruthError(f"{path}: first line must be '{SOURCE}<source>'; expected "
                             f"{self.expects}")
        source = head[0][len(SOURCE):].strip()
        rows = csv.DictReader(lines[len(head):])
        missing = [c for c in COLUMNS if c not in (rows.fieldnames or [])]
        if missing:
            raise TruthError(f"{path}: missing columns {', '.join(missing)}; expected "
                             f"{','.join(COLUMNS)}")
        self._entries: dict[str, TruthEntry] = {}
        for n, row in enumerate(rows, start=len(head) + 2):
            where = f"{path} line {n}"
            try:
                arch = check_arch(row["arch"])
            except TruthError as e:
                raise TruthError(f"{where}: {e}") from None
            values = {c: _number(row[c] or "", f"{where} column {c}",
                                 int if c.endswith("_seeds") else float) for c in COLUMNS[1:]}
            pick = {k: {d: values[f"{d}_{k}"] for d in DATASETS
                        if values[f"{d}_{k}"] is not None} for k in ("test", "valid", "seeds")}
            self._entries[arch] = TruthEntry(arch, pick["test"], pick["valid"], pick["seeds"],
                                             source)
        super().__init__(path, {arch: i for i, arch in enumerate(self._entries)})

    def _entry(self, arch: str) -> TruthEntry:
        return self._entries[arch]


def export_csv(table: TruthTable, path: str | os.PathLike[str]) -> int:
    """Write every arch `table` has to `path` (whole or not at all); returns the row count."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    rows = 0
    try:
        with tmp.open("w", newline="") as f:
            writer = None
            for arch in table.archs():
                e = table.query(arch)
                if writer is None:
                    f.write(f"{SOURCE}{e.source}\n{NOTE}\n")
                    writer = csv.writer(f)
                    writer.writerow(COLUMNS)
                cells = [*(e.test.get(d) for d in DATASETS), *(e.valid.get(d) for d in DATASETS),
                         *(e.seeds.get(d) for d in DATASETS)]
                writer.writerow([arch, *("" if v is None else repr(v) for v in cells)])
                rows += 1
        if rows == 0:
            raise TruthError(f"{table.path}: no architecture has results; nothing to export")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return rows


TRUTH.register("csv", CsvTable, CsvTable.expects)
