"""Image classification, today's behaviour: cross-entropy for both steps, accuracy as metrics.

The data are the registered datasets' seeded halves (train/data.py `load_search_data`); the
held-out evaluation is one pass over the whole held-out split with model.eval() (running BN
statistics), as quark0 cnn/train_search.py `infer`. Accuracies are recorded as fractions and
shown in % (`scale` 100).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from ..events import metric
from ..train.data import load_search_data
from .base import Batch, Task, register

if TYPE_CHECKING:
    from ..config import SearchConfig
    from ..model.supernet import Supernet
    from ..train.data import SearchData


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.detach().argmax(dim=1) == y).float().mean()


class Classification(Task):
    def load_data(self, cfg: SearchConfig, device: torch.device) -> SearchData:
        return load_search_data(cfg, device)

    def w_loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch[1])

    def batch_metrics(self, outputs: torch.Tensor, batch: Batch,
                      split: str) -> dict[str, torch.Tensor]:
        return {"train_acc" if split == "train" else "val_acc": accuracy(outputs, batch[1])}

    @torch.no_grad()
    def evaluate(self, model: Supernet, data: SearchData) -> tuple[float, dict[str, float]]:
        was_training = model.training
        model.eval()
        loss_sum, correct, n = 0.0, 0.0, 0
        for x, y in data.held_out.ordered():
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(1) == y).sum())
            n += len(y)
        model.train(was_training)
        return loss_sum / max(n, 1), {"val_acc": correct / max(n, 1)}


CLASSIFICATION = register(Classification(
    "classification", "Image classification",
    "cross-entropy on both steps; accuracy on the training batches and the held-out split",
    metrics=(metric("train_acc", "training accuracy", unit="%", split="train", scale=100.0),
             metric("val_acc", "validation accuracy", unit="%", headline=True,
                    split="held_out", scale=100.0))))
