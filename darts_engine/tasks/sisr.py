"""Single-image super-resolution (`sisr`): the trilevel SR search's task.

Wu, Huang, Kumar, Sukthanker, Timofte & Van Gool 2021, "Trilevel Neural Architecture Search for
Efficient Single Image Super-Resolution" (arXiv 2101.06658, §3), as coded in hanyao8/DA-NAS-SISR
(built on the first author's code): train_search.py `train` / `infer`, src/architect.py
`_backward_step`, src/model_search_flexible.py `NAS_GAN._loss` / `_criterion`.

- Both steps minimise the L1 distance between the SR output and the HR patch (`w_loss`).
- The w step adds the sandwich rule (`weight_terms`): besides the pass at the kernel widths
  Gumbel-sampled from α, one pass at the narrowest and one at the widest widths, so every
  slimmable width keeps being trained (`NAS_GAN._loss`: sampled + max + min).
- The α step adds the order term on the network level (`order_weight` × `order_loss`, the
  tail of each path goes first) and the FLOPs term: `flops_weight` × the expected FLOPs of the
  supernet under its mixing weights, in GFLOPs for one 1280×720 HR output (`alpha_terms`).
- After each evaluation the FLOPs weight is doubled when the derived network is above
  `flops_max`, halved below `flops_min` (train_search.py: the `flops_weight` update after
  `infer`), so its FLOPs stay in the band; the weight is per-run state, checkpointed.
- Metrics: PSNR / SSIM on the Y channel with a `scale`-pixel border cropped, on fixed centre
  crops of the test images (train/srmetrics.py), with bicubic's PSNR as the reference line;
  the derived network's PSNR with inherited weights (the discretisation gap is the
  difference to the supernet's), its parameters and FLOPs.
- Artifact per epoch: one test crop as LR (pixel-repeated) | bicubic | SR | HR, with the PSNR
  of each panel against HR.

Deviation: the reference evaluates the FLOPs band on the derived network every few epochs
(`eval_epoch`); we do it after every epoch, on the same derived network the page shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from ..config import ConfigError, declare_option
from ..events import artifact, metric
from ..model.trilevel import derive_network, expected_flops, flops, n_params
from ..registries import DATASETS
from ..train.presets import PRESETS, Preset
from ..train.setup import current_genotype
from ..train.srdata import SR_SOURCES, SR_TEST_SETS, SRSource, bicubic_up, load_sr_data
from ..train.srmetrics import psnr_y, ssim_y
from .base import Batch, Task, register

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..model.supernet import Supernet
    from ..train.setup import SearchSetup

HR_720P = (720, 1280)      # FLOPs are quoted for one 1280×720 HR output, as SR papers do
STRIP_HR = 48              # the image strip's HR crop (pixels), cut to a multiple of the scale

_OWNER = "task sisr"
declare_option(_OWNER, "scale", 2, "Super-resolution: upscaling factor (×2, ×3 or ×4).",
               lo=2, hi=4, group="task")
declare_option(_OWNER, "lr_patch", 24, "Super-resolution: LR training patch size in pixels "
               "(the HR patch is lr_patch × scale).", lo=4, hi=512, group="task")
declare_option(_OWNER, "patches_per_epoch", 512, "Super-resolution: random training patches per "
               "epoch in each half (steps = patches_per_epoch / batch_size).", lo=1,
               hi=10_000_000, group="task")
declare_option(_OWNER, "eval_crop", 96, "Super-resolution: HR size of the fixed centre crop of "
               "each test image that PSNR / SSIM are measured on (a multiple of scale).",
               lo=12, hi=4096, group="task")
declare_option(_OWNER, "sr_test", "", "Super-resolution: the test images (builtin, set5, set14, "
               "div2k-valid; empty = the dataset's own).", group="task")
declare_option(_OWNER, "order_weight", 1.0, "Super-resolution: weight of the network-level "
               "order loss Σ(γ[k+1] − γ[k]) in the α step (0 = off).", lo=0.0, hi=1000.0,
               group="task")
declare_option(_OWNER, "flops_weight", 0.0, "Super-resolution: initial weight of the expected "
               "GFLOPs (one 1280×720 output) in the α step: FLOPs pressure (0 = off).",
               lo=0.0, hi=1000.0, group="task")
declare_option(_OWNER, "flops_min", 0.0, "Super-resolution: lower end of the FLOPs band "
               "(GFLOPs at 720p): below it the FLOPs weight is halved after an epoch (0 = no "
               "lower end).", lo=0.0, hi=1e6, group="task")
declare_option(_OWNER, "flops_max", 0.0, "Super-resolution: upper end of the FLOPs band "
               "(GFLOPs at 720p): above it the FLOPs weight is doubled after an epoch (0 = no "
               "band: the weight stays).", lo=0.0, hi=1e6, group="task")
declare_option(_OWNER, "sr_residual", False, "Super-resolution: the network adds its output to "
               "the bicubic upscaling (a global skip, VDSR-style) instead of the reference's "
               "tanh image; lets a small CPU search start at bicubic's PSNR.", group="task")
declare_option(_OWNER, "sandwich", True, "Super-resolution: the w step also trains the "
               "narrowest and the widest kernel widths (sandwich rule).", group="task")


SR_PAIRS = "LR/HR image pairs"   # what an SR dataset holds (the task's data_kind)


class SRDataset:
    """An SR source (train/srdata.py `SR_SOURCES`) as a `dataset` choice; config.py refuses it
    under a task that reads another `kind` of data."""

    kind = SR_PAIRS

    def __init__(self, key: str, source: SRSource) -> None:
        self.key, self.source = key, source


SR_DATASETS = {"sr-photos": "builtin", "div2k": "div2k"}  # dataset name -> SR_SOURCES key
for _name, _key in SR_DATASETS.items():
    DATASETS.register(_name, SRDataset(_key, SR_SOURCES[_key]),
                      "super-resolution photos built in: 10 training photos from scikit-image "
                      "and scikit-learn, 5 others as the Set5-like test set (no download)"
                      if _key == "builtin" else
                      "DIV2K's 800 training images from data_root (DIV2K/DIV2K_train_HR), read "
                      "and never downloaded; tested on DIV2K's validation images or set5/set14")


def _gflops(value: torch.Tensor | float) -> torch.Tensor | float:
    return value / 1e9


def _lr_720p(scale: int) -> tuple[int, int]:
    return HR_720P[0] // scale, HR_720P[1] // scale


class SuperResolution(Task):
    def check_config(self, cfg: SearchConfig) -> None:
        if cfg.dataset not in SR_DATASETS:
            raise ConfigError(f"dataset must be one of {', '.join(SR_DATASETS)} for the sisr "
                              f"task, got {cfg.dataset!r}", field="dataset")
        if cfg.sr_test and cfg.sr_test not in SR_TEST_SETS:
            raise ConfigError(f"sr_test must be empty or one of {', '.join(SR_TEST_SETS)}, got "
                              f"{cfg.sr_test!r}", field="sr_test")
        if cfg.eval_crop % cfg.scale:
            raise ConfigError(f"eval_crop must be a multiple of scale ({cfg.scale}), got "
                              f"{cfg.eval_crop}", field="eval_crop")
        if cfg.flops_max and cfg.flops_min > cfg.flops_max:
            raise ConfigError(f"flops_min must be <= flops_max ({cfg.flops_max:g}), got "
                              f"{cfg.flops_min:g}", field="flops_min")
        for name in ("gap_every", "hessian_every"):
            if getattr(cfg, name):
                raise ConfigError(f"{name} measures classification accuracy / its Hessian and is "
                                  f"not available for the sisr task yet; set it to 0 (the "
                                  f"derived network's PSNR is recorded every epoch instead)",
                                  field=name)

    def load_data(self, cfg: SearchConfig, device: torch.device) -> Any:
        key = SR_DATASETS[cfg.dataset]
        data = load_sr_data(key, cfg.data_root, cfg.scale, cfg.lr_patch, cfg.batch_size,
                            cfg.patches_per_epoch, cfg.train_portion, cfg.seed, cfg.split_seed,
                            device, augment=cfg.augment, eval_crop=cfg.eval_crop,
                            limit=cfg.data_limit)
        if cfg.sr_test and cfg.sr_test != SR_SOURCES[key].test:
            raise ConfigError(f"sr_test {cfg.sr_test!r}: this build measures on the dataset's "
                              f"own test images ({SR_SOURCES[key].test}); leave sr_test empty",
                              field="sr_test")
        return data

    def model_options(self, cfg: SearchConfig) -> dict[str, Any]:
        return {"scale": cfg.scale, "residual": cfg.sr_residual}

    def w_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.l1_loss(outputs, batch[1])

    def batch_metrics(self, outputs: torch.Tensor, batch: Batch,
                      split: str) -> dict[str, torch.Tensor]:
        scale = batch[1].shape[-1] // batch[0].shape[-1]
        psnr = psnr_y(outputs.detach(), batch[1], scale).mean()
        return {"train_psnr" if split == "train" else "val_psnr": psnr}

    # --- the per-run hooks -----------------------------------------------------------------
    def start(self, s: SearchSetup) -> None:
        lr, hr = next(iter(s.data.held_out.ordered()))
        bicubic = bicubic_up(lr, s.cfg.scale)
        s.task_state.update(flops_weight=float(s.cfg.flops_weight),
                            bicubic_psnr=float(psnr_y(bicubic, hr, s.cfg.scale).mean()),
                            bicubic_ssim=float(ssim_y(bicubic, hr, s.cfg.scale).mean()))

    def weight_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        if not s.cfg.sandwich:
            return None
        total = None
        for mode in ("min", "max"):
            with s.model.widths_as(mode):
                term = self.w_loss(s.model(batch[0]), batch)
            total = term if total is None else total + term
        return total

    def alpha_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        total = None
        if s.cfg.order_weight:
            total = s.cfg.order_weight * s.model.order_loss()
        weight = s.task_state.get("flops_weight", 0.0)
        if weight:
            g = _gflops(expected_flops(s.model, s.model.mixing_weights(), _lr_720p(s.cfg.scale)))
            total = weight * g if total is None else total + weight * g
        return total

    @torch.no_grad()
    def evaluate(self, model: Supernet, data: Any) -> tuple[float, dict[str, float]]:
        was_training = model.training
        model.eval()
        loss_sum, psnr, ssim, n = 0.0, 0.0, 0.0, 0
        for lr, hr in data.held_out.ordered():
            sr = model(lr)
            scale = data.scale
            loss_sum += float(F.l1_loss(sr, hr, reduction="sum")) / hr[0].numel()
            psnr += float(psnr_y(sr, hr, scale).sum())
            ssim += float(ssim_y(sr, hr, scale).sum())
            n += len(hr)
        model.train(was_training)
        n = max(n, 1)
        return loss_sum / n, {"val_psnr": psnr / n, "val_ssim": ssim / n}

    @torch.no_grad()
    def end_epoch(self, s: SearchSetup, epoch: int, metrics: dict[str, float]
                  ) -> dict[str, float]:
        net = self.derived(s)
        was_training = s.model.training
        net.eval()
        psnr, n = 0.0, 0
        for lr, hr in s.data.held_out.ordered():
            psnr += float(psnr_y(net(lr), hr, s.cfg.scale).sum())
            n += len(hr)
        s.model.train(was_training)
        g = float(_gflops(flops(net, _lr_720p(s.cfg.scale))))
        weight = s.task_state.get("flops_weight", 0.0)
        if s.cfg.flops_max and weight:
            if g > s.cfg.flops_max:
                weight *= 2
            elif g < s.cfg.flops_min:
                weight /= 2
            s.task_state["flops_weight"] = weight
        return {"derived_psnr": psnr / max(n, 1), "derived_gflops": g,
                "derived_params": float(n_params(net)), "flops_weight": weight,
                "bicubic_psnr": s.task_state["bicubic_psnr"],
                "bicubic_ssim": s.task_state["bicubic_ssim"]}

    def derived(self, s: SearchSetup) -> torch.nn.Module:
        """The derived network of the supernet as it is, inheriting its weights."""
        return derive_network(s.model, s.space.parse(current_genotype(s)))

    @torch.no_grad()
    def epoch_artifacts(self, s: SearchSetup) -> dict[str, np.ndarray]:
        scale = s.cfg.scale
        lr, hr = next(iter(s.data.held_out.ordered()))
        size = min(STRIP_HR, hr.shape[-1]) // scale * scale
        hr = hr[:1, :, :size, :size]
        lr = lr[:1, :, :size // scale, :size // scale]
        was_training = s.model.training
        s.model.eval()
        sr = s.model(lr).clamp(0, 1)
        s.model.train(was_training)
        panels = torch.cat([lr.repeat_interleave(scale, -1).repeat_interleave(scale, -2),
                            bicubic_up(lr, scale), sr, hr])        # (4, 3, H, W)
        scores = psnr_y(panels, hr.expand_as(panels), scale)
        return {"sr_strip": panels.permute(0, 2, 3, 1).float().cpu().numpy(),
                "sr_strip_psnr": scores.float().cpu().numpy()}


STRIP_PANELS = ("LR (pixels repeated)", "bicubic", "SR (supernet)", "HR")

SISR = register(SuperResolution(
    "sisr", "Single-image super-resolution",
    "L1 on both steps (the w step with the width sandwich, the α step with the order and "
    "FLOPs terms); PSNR / SSIM on the Y channel against bicubic",
    metrics=(metric("train_psnr", "training PSNR", unit="dB", split="train"),
             metric("val_psnr", "validation PSNR", unit="dB", headline=True),
             metric("val_ssim", "validation SSIM"),
             metric("bicubic_psnr", "bicubic PSNR", unit="dB", reference_for="val_psnr"),
             metric("bicubic_ssim", "bicubic SSIM", reference_for="val_ssim"),
             metric("derived_psnr", "derived network PSNR", unit="dB"),
             metric("derived_gflops", "derived network GFLOPs (720p)", unit="GFLOPs",
                    higher_is_better=False),
             metric("derived_params", "derived network parameters", unit="K",
                    higher_is_better=False, scale=1e-3),
             metric("flops_weight", "FLOPs weight", higher_is_better=False)),
    artifacts=(artifact("sr_strip", "image_strip", "a test crop: " + " | ".join(STRIP_PANELS),
                        panels=STRIP_PANELS, scores="sr_strip_psnr"),
               artifact("sr_strip_psnr", "image_strip_scores", "PSNR of each panel against HR",
                        of="sr_strip")),
    spaces=("trilevel-sr",), data_kind=SR_PAIRS))


# --- launch presets ---------------------------------------------------------------------------
# The CPU setting: a small supernet (nf 16, 4 cells of 3 ops, widths ½ ¾ 1, depth 1..4) on the
# built-in photos at ×2, Adam on the weights as the reference (lr raised for minutes, not
# days), sparsestmax so that the search ends one-hot and the derived network is the supernet.
_CPU = dict(task="sisr", space="trilevel-sr", dataset="sr-photos", scale=2, init_channels=16,
            lr_patch=24, batch_size=16, patches_per_epoch=512, epochs=14, algorithm="bilevel-1st",
            relaxation="sparsestmax", optimizer="adam", lr=1e-3, lr_min=1e-4, weight_decay=0.0,
            arch_lr=3e-4, arch_weight_decay=0.0, order_weight=1e-5, sr_residual=True,
            augment=True, alpha_every=8, name="Trilevel SR (CPU)")
SR_CPU_PRESET = "Trilevel SR (CPU, ×2, ~5 min)"
SR_COLLAPSE_PRESET = "Trilevel SR collapse: no warm-up, FLOPs pressure (CPU)"
SR_PAPER_PRESET = "Trilevel SR paper setting (×4, DIV2K, GPU)"
SR_MEASURED = """\
**Seed 2, both presets at once, one thread each** (`benchmarks/sr_collapse_pair.py`, 14 epochs,
~390 s each on a shared 2-core machine, median step 0.69 s):

- **With warm-up and the FLOPs band** the cell level keeps convolutions (6 of 12 slots skip at
  the end, parameter-free mass 0.50), the network level picks depth 2 (depth 4 for an epoch
  first), 1.03 GFLOPs per 720p output: **30.53 dB, +0.37 dB over bicubic** (30.16 dB).
- **Without warm-up, with fixed FLOPs pressure** every slot turns to `skip_connect` at the
  narrowest width and the depth stays 1 from the first epoch (parameter-free mass 0.30 → 1.00,
  0.50 GFLOPs): the derived network is conv_first → conv_last over bicubic. **30.47 dB,
  +0.31 dB**: on this small CPU setting the bicubic skip carries both runs, so the collapse is
  plain in the structure and the GFLOPs and only 0.06 dB in PSNR.
- Both end one-hot (sparsestmax), and the derived network's PSNR equals the supernet's.
"""
PRESETS[SR_CPU_PRESET] = Preset(
    "Trilevel super-resolution search on the built-in photos: cell ops, kernel widths and\n"
    "depth searched at once, a weight-only warm-up first, FLOPs kept in a band.\n"
    "Watch the pictures sharpen past bicubic and the α families become one-hot.",
    {**_CPU, "warmup_epochs": 5, "flops_weight": 0.05, "flops_min": 2.0, "flops_max": 8.0},
    indicator="pf_mass", measured=SR_MEASURED,
    reproduce=".venv/bin/python benchmarks/sr_collapse_pair.py")
PRESETS[SR_COLLAPSE_PRESET] = Preset(
    "The same search without the warm-up and with a fixed FLOPs pressure: the cheapest\n"
    "ops win before the convolutions have learnt anything (skip_connect, narrow widths,\n"
    "depth 1) and the PSNR stays at bicubic's. Compare it with the CPU preset.",
    {**_CPU, "warmup_epochs": 0, "flops_weight": 0.05, "flops_min": 0.0, "flops_max": 0.0,
     "name": "Trilevel SR collapse (CPU)"},
    indicator="skip_mass", measured=SR_MEASURED,
    reproduce=".venv/bin/python benchmarks/sr_collapse_pair.py")
PRESETS[SR_PAPER_PRESET] = Preset(
    "The paper's search (Wu et al. 2021, DA-NAS-SISR configs/config_search_original.py):\n"
    "nf 64, ×4, 100 weight-only epochs then 100 of search, Adam, tanh output, DIV2K.\n"
    "Needs DIV2K under data_root and a GPU; the CPU space has 4 cells of 3 ops (see README).",
    {**_CPU, "scale": 4, "init_channels": 64, "dataset": "div2k", "lr_patch": 32,
     "batch_size": 3, "patches_per_epoch": 1725, "epochs": 200, "warmup_epochs": 100,
     "lr": 2e-4, "lr_min": 1e-5, "weight_decay": 5e-4, "order_weight": 1e-5,
     "flops_weight": 1e-11, "flops_min": 100.0, "flops_max": 400.0, "sr_residual": False,
     "device": "cuda", "eval_crop": 192, "name": "Trilevel SR paper"})
