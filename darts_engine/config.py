"""The search configuration: one frozen dataclass, validated at construction.

The launch form, the CLI flags and a saved TOML/JSON file all build the same `SearchConfig`.
Every field carries its help text and allowed range in `dataclasses.field(metadata=...)`, so
the form and the CLI are generated from this one block of defaults.

Defaults follow DARTS' CIFAR-10 search (Liu et al. 2019; quark0 cnn/train_search.py's argparse
defaults), except the built-in digits dataset and `arch_lr`. Two are resolved when the
search starts because they depend on the space or the data: `cells` (space default) and
`arch_lr` ("auto": the paper's 3e-4 scaled to the number of steps per epoch, see
`resolve_arch_lr`).

Fields that only one plug-in reads (PC-DARTS' K, the smoothing radius, a task's upscaling
factor) are declared by that plug-in, in its own module, with `declare_option(...)`: they
behave like the fields below (constructor keyword, attribute, form, CLI flag, TOML key, saved
config, range check) but live with the code that reads them, so adding a method or a task
never edits this file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from . import registries


class ConfigError(ValueError):
    """A config value a person must fix. The message names the field, the value and the fix."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


# CIFAR-10's 25k train half at batch 64 gives 391 steps per epoch; DARTS' arch lr 3e-4 was
# tuned for that many Adam steps per epoch.
PAPER_STEPS_PER_EPOCH = 391
PAPER_ARCH_LR = 3e-4
MAX_ARCH_LR_SCALE = 30.0
# Bi-level step orders (algorithms.py `bilevel_first_order` documents both) and weight
# optimisers: registry choices, so the form offers a select box and the CLI lists them.
registries.STEP_ORDERS.register(
    "alpha-first", "alpha-first", "α step, then the w step with the updated α (quark0/darts "
    "train_search.py; the default)")
registries.STEP_ORDERS.register(
    "weights-first", "weights-first", "w step, then the α step at the new w (AutoDL-Projects' "
    "NAS-Bench-201 DARTS-V1/V2 scripts; bi-level only)")
registries.WEIGHT_OPTIMIZERS.register(
    "sgd", "sgd", "SGD with momentum, optional Nesterov (DARTS and every CIFAR search)")
registries.WEIGHT_OPTIMIZERS.register(
    "adam", "adam", "Adam, β 0.9/0.999, weight_decay as L2 (the trilevel SR search code)")
STEP_ORDERS = tuple(registries.STEP_ORDERS.names())
WEIGHT_OPTIMIZERS = tuple(registries.WEIGHT_OPTIMIZERS.names())
LABELLED_IMAGES = "labelled images"   # what train/data.py's datasets hold (Task.data_kind)


def _f(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
       choices: str | None = None, group: str = "search", lo_open: bool = False) -> Any:
    """A dataclass field with UI/CLI metadata. `choices` names a registry."""
    return field(default=default, metadata={
        "help": help, "lo": lo, "hi": hi, "choices": choices, "group": group, "lo_open": lo_open,
    })


@dataclass(frozen=True, init=False, eq=False)
class SearchConfig:
    """The run's settings. Core fields are declared below; plug-in options (`declare_option`)
    are keyword arguments and attributes like them, held in `_options`."""

    # --- what to search -------------------------------------------------------------
    space: str = _f("darts", "Search space: the cell's candidate operations and wiring.",
                    choices="space", group="search")
    algorithm: str = _f("bilevel-1st", "Update rule for weights w and architecture alphas.",
                        choices="algorithm", group="search")
    task: str = _f("classification", "What the search is trained for: its data, the losses of "
                   "both steps, its metrics (one headline) and what it records per epoch.",
                   choices="task", group="search")
    dataset: str = _f("digits", "Dataset. 'digits' and 'shapes' are built in and need no download.",
                      choices="dataset", group="data")
    data_root: str = _f("./data", "Folder where torchvision datasets are looked for (and "
                        "downloaded to, if download is on).", group="data")
    download: bool = _f(False, "Allow torchvision to download the dataset into data_root.",
                        group="data")
    train_portion: float = _f(0.5, "Share of the training set used for w; the rest is the "
                              "held-out half (α for bi-level, monitoring for single-level).",
                              lo=0.05, hi=0.95, group="data")
    data_limit: int = _f(0, "Use at most this many training images (0 = all). Handy for quick "
                         "what-ifs on big datasets.", lo=0, group="data")
    augment: bool = _f(False, "Augment the training batches as the reference code does. "
                       "CIFAR-10/100: random crop 32 after zero padding by 4, then a random "
                       "horizontal flip, on BOTH halves (w and α; quark0 and AutoDL draw both "
                       "from one augmented training set). Other datasets: random shifts (flips "
                       "for natural images) on the w half only, so small data cannot simply be "
                       "memorised. Validation passes are never augmented.", group="data")
    step_order: str = _f("alpha-first", "Order of the two bi-level steps in each iteration: "
                         "'alpha-first' (quark0/darts train_search.py: α step, then the w step "
                         "with the updated α) or 'weights-first' (AutoDL-Projects' NAS-Bench-201 "
                         "DARTS-V1 script: w step, then the α step at the new w). The lr "
                         "schedule is the same per-epoch cosine in both.", choices="step_order",
                         group="search")
    # --- network --------------------------------------------------------------------
    init_channels: int = _f(16, "C: channels of the first cell (DARTS: 16).", lo=1, hi=256,
                            group="network")
    cells: int = _f(0, "darts: total cells (paper 8); nb201: cells per stage (paper 5). "
                    "0 = the space's default.", lo=0, hi=40, group="network")
    # --- schedule -------------------------------------------------------------------
    epochs: int = _f(50, "Search epochs.", lo=1, hi=10_000, group="schedule")
    batch_size: int = _f(64, "Minibatch size for both the w and the α stream.", lo=1,
                         hi=4096, group="schedule")
    warmup_epochs: int = _f(0, "Epochs at the start that train the weights only (α frozen), "
                            "as PC-DARTS (15) and MS-DARTS (5) do.", lo=0, hi=10_000,
                            group="schedule")
    seed: int = _f(2, "Seed for weight init, α init and data order. Runs with the same seed "
                   "differ only in their update rule.", lo=0, hi=2**31 - 1, group="schedule")
    split_seed: int = _f(0, "Seed of the fixed train/held-out split.", lo=0, hi=2**31 - 1,
                         group="data")
    # --- weight optimiser (SGD) -----------------------------------------------------
    lr: float = _f(0.025, "Weight learning rate (SGD), cosine-annealed per epoch.", lo=0.0,
                   hi=10.0, lo_open=True, group="weights")
    lr_min: float = _f(0.001, "Final weight learning rate of the cosine schedule.", lo=0.0,
                       hi=10.0, group="weights")
    optimizer: str = _f("sgd", "Weight optimiser: 'sgd' (DARTS: momentum, optional Nesterov) or "
                        "'adam' (β 0.9/0.999, weight_decay as L2; the trilevel SR search code "
                        "uses it). The lr schedule is the same cosine for both.",
                        choices="optimizer", group="weights")
    momentum: float = _f(0.9, "SGD momentum.", lo=0.0, hi=0.999, group="weights")
    weight_decay: float = _f(3e-4, "SGD weight decay (L2).", lo=0.0, hi=1.0, group="weights")
    nesterov: bool = _f(False, "Nesterov momentum (NAS-Bench-201's DARTS scripts use it).",
                        group="weights")
    grad_clip: float = _f(5.0, "Clip the weight gradient norm to this (0 = off).", lo=0.0,
                          hi=1e6, group="weights")
    # --- architecture optimiser (Adam) ------------------------------------------------
    arch_lr: float = _f(0.0, "Architecture learning rate (Adam). 0 = auto: the paper's 3e-4 "
                        "scaled by 391 / steps-per-epoch (at most 30×), so α moves as far per "
                        "epoch as in DARTS' CIFAR-10 search. On digits that is ~30× the paper.",
                        lo=0.0, hi=10.0, group="arch")
    arch_beta1: float = _f(0.5, "Adam β1 for α.", lo=0.0, hi=0.9999, group="arch")
    arch_beta2: float = _f(0.999, "Adam β2 for α.", lo=0.0, hi=0.99999, group="arch")
    arch_weight_decay: float = _f(1e-3, "Adam weight decay (L2, not AdamW) on α.", lo=0.0,
                                  hi=1.0, group="arch")
    # --- runtime --------------------------------------------------------------------
    device: str = _f("auto", "auto = cuda > mps > cpu; or cpu, cuda, cuda:N, mps.",
                     group="runtime")
    threads: int = _f(0, "torch intra-op threads for this process (0 = leave as is).", lo=0,
                      hi=256, group="runtime")
    alpha_every: int = _f(10, "Also record α every N steps (0 = once per epoch only).", lo=0,
                          hi=1_000_000, group="runtime")
    log_every: int = _f(1, "Report step metrics every N steps.", lo=1, hi=1_000_000,
                        group="runtime")
    name: str = _f("", "A label for the run (free text).", group="runtime")
    # --- collapse indicators and alerts (indicators.py) ---
    hessian_every: int = _f(0, "Compute λmax, the top eigenvalue of the validation-loss Hessian "
                            "in α (RobustDARTS), every N epochs (0 = off). Costs about 30-60 "
                            "extra backward passes each time.", lo=0, hi=10_000,
                            group="indicators")
    hessian_batches: int = _f(1, "Fixed held-out batches λmax is measured on (the same ones "
                              "every time, so the curve is not noise).", lo=1, hi=64,
                              group="indicators")
    gap_every: int = _f(0, "Measure the discretisation gap (supernet minus derived-cell "
                        "validation accuracy, inherited weights) every N epochs and at the end "
                        "(0 = off).", lo=0, hi=10_000, group="indicators")
    gap_bn_batches: int = _f(20, "Training batches used to recompute BN statistics of the "
                             "derived cell before measuring the gap.", lo=1, hi=1000,
                             group="indicators")
    alert_action: str = _f("alert", "What a fired alert does: 'alert' only records it; 'stop' "
                           "ends the run and keeps the genotype from before the alert.",
                           choices="alert_action", group="indicators")
    alert_skip_count: int = _f(2, "DARTS+ alert: at least this many skip_connect in the derived "
                               "normal cell (NB201: the cell); 0 = off.", lo=0, hi=14,
                               group="indicators")
    stable_epochs: int = _f(10, "DARTS+ alert: the ranking of learnable ops on every edge has "
                            "not changed for this many epochs; 0 = off.", lo=0, hi=10_000,
                            group="indicators")
    alert_es_factor: float = _f(1.3, "DARTS-ES alert (needs hessian_every > 0): the local "
                                "average of λmax grew by more than this factor within 8 "
                                "epochs; 0 = off.", lo=0.0, hi=100.0, group="indicators")
    alert_pf_mass: float = _f(0.0, "Alert when the parameter-free softmax mass of any cell type "
                              "exceeds this; 0 = off.", lo=0.0, hi=1.0, group="indicators")
    # --- method variants (methods/: each method declares its own options there) ---
    method: str = _f("darts", "DARTS variant around the update rule: what it changes in the "
                     "supernet (PC-DARTS), in the weight step's mixing weights (SDARTS-RS, "
                     "MS-DARTS) or in the loop (LFR-DARTS). Combines with any algorithm.",
                     choices="method", group="method")
    relaxation: str = _f("softmax", "How each edge's α become mixing weights; the genotype is "
                         "derived under the same relaxation. Combines with any method.",
                         choices="relaxation", group="method")
    # --- performance (fastcell.py) ---
    impl: str = _f("fast", "Supernet forward: 'fast' runs all edges leaving a node as one "
                   "batched call per op (same math and parameters; on a CPU ~3x faster steps "
                   "in the DARTS spaces, ~1.3x on NB201); 'plain' runs every op of every edge "
                   "on its own (the readable reference).", choices="impl",
                   group="runtime")

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise TypeError(f"SearchConfig got unknown field(s): {', '.join(unknown)}")
        for f in _CORE:
            object.__setattr__(self, f.name, values.get(f.name, f.default))
        object.__setattr__(self, "_options",
                           {n: values.get(n, FIELDS[n].default) for n in OPTION_OWNERS})
        validate(self)

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: the plug-in options.
        options = self.__dict__.get("_options")
        if options is not None and name in options:
            return options[name]
        raise AttributeError(f"SearchConfig has no field {name!r}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        return f"SearchConfig({', '.join(f'{k}={v!r}' for k, v in self.to_dict().items())})"

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        known = set(FIELDS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"unknown config field(s): {', '.join(unknown)}; known fields: "
                f"{', '.join(sorted(known))}", field=unknown[0])
        return cls(**{k: _coerce(k, v) for k, v in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist", field="config")
        try:
            if p.suffix == ".toml":
                data = tomllib.loads(p.read_text())
            else:
                data = json.loads(p.read_text())
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"config file {str(p)!r} is not valid: {e}", field="config") from e
        data = data.get("search", data)
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a table of fields",
                              field="config")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return {**{f.name: getattr(self, f.name) for f in _CORE}, **self._options}

    def replace(self, **changes: Any) -> SearchConfig:
        return type(self)(**{**self.to_dict(), **changes})


_CORE = fields(SearchConfig)
# Every field by name, core first, then the plug-ins' options in the order they were declared.
FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in _CORE}
OPTION_OWNERS: dict[str, str] = {}  # option name -> the plug-in that declared it


def declare_option(owner: str, name: str, default: Any, help: str, *, lo: float | None = None,
                   hi: float | None = None, choices: str | None = None, group: str = "method",
                   lo_open: bool = False) -> None:
    """A config field of one plug-in (`owner`, e.g. "method pc-darts", "task sisr"), declared
    in the plug-in's own module. Its type is the default's (bool, int, float or str); the help
    text, range and group are those of `_f`. Declaring a name twice raises ValueError."""
    if name in FIELDS:
        raise ValueError(f"config field {name!r} is already declared"
                         f"{' by ' + OPTION_OWNERS[name] if name in OPTION_OWNERS else ''}")
    if type(default) not in (bool, int, float, str):
        raise TypeError(f"option {name!r}: the default must be a bool, int, float or str")
    f: dataclasses.Field[Any] = _f(default, help, lo=lo, hi=hi, choices=choices, group=group,
                                   lo_open=lo_open)
    f.name, f.type = name, type(default).__name__
    FIELDS[name] = f
    OPTION_OWNERS[name] = owner


def withdraw_option(name: str) -> None:
    """Undo `declare_option` (a plug-in that unregisters itself, e.g. in tests). Configs made
    before keep the value; new ones no longer know the field."""
    if name not in OPTION_OWNERS:
        raise ValueError(f"{name!r} is not a plug-in option")
    del FIELDS[name], OPTION_OWNERS[name]


def _type_name(name: str) -> str:
    t = FIELDS[name].type
    return t if isinstance(t, str) else t.__name__


def _coerce(name: str, value: Any) -> Any:
    """Turn strings (CLI, forms) into the field's type, with a message naming the field."""
    if name not in FIELDS:
        raise ConfigError(f"unknown config field {name!r}", field=name)
    t = _type_name(name)
    try:
        if t == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in {"1", "true", "yes", "on"}:
                    return True
                if low in {"0", "false", "no", "off"}:
                    return False
                raise ValueError
            return bool(value)
        if t == "int":
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float):
                if not value.is_integer():
                    raise ValueError
                return int(value)
            return int(str(value).strip())
        if t == "float":
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a{'n' if t == 'int' else ''} {t}, got {value!r}",
                          field=name) from None


def _check_range(name: str, value: float) -> None:
    meta = FIELDS[name].metadata
    lo, hi = meta["lo"], meta["hi"]
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value}", field=name)
    if lo is not None and (value < lo or (meta["lo_open"] and value == lo)):
        rel = ">" if meta["lo_open"] else ">="
        bound = f"{rel} {lo:g}" + (f" and <= {hi:g}" if hi is not None else "")
        raise ConfigError(f"{name} must be {bound}, got {value:g}", field=name)
    if hi is not None and value > hi:
        raise ConfigError(f"{name} must be <= {hi:g}, got {value:g}", field=name)


def validate(cfg: SearchConfig) -> None:
    """Field-by-field checks that need no data. Raises ConfigError naming the field."""

    for f in FIELDS.values():
        value = getattr(cfg, f.name)
        t = _type_name(f.name)
        ok = {"bool": isinstance(value, bool),
              "int": isinstance(value, int) and not isinstance(value, bool),
              "float": isinstance(value, (int, float)) and not isinstance(value, bool),
              "str": isinstance(value, str)}[t]
        if not ok:
            raise ConfigError(f"{f.name} must be a {t}, got {value!r}", field=f.name)
        if t in ("int", "float"):
            _check_range(f.name, value)
        reg_name = f.metadata["choices"]
        if reg_name:
            reg = registries.by_name(reg_name)
            if value not in reg:
                raise ConfigError(f"{f.name} must be one of: {', '.join(reg.names())}; "
                                  f"got {value!r}", field=f.name)
    if cfg.step_order not in STEP_ORDERS:
        raise ConfigError(f"step_order must be one of: {', '.join(STEP_ORDERS)}; got "
                          f"{cfg.step_order!r}", field="step_order")
    bilevel = registries.ALGORITHMS.get(cfg.algorithm).uses_held_out
    if cfg.step_order != "alpha-first" and not bilevel:
        raise ConfigError(f"step_order {cfg.step_order!r} needs a bi-level algorithm; "
                          f"{cfg.algorithm!r} takes the w and α steps at one point. Set "
                          f"step_order to 'alpha-first' or pick a bi-level algorithm",
                          field="step_order")
    if cfg.optimizer not in WEIGHT_OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of: {', '.join(WEIGHT_OPTIMIZERS)}; got "
                          f"{cfg.optimizer!r}", field="optimizer")
    if cfg.optimizer != "sgd" and cfg.algorithm == "bilevel-2nd":
        raise ConfigError("optimizer 'adam' does not fit bilevel-2nd: its unrolled step mimics "
                          "one SGD step with momentum (DARTS §2.3). Use optimizer 'sgd' or a "
                          "first-order or single-level algorithm", field="optimizer")
    if cfg.lr_min > cfg.lr:
        raise ConfigError(f"lr_min must be <= lr ({cfg.lr:g}), got {cfg.lr_min:g}",
                          field="lr_min")
    dev = cfg.device
    if not (dev in ("auto", "cpu", "cuda", "mps") or
            (dev.startswith("cuda:") and dev[5:].isdigit())):
        raise ConfigError(f"device must be auto, cpu, cuda, cuda:N or mps; got {dev!r}",
                          field="device")
    if len(cfg.name) > 200:
        raise ConfigError(f"name must be at most 200 characters, got {len(cfg.name)}",
                          field="name")
    space = registries.SPACES.get(cfg.space)
    space.check_config(cfg)
    task = registries.TASKS.get(cfg.task)
    if not task.serves(cfg.space):
        served = [name for name in registries.SPACES if task.serves(name)]
        raise ConfigError(f"task {cfg.task!r} serves the spaces {', '.join(served)}; got "
                          f"space {cfg.space!r}. Pick one of those spaces or another task",
                          field="task")
    # What a dataset holds (`kind`; train/data.py's: labelled images) must be what the task
    # reads (`Task.data_kind`).
    holds = getattr(registries.DATASETS.get(cfg.dataset), "kind", LABELLED_IMAGES)
    if holds != task.data_kind:
        fits = [name for name in registries.DATASETS
                if getattr(registries.DATASETS.get(name), "kind", LABELLED_IMAGES)
                == task.data_kind]
        raise ConfigError(f"dataset {cfg.dataset!r} holds {holds} and the task {cfg.task!r} "
                          f"reads {task.data_kind}; pick one of: "
                          f"{', '.join(fits) or 'none registered'}", field="dataset")
    task.check_config(cfg)
    registries.METHODS.get(cfg.method).check_config(cfg)


def resolve_arch_lr(cfg: SearchConfig, steps_per_epoch: int) -> float:
    """arch_lr=0 means auto: scale DARTS' 3e-4 so that α moves as far per epoch as on CIFAR-10.

    Adam's step is ~lr per step whatever the gradient scale, so the per-epoch movement of α is
    ~lr × steps. Scaling by 391 / steps keeps it; the factor is capped at 30×.
    """
    if cfg.arch_lr > 0:
        return cfg.arch_lr
    scale = min(MAX_ARCH_LR_SCALE, max(1.0, PAPER_STEPS_PER_EPOCH / max(1, steps_per_epoch)))
    return PAPER_ARCH_LR * scale


def field_help() -> dict[str, dict[str, Any]]:
    """Field name -> {default, help, lo, hi, choices, group, type} for forms and the CLI."""
    out = {}
    for f in FIELDS.values():
        out[f.name] = {"default": f.default, "type": _type_name(f.name), **f.metadata,
                       "owner": OPTION_OWNERS.get(f.name, "")}
    return out
