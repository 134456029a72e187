"""The seam's contract: a task and a method defined here, in the test, register, run a real
search through `search()`, are recorded with their declaration, and the store gives back their
metric columns and artifacts. Nothing in the engine knows their names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darts_engine import METHODS, TASKS, search
from darts_engine.events import artifact, metric
from darts_engine.methods.base import Method
from darts_engine.runs.store import RunStore
from darts_engine.tasks.base import Task
from darts_engine.train.data import load_search_data
from darts_engine.train.setup import MethodRun
from tests.helpers import tiny


class ToyRegression(Task):
    """Regress the label as a number from the first output: MSE, headline neg_mse."""

    def load_data(self, cfg, device):
        return load_search_data(cfg, device)

    def w_loss(self, outputs, batch):
        return torch.mean((outputs[:, 0] - batch[1].float()) ** 2)

    def batch_metrics(self, outputs, batch, split):
        name = "train_neg_mse" if split == "train" else "neg_mse"
        return {name: -self.w_loss(outputs.detach(), batch)}

    @torch.no_grad()
    def evaluate(self, model, data):
        losses = [float(self.w_loss(model(x), (x, y))) for x, y in data.held_out.ordered()]
        return float(np.mean(losses)), {"neg_mse": -float(np.mean(losses))}

    def epoch_artifacts(self, s):
        return {"toy_grid": np.arange(6, dtype=np.float32).reshape(2, 3)}


class ToyRun(MethodRun):
    def artifacts(self):
        return (artifact("toy_scale", "toy_scalar", "a toy scalar"),)

    def extras(self, s):
        return {"toy_scale": np.array([0.5], np.float32)}

    def alpha_loss_terms(self, s, batch):
        return sum((a ** 2).sum() for a in s.model.arch_parameters()) * 1e-3


@pytest.fixture
def toys():
    TASKS.register("toy-regression", ToyRegression(
        "toy-regression", "Toy regression", "MSE on the label as a number",
        metrics=(metric("train_neg_mse", "training −MSE", split="train"),
                 metric("neg_mse", "held-out −MSE", headline=True)),
        artifacts=(artifact("toy_grid", "toy_image_grid", "a toy grid"),)))
    METHODS.register("toy-method", Method("toy-method", "Toy", "an α term and an artifact",
                                          ToyRun))
    yield
    TASKS.unregister("toy-regression")
    METHODS.unregister("toy-method")


def test_a_toy_task_and_method_run_and_are_recorded_with_their_declaration(toys, tmp_path):
    cfg = tiny(task="toy-regression", method="toy-method", epochs=2)
    store = RunStore(tmp_path / "home")
    run_id = store.create_run(cfg.to_dict())
    rec = store.recorder(run_id)
    result = search(cfg, rec)
    rec.close()
    assert result.status == "completed", result.error
    run = store.get_run(run_id)
    assert run["task"] == "toy-regression"
    assert [m["name"] for m in run["metrics"] if m["headline"]] == ["neg_mse"]
    assert [(a["name"], a["kind"]) for a in run["artifacts"]] == [
        ("toy_grid", "toy_image_grid"), ("toy_scale", "toy_scalar")]
    assert result.history[-1]["neg_mse"] < 0 and "val_acc" not in result.history[-1]
    _, grids = store.extras_history(run_id, "toy_grid")
    assert grids.shape == (2, 2, 3)
