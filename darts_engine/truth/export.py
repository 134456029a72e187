"""`python -m darts_engine truth export --from FILE --out nb201.csv`: the CLI's truth command.

`add_truth_parser` adds it to the CLI's subparsers, `truth_export_main` runs it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .base import TruthError
from .reader import open_truth
from .table import export_csv


def add_truth_parser(subparsers: Any) -> None:
    """`truth export --from FILE --out nb201.csv` under the CLI's subcommands."""
    truth = subparsers.add_parser("truth", help="NAS-Bench-201 ground-truth files")
    sub = truth.add_subparsers(dest="truth_command", required=True)
    export = sub.add_parser("export", help="write a small CSV from a NAS-Bench-201/NATS file")
    export.add_argument("--from", dest="source", required=True,
                        help="NATS-tss-v1_0-3ffb9-simple folder, NAS-Bench-201 .pth or a CSV")
    export.add_argument("--out", required=True, help="the CSV to write, e.g. nb201.csv")


def truth_export_main(args: argparse.Namespace) -> int:
    """Run `truth export`; a bad file prints one error line and writes nothing."""
    try:
        rows = export_csv(open_truth(args.source), args.out)
    except TruthError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {rows} architectures to {args.out}")
    return 0
