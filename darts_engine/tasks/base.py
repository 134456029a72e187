"""The task seam: what a search is trained *for*, separate from how α and w are updated.

A `Task` supplies, for one run:
- its data streams (`load_data`: the w stream and the held-out stream, `train.data.SearchData`);
  an RL task collects its own rollouts instead, through the same hook, and hands the loop
  streams that yield rollout batches;
- the loss of the w step and the loss of the α step (`w_loss`, `alpha_loss`), called by the
  update rules through `StepContext.task` (train/algorithms.py);
- its metrics (`metrics`: `events.metric` dicts, exactly one the headline) and their per-batch
  values (`batch_metrics`, 0-d tensors, for the step curves and the epoch's train-split means);
- its evaluation of the held-out split (`evaluate`: loss and the held-out metrics by name);
- which spaces it serves (`spaces`, None: every space) and the per-epoch artifacts it declares
  (`artifacts`, `events.artifact` dicts) with their arrays (`epoch_artifacts`).

A task with more to say about the search (super-resolution: the width sandwich of the w
step, the order and FLOPs terms of the α step, a FLOPs weight adapted after each evaluation)
uses the per-run hooks: `model_options` (supernet options, e.g. the upscaling factor),
`weight_terms` / `alpha_terms` (extra loss terms, added where the method's are), `end_epoch`
(after the held-out evaluation: more metrics, per-run state updates) and `start`; the per-run
state lives in `SearchSetup.task_state` (checkpointed with the run), never on the task object,
which all runs share.

α stays (edges × ops) per cell type whatever the task, so the heatmap, the DAG and the
indicators serve every task unchanged. Register with `register(task)`; `TASKS` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..config import LABELLED_IMAGES
from ..events import check_metrics
from ..registries import TASKS

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..model.supernet import Supernet
    from ..train.data import SearchData
    from ..train.setup import SearchSetup

Batch = Any  # what the task's streams yield; classification: (x, y)


@dataclass(frozen=True)
class Task:
    """The defaults are abstract where a task must decide; subclasses override them."""

    name: str
    label: str
    description: str
    metrics: tuple[dict[str, Any], ...]
    artifacts: tuple[dict[str, Any], ...] = ()
    spaces: tuple[str, ...] | None = None   # None: every registered space
    data_kind: str = LABELLED_IMAGES        # what its datasets hold (a dataset's `kind`)

    def __post_init__(self) -> None:
        check_metrics(self.metrics)

    def load_data(self, cfg: SearchConfig, device: torch.device) -> SearchData:
        raise NotImplementedError

    def outputs(self, model: Supernet, batch: Batch,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The forward pass on a batch's inputs (`weights`: mixing weights, None = the model's)."""
        return model(batch[0], weights)

    def w_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def alpha_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.w_loss(outputs, batch)

    def batch_metrics(self, outputs: torch.Tensor, batch: Batch,
                      split: str) -> dict[str, torch.Tensor]:
        """The metrics of `split` ("train" or "held_out") on one batch, as 0-d tensors."""
        return {}

    def evaluate(self, model: Supernet, data: SearchData) -> tuple[float, dict[str, float]]:
        """The held-out loss and the held-out metrics by name, on the whole split."""
        raise NotImplementedError

    def epoch_artifacts(self, s: SearchSetup) -> dict[str, np.ndarray]:
        return {}

    def check_config(self, cfg: SearchConfig) -> None:
        """Checks of the task's own fields (ConfigError naming the field)."""

    def model_options(self, cfg: SearchConfig) -> dict[str, Any]:
        """Options for the space's supernet builder, e.g. {"scale": 2}."""
        return {}

    def start(self, s: SearchSetup) -> None:
        """After the search is built: fill `s.task_state` (restored from a checkpoint after)."""

    def weight_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        """An extra term of the w step's loss (None: none)."""
        return None

    def alpha_terms(self, s: SearchSetup, batch: Batch) -> torch.Tensor | None:
        """An extra term of the α step's loss (None: none)."""
        return None

    def end_epoch(self, s: SearchSetup, epoch: int, metrics: dict[str, float]
                  ) -> dict[str, float]:
        """After the epoch's evaluation (`metrics` so far): more metric values by name."""
        return {}

    def headline(self) -> dict[str, Any]:
        return next(m for m in self.metrics if m["headline"])

    def serves(self, space: str) -> bool:
        """A task that lists its spaces serves those; one that lists none (classification)
        serves every space no other task lists as its own (not the SR space, say)."""
        if self.spaces is not None:
            return space in self.spaces
        return not any(space in (t.spaces or ()) for name in TASKS
                       if (t := TASKS.get(name)) is not self)


def register(task: Task) -> Task:
    return TASKS.register(task.name, task, f"{task.label}: {task.description}")
