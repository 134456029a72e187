"""A built search: data, supernet, update rule, optimisers and the method's hooks.

`build_search(cfg)` resolves the config (cells, arch lr), loads the task's data on the
configured device, builds the supernet from the space with the method's options under a lock (the weight
init draws from torch's global RNG, so the same seed gives the same weights whatever other runs
do meanwhile), and makes the two optimisers (quark0 cnn/train_search.py `main`: SGD on the
weights, Adam on α). The loop (search.py), the methods and the monitor all work on the
`SearchSetup` it returns.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..config import SearchConfig, resolve_arch_lr
from ..events import Event
from ..model.spaces import SearchSpace, get_space
from ..model.supernet import Supernet
from ..registries import ALGORITHMS, METHODS, TASKS
from .algorithms import Algorithm, Batch, StepContext
from .data import SearchData

_BUILD_LOCK = threading.Lock()  # weight init draws from torch's global RNG

class MethodRun:
    """One run's hooks into the search loop, given by its method variant (methods/base.py says
    when the loop calls each); the defaults change nothing, which is plain DARTS."""

    def __init__(self, cfg: SearchConfig) -> None:
        self.cfg = cfg

    def model_options(self) -> dict[str, Any]:
        """Supernet options, e.g. `mixed_op=<factory>` (model/supernet.py `MixedOp` signature)."""
        return {}

    def attach(self, s: SearchSetup) -> None:
        pass

    def artifacts(self) -> tuple[dict[str, Any], ...]:
        """The per-epoch arrays `extras` returns, declared (`events.artifact` dicts)."""
        return ()

    def weight_loss_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        """An extra term added to the w step's loss (None: none)."""
        return None

    def alpha_loss_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        """An extra term added to the α step's loss, e.g. a β-DARTS / DrNAS regulariser."""
        return None

    def begin_epoch(self, s: SearchSetup, epoch: int) -> list[Event]:
        return []

    def extras(self, s: SearchSetup) -> dict[str, np.ndarray]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, s: SearchSetup, state: dict[str, Any]) -> None:
        pass


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def alphas_numpy(model: Supernet) -> dict[str, np.ndarray]:
    """Raw α as recorded: −inf on the ops an edge does not have (S1), see `Supernet.logits`."""
    return {t: a.detach().float().cpu().numpy().copy() for t, a in model.logits().items()}


@dataclass
class SearchSetup:
    """A built search: data, model, optimisers. Tests and benchmarks use this directly."""

    cfg: SearchConfig                # resolved: cells and arch_lr filled in
    space: SearchSpace
    algorithm: Algorithm
    data: SearchData
    model: Supernet
    ctx: StepContext
    device: torch.device
    method: MethodRun                # the method variant's hooks for this run (methods/)
    task: Any                        # the run's tasks/base.py `Task` (tasks sit above train)
    task_state: dict[str, Any] = field(default_factory=dict)  # the task's per-run state


def make_optimisers(cfg: SearchConfig, model: Supernet) -> tuple[torch.optim.Optimizer,
                                                                 torch.optim.Adam]:
    """SGD (or Adam, `optimizer`) on the trainable weights, Adam on the searched α (and β);
    cfg must be resolved."""
    w_opt: torch.optim.Optimizer
    if cfg.optimizer == "adam":   # DA-NAS-SISR train_search.py: Adam, betas (0.9, 0.999)
        w_opt = torch.optim.Adam(model.weight_parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                 weight_decay=cfg.weight_decay)
    else:
        w_opt = torch.optim.SGD(model.weight_parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, nesterov=cfg.nesterov)
    a_opt = torch.optim.Adam(model.arch_parameters(), lr=cfg.arch_lr,
                             betas=(cfg.arch_beta1, cfg.arch_beta2),
                             weight_decay=cfg.arch_weight_decay)
    return w_opt, a_opt


def current_genotype(s: SearchSetup, alphas: dict[str, np.ndarray] | None = None) -> str:
    """The genotype of the model as it is: its α (and PC-DARTS β), under the run's relaxation."""
    alphas = alphas_numpy(s.model) if alphas is None else alphas
    betas = {t: b.detach().float().cpu().numpy() for t, b in s.model.betas.items()}
    return str(s.space.derive(alphas, betas or None, s.cfg.relaxation))


def build_search(cfg: SearchConfig, data: SearchData | None = None) -> SearchSetup:
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    task = TASKS.get(cfg.task)
    if data is None:
        data = task.load_data(cfg, device)
    space = get_space(cfg.space)
    algorithm: Algorithm = ALGORITHMS.get(cfg.algorithm)
    cfg = cfg.replace(cells=cfg.cells or space.default_cells,
                      arch_lr=resolve_arch_lr(cfg, data.train.steps_per_epoch))
    method = METHODS.get(cfg.method).start(cfg)
    with _BUILD_LOCK:  # same seed -> same weights whatever other runs do meanwhile
        torch.manual_seed(cfg.seed)
        model = space.build(cfg.init_channels, cfg.cells, data.shape, cfg.seed,
                            relaxation=cfg.relaxation, impl=cfg.impl,
                            **task.model_options(cfg), **method.model_options())
    model.to(device)
    ctx = StepContext(model, *make_optimisers(cfg, model), cfg.lr, cfg.grad_clip, task,
                      step_order=cfg.step_order)
    setup = SearchSetup(cfg, space, algorithm, data, model, ctx, device, method, task)
    ctx.weight_terms = _terms(
        method.weight_loss_terms if _overrides(method, "weight_loss_terms", MethodRun) else None,
        task.weight_terms if _overrides(task, "weight_terms") else None, setup)
    ctx.alpha_terms = _terms(
        method.alpha_loss_terms if _overrides(method, "alpha_loss_terms", MethodRun) else None,
        task.alpha_terms if _overrides(task, "alpha_terms") else None, setup)
    task.start(setup)
    method.attach(setup)
    return setup


def _overrides(obj: Any, name: str, base: type | None = None) -> bool:
    """Whether `obj`'s class overrides the hook `name` of `base` (default: the task base,
    which is the class whose `name` attribute comes from tasks/base.py)."""
    if base is None:
        base = next(c for c in reversed(type(obj).__mro__) if name in vars(c))
    return getattr(type(obj), name) is not getattr(base, name)


def _terms(method_hook: Any, task_hook: Any, setup: SearchSetup) -> Any:
    """One `TermsFn` from the method's and the task's extra-term hooks (None when neither)."""
    hooks = [h for h in (method_hook, task_hook) if h is not None]
    if not hooks:
        return None

    def terms(_model: Supernet, batch: Batch) -> torch.Tensor | None:
        total = None
        for hook in hooks:
            term = hook(setup, batch)
            if term is not None:
                total = term if total is None else total + term
        return total
    return terms
