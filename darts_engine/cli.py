"""Command line: `python -m darts_engine search|sweep|retrain|resume|runs|show|export|import|truth`.

Every SearchConfig field is a flag (`--arch-lr 1e-2`, `--augment/--no-augment`), or the fields
come from `--config run.toml`; flags override the file. Exit codes: 0 success, 1 the run failed,
2 bad input (the message names the field and the allowed values; no traceback).

`sweep --base run.toml --grid arch_lr=3e-4,1e-3 --grid arch_weight_decay=0,1e-3 --seeds 0-4`
queues every grid point × seed as an ordinary run (runs/sweep.py), `--max-concurrent` at a
time, and prints one line per finished run; `--name` names the sweep, the other field flags
override the base. Exit 0 when no run failed, 1 when one did, 130 on Ctrl-C.

`retrain RUN [--epoch E]` trains the cell RUN derived at epoch E (1-based, default its last)
from scratch; `retrain --genotype TEXT` a pasted one. The recipe follows the genotype's kind
(darts-eval for a DARTS Genotype(...), nb201 for an NB201 arch string) unless `--recipe` says.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

from .config import FIELDS, ConfigError, SearchConfig, field_help
from .events import AlertRecord, EpochRecord, Event, RunFinished, RunStarted, StepRecord
from .monitor.alerts import alert_line
from .registries import by_name
from .runs import views
from .runs.bundle import export_bundle, import_bundle
from .runs.kinds import RETRAIN, SEARCH, recipe_for, run_kind
from .runs.manager import Result, RunManager
from .runs.states import RunState, names
from .runs.store import RunStore, StoreError, default_home
from .runs.sweep import SweepSpec, expand, grid_from_texts, launch_sweep, parse_seeds, point_label
from .runs.truth_view import is_nb201_space, truth_series
from .search import build_search, check_resumable
from .train.data import DataError, check_config
from .train.retrain import RECIPES, RetrainResult, check_genotype, preset
from .truth.base import TruthError
from .truth.export import add_truth_parser, truth_export_main
from .truth.reader import ENV as TRUTH_ENV
from .truth.reader import configured_truth


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("search configuration (defaults: DARTS' CIFAR-10 search)")
    for name, meta in field_help().items():
        flag = "--" + name.replace("_", "-")
        help_text = meta["help"].replace("%", "%%")
        if meta["choices"]:
            help_text += f" Choices: {', '.join(by_name(meta['choices']).names())}."
        help_text += f" (default: {meta['default']!r})"
        if meta["type"] == "bool":
            g.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                           help=help_text)
        else:
            g.add_argument(flag, dest=name, default=None, metavar=meta["type"].upper(),
                           help=help_text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m darts_engine",
                                     description="DARTboard's search engine (no UI).")
    parser.add_argument("--home", default=None,
                        help="run store folder (default: $DARTBOARD_HOME or ./runs)")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("search", help="run a search and record it in the store")
    s.add_argument("--config", default=None, help="a .toml or .json file of config fields")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_config_flags(s)
    w = sub.add_parser("sweep", help="run a grid of config values × seeds, each an ordinary run")
    w.add_argument("--base", default=None, help="a .toml or .json file of the config fields "
                   "every run shares (the field flags below override it)")
    w.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2,...",
                   help="a swept field and its values; repeat for a grid over several fields")
    w.add_argument("--seeds", default=None, metavar="0-4|0,1,5",
                   help="the seeds each grid point runs with (default: the base's seed)")
    w.add_argument("--max-concurrent", default="2", metavar="K", help="runs at a time (default 2)")
    w.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: threads of this process (default); ray: a Ray cluster")
    w.add_argument("--ray-address", default=None, metavar="auto|ray://host:port",
                   help="the Ray cluster to join (default: start a local Ray instance)")
    w.add_argument("--no-progress", action="store_true", help="only the finished-run lines")
    _add_config_flags(w)
    t = sub.add_parser("retrain", help="train a derived cell from scratch as a retrain run")
    t.add_argument("run", nargs="?", default=None, help="the search run whose cell to retrain")
    t.add_argument("--epoch", type=int, default=None,
                   help="the epoch (1-based) whose derived cell to retrain (default: the last)")
    t.add_argument("--genotype", default=None,
                   help="a pasted genotype instead of RUN: DARTS Genotype(...) text or an NB201 "
                        "arch string |op~0|+|op~0|op~1|+...")
    t.add_argument("--recipe", choices=sorted(RECIPES), default=None,
                   help="default: the one for the genotype's kind")
    t.add_argument("--epochs", type=int, default=None, help="default: the recipe's CPU preset")
    t.add_argument("--dataset", default=None,
                   help="default: RUN's dataset; with --genotype the retrain default (digits)")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    t.add_argument("--name", default="")
    t.add_argument("--no-progress", action="store_true")
    r = sub.add_parser("resume", help="continue an interrupted run from its last checkpoint")
    r.add_argument("run", help="run id")
    r.add_argument("--no-progress", action="store_true")
    sub.add_parser("runs", help="list runs, newest first")
    sh = sub.add_parser("show", help="show one run: config, status, per-epoch metrics")
    sh.add_argument("run")
    sh.add_argument("--truth", default="", metavar="PATH",
                    help="a NAS-Bench-201 truth file (NATS-Bench fast-mode folder, v1.1 .pth or "
                         "our CSV; default $DARTBOARD_TRUTH): adds each epoch's derived cell's "
                         "true test accuracy, 200-epoch seed mean")
    ex = sub.add_parser("export", help="export a run's data")
    ex.add_argument("run")
    ex.add_argument("--format", choices=["csv", "json", "parquet"], default="csv")
    ex.add_argument("--out", required=True,
                    help="output folder, or a file name ending in .zip for a run bundle (the "
                         "dashboard's Export; `import` reads it)")
    im = sub.add_parser("import", help="add a run from a bundle .zip (checked in full first)")
    im.add_argument("bundle", help="the .zip written by Export or `export --out RUN_ID.zip`")
    add_truth_parser(sub)
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SearchConfig:
    data: dict[str, Any] = {}
    if args.config:
        data.update(SearchConfig.from_file(args.config).to_dict())
    for name in FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            data[name] = value
    return SearchConfig.from_dict(data)


class Progress:
    """A one-line progress bar on stderr, redrawn in place with `\\r` on a terminal. Anywhere else
    (a log file, `2>&1 | tee`) only plain lines: one per epoch, no `\\r` or half-drawn bars."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.epochs = self.steps = 0
        self.train_metric = self.headline = ""
        self.t0 = time.perf_counter()

    def __call__(self, ev: Event) -> None:
        if not self.enabled:
            return
        if isinstance(ev, RunStarted):
            self.epochs, self.steps = ev.config["epochs"], ev.steps_per_epoch
            # the run's declared metrics: the first train-split one and the headline
            self.train_metric = next((m["name"] for m in ev.metrics if m["split"] == "train"), "")
            self.headline = next((m["name"] for m in ev.metrics if m["headline"]), "")
            verb = "retraining" if run_kind(ev.config) == RETRAIN else "searching"
            print(f"{verb} on {ev.device}: {ev.n_params / 1e6:.3f} M weights, "
                  f"{self.steps} steps/epoch", file=sys.stderr)
        elif isinstance(ev, StepRecord) and self.tty:
            done = (ev.step - 1) % max(1, self.steps) + 1
            bar = "#" * int(20 * done / max(1, self.steps))
            print(f"\repoch {ev.epoch + 1}/{self.epochs} [{bar:<20}] loss {ev.train_loss:.3f} "
                  f"acc {ev.metrics.get(self.train_metric, math.nan):.3f}", end="",
                  file=sys.stderr, flush=True)
        elif isinstance(ev, EpochRecord):
            left = (self.epochs - ev.epoch - 1) * ev.epoch_time
            back = "\r" if self.tty else ""  # over the bar drawn by the step lines
            print(f"{back}epoch {ev.epoch + 1}/{self.epochs}  train {ev.train_loss:.3f}/"
                  f"{ev.metrics.get(self.train_metric, math.nan):.3f}  val {ev.val_loss:.3f}/"
                  f"{ev.metrics.get(self.headline, math.nan):.3f}  "
                  f"{ev.epoch_time:.1f}s/epoch  ETA {left:.0f}s", file=sys.stderr)
        elif isinstance(ev, RunFinished) and ev.error:
            after_bar = "\n" if self.tty else ""
            print(f"{after_bar}run failed: {ev.error}", file=sys.stderr)


def print_alert(ev: Event) -> None:
    """Each alert on stdout as it fires (with or without the progress bar)."""
    if isinstance(ev, AlertRecord):
        print(alert_line(ev.epoch, ev.rule, ev.message, ev.action), flush=True)


def _fan_out(*sinks: Any) -> Any:
    def emit(ev: Event) -> None:
        for sink in sinks:
            sink(ev)
    return emit


def _finish(run_id: str, result: Result | None) -> int:
    print(f"run id: {run_id}")
    if result is None:  # the loop never ran to its end (stopped while queued)
        print("error: the run ended before its loop finished", file=sys.stderr)
        return 1
    if isinstance(result, RetrainResult):
        if result.history:
            print(f"test_acc {result.history[-1]['test_acc']:.4f} after "
                  f"{result.epochs_done} epoch(s)")
    else:
        print(result.genotype)
    if result.status == "failed":
        print(f"error: the run failed: {result.error}", file=sys.stderr)
        return 1
    return 0


def cmd_search(args: argparse.Namespace, store: RunStore) -> int:
    cfg = config_from_args(args)
    check_config(cfg)
    setup = build_search(cfg)  # loads the data: a missing dataset fails here, before any run row
    return _run(store, args, lambda m, sinks: m.launch(cfg, cfg.name, listener=sinks,
                                                        setup=setup))


def cmd_sweep(args: argparse.Namespace, store: RunStore) -> int:
    """Every run checked before the first is queued; then one line per finished run."""
    if args.seed is not None:
        raise ConfigError("--seed sets one seed; a sweep lists its seeds with --seeds 0-4 or "
                          "--seeds 0,1,5", field="seed")
    base: dict[str, Any] = SearchConfig.from_file(args.base).to_dict() if args.base else {}
    base |= {name: getattr(args, name) for name in field_help()
             if getattr(args, name, None) is not None}
    name = str(base.get("name") or "")  # the sweep's name; each run's is its point and seed
    seeds = (parse_seeds(args.seeds) if args.seeds is not None
             else [SearchConfig.from_dict(base).seed])
    spec = SweepSpec(base=base, grid=grid_from_texts(args.grid), seeds=seeds)
    runs = expand(spec)
    if not str(args.max_concurrent).isdigit() or int(args.max_concurrent) < 1:
        raise ConfigError(f"max_concurrent must be an integer >= 1, got {args.max_concurrent!r}",
                          field="max_concurrent")
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray", field="ray_address")
    options: dict[str, Any] = {}
    if args.executor != "local":
        if "ray_address" not in inspect.signature(RunManager).parameters:
            raise ConfigError("the ray executor is not available in this version of DARTboard; "
                              "use --executor local", field="executor")
        options = {"executor": args.executor, "ray_address": args.ray_address}
    mgr = RunManager(store, max_concurrent=int(args.max_concurrent), **options)
    try:
        sweep_id = launch_sweep(mgr, spec, name=name)
        print(f"sweep {sweep_id}: {len(runs)} runs ({len(runs) // len(seeds)} points × "
              f"{len(seeds)} seeds), {mgr.max_concurrent} at a time", flush=True)
        ids, ended = list(store.sweep_runs(sweep_id)["id"]), {}
        try:
            _watch_sweep(mgr, sweep_id, ids, ended)
        except KeyboardInterrupt:
            print("\nstopping the sweep's runs after their current step", file=sys.stderr)
            for run_id in ids:
                mgr.stop(run_id)
            _watch_sweep(mgr, sweep_id, ids, ended)
            return 130
        return 1 if any(s in ("failed", "interrupted") for s in ended.values()) else 0
    finally:
        mgr.shutdown()


def _watch_sweep(mgr: RunManager, sweep_id: str, ids: list[str], ended: dict[str, str]) -> None:
    """Wait for the runs, printing one line as each ends; `ended`: run id -> its final status,
    filled in as they end (kept across a Ctrl-C)."""
    while pending := [run_id for run_id in ids if run_id not in ended]:
        now = {run_id for run_id in pending if not mgr.is_live(run_id)}
        if not now:
            time.sleep(0.2)
            continue
        table = mgr.store.sweep_runs(sweep_id)
        for row in table[table["id"].isin(now)].itertuples():
            ended[row.id] = row.status
            value = "" if math.isnan(row.headline_value) else \
                f"  {row.headline} {row.headline_value:.4f}"
            print(f"{len(ended)}/{len(ids)}  {row.id}  {row.status:<11} "
                  f"{point_label(row.point)}  seed {row.seed}{value}"
                  f"{'  ' + row.error if row.error else ''}", flush=True)
        for run_id in now - set(ended):  # deleted meanwhile (the dashboard's Runs page)
            ended[run_id] = "deleted"
            print(f"{len(ended)}/{len(ids)}  {run_id}  deleted", flush=True)


def cmd_retrain(args: argparse.Namespace, store: RunStore) -> int:
    if (args.run is None) == (args.genotype is None):
        raise ConfigError("retrain needs either RUN (a search run's id) or --genotype TEXT, "
                          "not both", field="run" if args.run is None else "genotype")
    dataset, source_epoch = args.dataset, None
    if args.run is not None:
        run = store.get_run(args.run)
        if run_kind(run["config"]) != SEARCH:
            raise ConfigError(f"run {args.run} is a {run_kind(run['config'])} run; retrain the "
                              "search run it came from", field="run")
        texts = store.genotypes(args.run)["genotype"].tolist()
        if not texts:
            raise ConfigError(f"run {args.run} has no derived cell yet (no epoch finished)",
                              field="run")
        epoch = len(texts) if args.epoch is None else args.epoch
        if not 1 <= epoch <= len(texts):
            raise ConfigError(f"epoch must be 1..{len(texts)} (the epochs run {args.run} "
                              f"recorded), got {epoch}", field="epoch")
        genotype, source_epoch = texts[epoch - 1], epoch - 1
        dataset = dataset or run["config"].get("dataset")
    else:
        if args.epoch is not None:
            raise ConfigError("--epoch picks an epoch of RUN; a pasted --genotype has none",
                              field="epoch")
        genotype = args.genotype
    recipe = args.recipe or recipe_for(genotype)
    overrides = {k: v for k, v in (("epochs", args.epochs), ("dataset", dataset),
                                   ("seed", args.seed), ("threads", args.threads))
                 if v is not None}
    cfg = preset(recipe, **overrides)
    check_genotype(cfg, genotype)  # before the manager starts
    return _run(store, args, lambda m, sinks: m.launch_retrain(
        cfg, genotype, source_run=args.run, source_epoch=source_epoch, name=args.name,
        listener=sinks))


def cmd_resume(args: argparse.Namespace, store: RunStore) -> int:
    store.mark_interrupted()  # a run whose process died (kill -9, power cut) becomes resumable
    run = store.get_run(args.run)
    state = RunState.parse(run["status"])
    if not state.resumable:
        hint = "it is still running in another process" if state.active else "nothing to resume"
        raise ConfigError(f"run {args.run} is {state}: {hint}. Only "
                          f"{', '.join(names('resumable'))} runs can be resumed", field="run")
    if run_kind(run["config"]) == SEARCH:  # the manager checks a retrain's own checkpoint
        check_resumable(store.home / args.run, run["epochs_done"])

    def start(mgr: RunManager, sinks: Any) -> str:
        mgr.resume(args.run, listener=sinks)
        return args.run
    return _run(store, args, start)


def _run(store: RunStore, args: argparse.Namespace, start: Any) -> int:
    """One run through the dashboard's RunManager (same checks, states and recorder), its
    thread joined here. Ctrl-C asks the run to stop between two steps: "stopped", exit 130."""
    mgr = RunManager(store, max_concurrent=1, threads_per_run=torch.get_num_threads())
    try:
        run_id = start(mgr, _fan_out(Progress(not args.no_progress), print_alert))
        try:
            mgr.wait(run_id, timeout=float("inf"))
        except KeyboardInterrupt:
            print("\nstopping after the current step (Ctrl-C again to abort)", file=sys.stderr)
            mgr.stop(run_id)
            mgr.wait(run_id, timeout=float("inf"))
            _finish(run_id, mgr.result(run_id))
            return 130
        return _finish(run_id, mgr.result(run_id))
    finally:
        mgr.shutdown()


def local_time(seconds: float) -> str:
    """A store timestamp (seconds since the epoch) as local 'YYYY-MM-DD HH:MM'."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def cmd_runs(store: RunStore) -> int:
    df = views.list_runs(store, set())  # space: a retrain's recipe
    if df.empty:
        print("no runs yet (start one with: python -m darts_engine search)")
        return 0
    cols = ["id", "status", "kind", "space", "algorithm", "dataset", "epochs_done", "epochs",
            "best_val_acc", "name", "created_at"]
    df = df[[c for c in cols if c in df.columns]].copy()
    if "created_at" in df.columns:  # seconds since the epoch -> the reader's local time
        df["created_at"] = [local_time(t) for t in df["created_at"]]
    print(df.to_string(index=False))
    return 0


def cmd_show(args: argparse.Namespace, store: RunStore) -> int:
    run = store.get_run(args.run)
    print(json.dumps({k: v for k, v in run.items() if k != "config"}, indent=2, default=str))
    print("config:", json.dumps(run["config"], indent=2))
    em = store.epoch_metrics(args.run)
    if not em.empty:
        # the run's declared metrics by name, each split after its loss
        split = {s: [m["name"] for m in run["metrics"] if m["split"] == s]
                 for s in ("train", "held_out")}
        cols = [c for c in ("epoch", "train_loss", *split["train"], "val_loss",
                            *split["held_out"], "epoch_time") if c in em.columns]
        table = em[cols].copy()
        truth = _truth_columns(args, run, em)
        for name, values in truth.items():
            table[name] = values
        print(table.to_string(index=False))
    alerts = store.alerts(args.run)
    print(f"alerts: {len(alerts) or 'none'}")
    for a in alerts.itertuples():
        print(alert_line(int(a.epoch), a.rule, a.message, a.action))
    return 0


def _truth_columns(args: argparse.Namespace, run: dict[str, Any], em: Any) -> dict[str, Any]:
    """`show --truth`: per-epoch true test accuracy (percent) of the derived NB201 cell, one
    column per dataset the table has, and the protocol printed once; nothing without a table
    (the flag or $DARTBOARD_TRUTH: `show` never falls back to the proxy on its own)."""
    if not (args.truth or os.environ.get(TRUTH_ENV)):
        return {}
    table = configured_truth(args.truth or None)
    space = run["config"].get("space", "")
    if table is None or not is_nb201_space(space):
        print("truth: only NAS-Bench-201-space searches have a truth value", file=sys.stderr)
        return {}
    series = truth_series(em, space, table)
    if series.found:
        print(f"truth: {series.protocol}")
    return {f"true_{d}": series.test[d] for d in series.datasets}


def cmd_export(args: argparse.Namespace, store: RunStore) -> int:
    out = Path(args.out)
    if out.suffix == ".zip":
        out.write_bytes(export_bundle(store, args.run, args.format))
        print(out)
        return 0
    for path in store.export_run(args.run, args.format, out):
        print(path)
    return 0


def cmd_import(args: argparse.Namespace, store: RunStore) -> int:
    print(f"run id: {import_bundle(store, Path(args.bundle))}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "truth":  # a file conversion: no run store
        return truth_export_main(args)
    try:
        store = RunStore(args.home or default_home())
        if args.command == "search":
            return cmd_search(args, store)
        if args.command == "sweep":
            return cmd_sweep(args, store)
        if args.command == "retrain":
            return cmd_retrain(args, store)
        if args.command == "resume":
            return cmd_resume(args, store)
        if args.command == "runs":
            return cmd_runs(store)
        if args.command == "show":
            return cmd_show(args, store)
        if args.command == "import":
            return cmd_import(args, store)
        return cmd_export(args, store)
    except (ConfigError, DataError, StoreError, TruthError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 2


def allowed_fields() -> list[str]:
    return list(FIELDS)
