"""Retraining a derived cell from scratch: the recipes and the loop.

Two recipes, each its reference's schedule, scaled for the CPU where the preset says so:
- `darts-eval`: quark0/darts cnn/train.py (Liu et al. 2019, §3.3): NetworkCIFAR, SGD lr 0.025
  cosine to 0, momentum 0.9, wd 3e-4, grad-norm clip 5, auxiliary head weight 0.4, drop-path
  ramped linearly to 0.2 (`model.drop_path_prob = args.drop_path_prob * epoch / args.epochs`),
  cutout 16 on 32×32 (utils.py `Cutout`).
- `nb201`: NAS-Bench-201's fixed schedule (Dong & Yang 2020, §2.3; AutoDL-Projects
  configs/nas-benchmark/hyper-opts/{12,200}E.config): TinyNetwork, SGD Nesterov lr 0.1,
  momentum 0.9, wd 5e-4, cosine to 0, 12 or 200 epochs, no clipping, no cutout.
Both step the cosine once per epoch (lr(e) evaluated at the start of epoch e).

`retrain(cfg, genotype_text, ...)` reports the same plain records as a search (events.py):
`RunStarted` declaring `train_acc` and the headline `test_acc`, one `EpochRecord` per epoch
(no α: `alphas={}`), `RunFinished`. It checks `control` between steps, checkpoints every epoch
and resumes exactly (same batches, cutout holes, drop-path draws and weights on the CPU).

Test accuracy is measured on a split the search never read (train/data.py `load_test_split`).
Cutout's length is 16 on 32×32 images, i.e. half the side; smaller images get half their side
(shapes 16×16: 8, digits 8×8: 4) unless `cutout_length` is set.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ConfigError
from ..events import EpochRecord, Event, LogRecord, RunFinished, RunStarted, metric
from ..model.genotype import DartsGenotype, Genotype, NB201Genotype, parse_genotype
from ..model.networks import NetworkCIFAR, TinyNetwork, count_parameters
from ..registries import DATASETS
from .checkpoint import load_checkpoint, save_checkpoint
from .data import BatchStream, RetrainSplit, load_test_split

CHECKPOINT_NAME = "retrain.pt"
METRICS = (metric("test_acc", "Test accuracy", unit="%", headline=True, split="held_out",
                  scale=100.0),
           metric("train_acc", "Train accuracy", unit="%", split="train", scale=100.0))


@dataclass(frozen=True)
class Recipe:
    name: str
    genotype: type          # the genotype kind the network is built from
    text: str               # the reference, and how the preset is scaled for the CPU
    values: dict[str, Any]  # field values of the preset


RECIPES = {
    "darts-eval": Recipe(
        "darts-eval", DartsGenotype,
        "DARTS evaluation network (quark0/darts cnn/train.py): SGD 0.025 cosine to 0, momentum "
        "0.9, wd 3e-4, clip 5, auxiliary head 0.4, drop-path ramped to 0.2 (never on identity), "
        "cutout. Scaled for the CPU: C=8 (paper 36), 8 cells (20), 10 epochs (600), batch 64 "
        "(96); cutout half the image side (16 of 32).",
        dict(init_channels=8, layers=8, epochs=10, batch_size=64, lr=0.025, momentum=0.9,
             nesterov=False, weight_decay=3e-4, grad_clip=5.0, auxiliary_weight=0.4,
             drop_path_prob=0.2, cutout=True)),
    "nb201": Recipe(
        "nb201", NB201Genotype,
        "NAS-Bench-201 schedule (AutoDL-Projects hyper-opts 12E/200E): TinyNetwork, SGD "
        "Nesterov 0.1 momentum 0.9 cosine to 0, wd 5e-4, the 12-epoch schedule. Scaled for the "
        "CPU: C=8 (benchmark 16), 2 cells per stage (5), batch 64 (256); set epochs=200 for "
        "the full schedule.",
        dict(init_channels=8, cells_per_stage=2, epochs=12, batch_size=64, lr=0.1, momentum=0.9,
             nesterov=True, weight_decay=5e-4, grad_clip=0.0, auxiliary_weight=0.0,
             drop_path_prob=0.0, cutout=False)),
}


@dataclass(frozen=True)
class RetrainConfig:
    """One retrain. Defaults are the `darts-eval` CPU preset; `preset(name)` gives either."""

    recipe: str = "darts-eval"
    dataset: str = "digits"
    data_root: str = "data"
    download: bool = False
    init_channels: int = 8
    layers: int = 8                 # darts-eval: cells in the network
    cells_per_stage: int = 2        # nb201: N
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 3e-4
    grad_clip: float = 5.0          # max gradient norm; 0 = no clipping
    auxiliary_weight: float = 0.4   # 0 = no auxiliary head
    drop_path_prob: float = 0.2     # final value of the linear ramp
    cutout: bool = True
    cutout_length: int = 0          # 0 = half the image side (16 on 32×32)
    augment: bool = True            # the dataset's crop / shift (train/data.py Augmentation)
    seed: int = 0
    device: str = "cpu"
    threads: int = 0                # torch CPU threads; 0 = torch's default

    def __post_init__(self) -> None:
        def bad(name: str, rule: str) -> ConfigError:
            return ConfigError(f"{name} must be {rule}, got {getattr(self, name)!r}", field=name)

        if self.recipe not in RECIPES:
            raise bad("recipe", f"one of {sorted(RECIPES)}")
        if self.dataset not in DATASETS:
            raise bad("dataset", f"one of {sorted(DATASETS.names())}")
        for name in ("init_channels", "layers", "cells_per_stage", "epochs", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise bad(name, "an integer >= 1")
        if self.recipe == "darts-eval" and self.layers < 3:
            raise bad("layers", ">= 3 (reductions sit at 1/3 and 2/3 of the depth)")
        for name in ("lr", "lr_min", "momentum", "weight_decay", "grad_clip",
                     "auxiliary_weight"):
            if not math.isfinite(getattr(self, name)) or getattr(self, name) < 0:
                raise bad(name, "a finite number >= 0")
        if self.lr <= 0 or self.lr_min > self.lr:
            raise bad("lr", f"> 0 and >= lr_min={self.lr_min}")
        if not 0.0 <= self.drop_path_prob < 1.0:
            raise bad("drop_path_prob", "in [0, 1)")
        for name in ("cutout_length", "seed", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise bad(name, "an integer >= 0")
        if self.device != "cpu" and not self.device.startswith(("cuda", "mps")):
            raise bad("device", "'cpu', 'cuda', 'cuda:N' or 'mps'")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrainConfig:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ConfigError(f"unknown retrain field(s): {', '.join(unknown)}; known: "
                              f"{', '.join(sorted(known))}", field=unknown[0])
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> RetrainConfig:
        return dataclasses.replace(self, **changes)


def preset(recipe: str, **overrides: Any) -> RetrainConfig:
    """The recipe's CPU-scale preset, with `overrides` on top."""
    if recipe not in RECIPES:
        raise ConfigError(f"recipe must be one of {sorted(RECIPES)}, got {recipe!r}",
                          field="recipe")
    return RetrainConfig(recipe=recipe, **{**RECIPES[recipe].values, **overrides})


def check_genotype(cfg: RetrainConfig, text: str) -> Genotype:
    """The genotype text, parsed and of the recipe's kind; ConfigError(field="genotype")."""
    try:
        g = parse_genotype(text)
    except ValueError as e:
        raise ConfigError(f"genotype: {e}", field="genotype") from None
    want = RECIPES[cfg.recipe].genotype
    if not isinstance(g, want):
        kind = "a DARTS Genotype(...)" if want is DartsGenotype else "an NB201 |op~j|+... string"
        raise ConfigError(f"genotype: recipe {cfg.recipe!r} retrains {kind}; got "
                          f"{text.strip()[:60]!r}. Pick the other recipe or paste that kind of "
                          f"genotype", field="genotype")
    return g


def build_network(cfg: RetrainConfig, g: Genotype, in_channels: int, image_size: int,
                  num_classes: int) -> nn.Module:
    if isinstance(g, DartsGenotype):
        return NetworkCIFAR(g, cfg.init_channels, cfg.layers, num_classes, in_channels,
                            image_size, auxiliary=cfg.auxiliary_weight > 0)
    return TinyNetwork(g, cfg.init_channels, cfg.cells_per_stage, num_classes, in_channels)


def cosine_lr(cfg: RetrainConfig, epoch: int) -> float:
    """lr(e) = η_min + ½(η − η_min)(1 + cos(π e / E)), at the start of epoch e."""
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs))


def cutout(x: torch.Tensor, length: int, g: torch.Generator) -> torch.Tensor:
    """quark0 utils.py `Cutout` per sample: zero a length×length square (clipped at the border)
    centred at a uniform pixel, on the normalised image."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=g).to(x.device)
    cx = torch.randint(0, w, (b,), generator=g).to(x.device)
    return x * cutout_mask(h, w, length, cy, cx)[:, None]


def cutout_mask(h: int, w: int, length: int, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """(B, H, W) of 1s with 0s where |row − cy| and |col − cx| fall in the hole
    [c − length//2, c + length//2), as quark0's np.clip'd y1:y2, x1:x2."""
    rows = torch.arange(h, device=cy.device)[None, :, None]
    cols = torch.arange(w, device=cx.device)[None, None, :]
    half = length // 2
    in_rows = (rows >= (cy - half)[:, None, None]) & (rows < (cy + half)[:, None, None])
    in_cols = (cols >= (cx - half)[:, None, None]) & (cols < (cx + half)[:, None, None])
    return (~(in_rows & in_cols)).float()


class Control(Protocol):
    """What the loop needs of search.py's SearchControl: `checkpoint()` blocks while paused and
    raises once a stop is requested."""

    @property
    def stop_requested(self) -> bool: ...

    def checkpoint(self) -> None: ...


class _Stop(Exception):
    pass


def _between_steps(control: Control | None) -> None:
    if control is None:
        return
    try:
        control.checkpoint()
    except Exception:
        if control.stop_requested:  # the control's own stop signal
            raise _Stop from None
        raise


@dataclass
class RetrainResult:
    status: str                      # completed | stopped | failed
    epochs_done: int
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch
    error: str = ""
    model: nn.Module | None = None   # the trained network (for tests and exports)


def _emit(on_event: Callable[[Event], None] | None, event: Event) -> None:
    if on_event is not None:
        on_event(event)


def _evaluate(model: nn.Module, stream: BatchStream) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for x, y in stream.ordered():
            logits, _ = model(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    return loss / len(stream), correct / len(stream)


def retrain(cfg: RetrainConfig, genotype_text: str,
            on_event: Callable[[Event], None] | None = None, control: Control | None = None,
            checkpoint_dir: str | Path | None = None, resume: bool = False) -> RetrainResult:
    """Train the genotype's discrete network from scratch. Bad input (the genotype, the data)
    raises ConfigError / DataError before anything runs; run failures come back as "failed"."""
    g = check_genotype(cfg, genotype_text)
    device = torch.device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    split: RetrainSplit = load_test_split(cfg.dataset, cfg.data_root, cfg.download)
    train = BatchStream(split.train, torch.arange(len(split.train.y)), cfg.batch_size, cfg.seed,
                        0, cfg.augment, device)
    test = BatchStream(split.test, torch.arange(len(split.test.y)), cfg.batch_size, cfg.seed, 1,
                       False, device)
    if train.steps_per_epoch < 1:
        raise ConfigError(f"batch_size must be <= {len(train)} (the {cfg.dataset} retrain "
                          f"training set), got {cfg.batch_size}", field="batch_size")
    shape = split.train.shape
    torch.manual_seed(cfg.seed)
    model = build_network(cfg, g, shape.in_channels, shape.image_size,
                          split.train.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    length = cfg.cutout_length or max(1, shape.image_size // 2)
    text = str(g)
    epoch, step, wall_offset = 0, 0, 0.0
    history: list[dict[str, float]] = []
    ckpt = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if resume and ckpt is not None and ckpt.exists():
        state = load_checkpoint(ckpt, map_location=device)
        if state["genotype"] != text or state["config"] != cfg.to_dict():
            raise ConfigError(f"checkpoint {ckpt} is of another retrain (genotype or config "
                              f"differ); resume it with its own, or start over", field="resume")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step, wall_offset = state["next_epoch"], state["step"], state["wall_time"]
        history = list(state["history"])
    _emit(on_event, RunStarted(cfg.to_dict(), str(device), count_parameters(model),
                               train.steps_per_epoch, (), {}, start_epoch=epoch,
                               task="retrain", metrics=METRICS))
    _emit(on_event, LogRecord(f"{RECIPES[cfg.recipe].text} Test split: {split.note}."))
    t_start = time.perf_counter() - wall_offset
    try:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            lr = cosine_lr(cfg, epoch)
            for group in opt.param_groups:
                group["lr"] = lr
            if isinstance(model, NetworkCIFAR):  # quark0 train.py: linear ramp from 0
                model.drop_path_prob = cfg.drop_path_prob * epoch / cfg.epochs
            holes = torch.Generator().manual_seed(cfg.seed * 1_000_003 + 2 * 7919 + epoch)
            model.train()
            loss_sum, correct, seen = 0.0, 0, 0
            for x, y in train.epoch(epoch):
                _between_steps(control)
                if cfg.cutout:
                    x = cutout(x, length, holes)
                logits, aux = model(x)
                loss = F.cross_entropy(logits, y)
                if aux is not None:
                    loss = loss + cfg.auxiliary_weight * F.cross_entropy(aux, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                step += 1
                loss_sum += float(loss.detach()) * len(y)
                correct += int((logits.detach().argmax(1) == y).sum())
                seen += len(y)
            test_loss, test_acc = _evaluate(model, test)
            metrics = {"test_acc": test_acc, "train_acc": correct / seen}
            wall = time.perf_counter() - t_start
            record = EpochRecord(epoch=epoch, step=step, train_loss=loss_sum / seen,
                                 val_loss=test_loss, lr=lr, epoch_time=time.perf_counter() - t0,
                                 wall_time=wall, alphas={}, genotype=text, metrics=metrics)
            history.append({"epoch": epoch, "train_loss": record.train_loss,
                            "test_loss": test_loss, **metrics})
            epoch += 1
            if ckpt is not None:
                save_checkpoint(ckpt, {
                    "model": model.state_dict(), "optimizer": opt.state_dict(),
                    "torch_rng": torch.get_rng_state(), "next_epoch": epoch, "step": step,
                    "wall_time": wall, "history": history, "genotype": text,
                    "config": cfg.to_dict()})
            _emit(on_event, record)
        status, error = "completed", ""
    except _Stop:
        status, error = "stopped", ""
    except Exception as e:  # a failing run must never take the caller down
        status, error = "failed", f"{type(e).__name__}: {e}"
        _emit(on_event, LogRecord(error, level="error", epoch=epoch))
    _emit(on_event, RunFinished(status, epoch, text, error))
    return RetrainResult(status, epoch, history, error, model)
