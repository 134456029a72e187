"""Helpers shared by the test tiers (plain functions; fixtures are in conftest.py). Test modules
import from here, never from one another."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from darts_engine import SPACES, SearchConfig, search
from darts_engine.model.fastcell import darts_cell_supported, nb201_cell_supported
from darts_engine.model.genotype import CellTopology
from darts_engine.model.spaces import DataShape
from darts_engine.model.supernet import DartsCell, NB201Cell, Supernet
from darts_engine.runs.store import RunStore

# fast and plain supernets (unit/test_fastpath.py, integration/test_spaces_s1.py)
RTOL = 1e-5
CLASSES = 5
_CELLS = (DartsCell, NB201Cell)



def tiny(**overrides):
    """A search config that finishes in about a second on one CPU thread."""
    from darts_engine import SearchConfig

    base = dict(space="nb201", algorithm="bilevel-1st", dataset="shapes", data_limit=128,
                batch_size=32, epochs=1, init_channels=4, cells=1, device="cpu", seed=0)
    base.update(overrides)
    if base["space"] != "nb201" and "cells" not in overrides:
        base["cells"] = 3
    return SearchConfig(**base)


def record(store: RunStore, cfg: SearchConfig, name: str) -> str:
    """A real search recorded into the store, as the run manager would."""
    run_id = store.create_run(cfg.to_dict(), name=name)
    rec = store.recorder(run_id)
    search(cfg, rec, checkpoint_dir=store.run_dir(run_id))
    rec.close()
    return run_id


def manager():
    from pages import common

    return common.manager()


# --- the seam's contract: a task and a method the engine and the pages have never heard of ----
TOY_TASK, TOY_METHOD = "toy-regression", "toy-method"
TOY_HEADLINE = "held-out −MSE"
TOY_KINDS = ("toy_image_grid", "toy_scalar")   # artifact kinds no page has a renderer for
TOY_OPTION = "toy_weight"   # the toy method's own config field (config.declare_option)


def register_toys() -> Callable[[], None]:
    """Registers TOY_TASK (regress the label as a number: MSE, headline −MSE, a per-epoch
    grid) and TOY_METHOD (an α-step L2 term and a per-epoch scalar); returns the callable
    that unregisters both."""
    from darts_engine import METHODS, TASKS
    from darts_engine.config import declare_option, withdraw_option
    from darts_engine.events import artifact, metric
    from darts_engine.methods.base import Method
    from darts_engine.tasks.base import Task
    from darts_engine.train.data import load_search_data
    from darts_engine.train.setup import MethodRun

    class ToyRegression(Task):
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
            return (artifact("toy_scale", TOY_KINDS[1], "a toy scalar"),)

        def extras(self, s):
            return {"toy_scale": np.array([0.5], np.float32)}

        def alpha_loss_terms(self, s, batch):
            return sum((a ** 2).sum() for a in s.model.arch_parameters()) * s.cfg.toy_weight

    TASKS.register(TOY_TASK, ToyRegression(
        TOY_TASK, "Toy regression", "MSE on the label as a number",
        metrics=(metric("train_neg_mse", "training −MSE", split="train"),
                 metric("neg_mse", TOY_HEADLINE, headline=True)),
        artifacts=(artifact("toy_grid", TOY_KINDS[0], "a toy grid"),)))
    METHODS.register(TOY_METHOD, Method(TOY_METHOD, "Toy", "an α term and an artifact", ToyRun))
    declare_option(f"method {TOY_METHOD}", TOY_OPTION, 1e-3,
                   "Toy: weight of the α-step L2 term.", lo=0.0, hi=1.0)

    def unregister() -> None:
        TASKS.unregister(TOY_TASK)
        METHODS.unregister(TOY_METHOD)
        withdraw_option(TOY_OPTION)

    return unregister


def launch_from_form(at: AppTest, home, numbers: dict, choices: dict, texts: dict) -> tuple:
    """Fill the Launch form (number inputs, select boxes, text inputs, by field name), press
    Start, wait for the run to end; returns (run id, its store, the run as get_run gives it)."""
    for field, value in numbers.items():
        at.number_input(key=f"launch_{field}").set_value(value)
    for field, value in choices.items():
        at.selectbox(key=f"launch_{field}").set_value(value)
    for field, value in texts.items():
        at.text_input(key=f"launch_{field}").set_value(value)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    run_id = at.query_params["run"]
    manager().wait(run_id, timeout=120)
    store = RunStore(home)
    return run_id, store, store.get_run(run_id)


def plotly_figures(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def heatmaps(at: AppTest) -> list[dict]:
    return [f for f in plotly_figures(at) if f["data"] and f["data"][0]["type"] == "heatmap"]


def array(value) -> np.ndarray:
    """A trace array from figure JSON: Plotly sends NumPy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        if "shape" in value:
            a = a.reshape([int(s) for s in str(value["shape"]).split(",")])
        return a
    return np.asarray(value)


def cli(home, *args, timeout=120, env=None, text=True):
    """The CLI in a subprocess. text=False keeps the bytes: text mode turns `\\r` into `\\n`."""
    return subprocess.run([sys.executable, "-m", "darts_engine", "--home", str(home), *args],
                          capture_output=True, text=text, timeout=timeout, check=False,
                          env={**os.environ, **(env or {})})


def cell_spaces() -> list[str]:
    """The spaces of classification cells built from MixedOp edges (not trilevel SR)."""
    return [s for s in SPACES.names() if isinstance(SPACES.get(s).topology, CellTopology)]


def fast_and_plain(space: str, size: int = 8, **options) -> tuple[Supernet, Supernet]:
    """(fast, plain) supernets of one space with identical parameters and buffers."""
    sp = SPACES.get(space)
    cells = 1 if space == "nb201" else 3
    torch.manual_seed(0)
    fast = sp.build(4, cells, DataShape(2, size, CLASSES), seed=0, impl="fast", **options)
    plain = sp.build(4, cells, DataShape(2, size, CLASSES), seed=0, impl="plain", **options)
    plain.load_state_dict(fast.state_dict())
    if "mixed_op" not in options:  # the comparison must exercise the batched forward
        assert all(runs_fast(c) for c in fast.modules() if isinstance(c, _CELLS))
    return fast, plain


def runs_fast(cell: DartsCell | NB201Cell) -> bool:
    return cell._fast(darts_cell_supported if isinstance(cell, DartsCell)
                      else nb201_cell_supported)


def assert_close(a: torch.Tensor, b: torch.Tensor, scale: float, what: str) -> None:
    """‖a − b‖ <= RTOL·‖b‖, plus a floor for tensors that are pure rounding noise (the
    gradient of a conv bias that a BN right after it cancels is ~1e-9 in both paths)."""
    err = (a.double() - b.double()).norm().item()
    assert err <= RTOL * b.double().norm().item() + 1e-6 * scale, f"{what}: error {err:.3g}"


def assert_same_state(fast: Supernet, plain: Supernet) -> None:
    """Parameters and buffers (BN running statistics, num_batches_tracked) agree."""
    sf, sp = fast.state_dict(), plain.state_dict()
    assert sf.keys() == sp.keys()
    for k in sp:
        if sp[k].is_floating_point():  # a running mean can be ~1e-9: floor at 1e-6 absolute
            assert_close(sf[k], sp[k], max(1.0, sp[k].norm().item()), k)
        else:
            assert torch.equal(sf[k], sp[k]), k


def loss_and_grads(model: Supernet, batch, seed: int = 5) -> tuple[torch.Tensor, list]:
    torch.manual_seed(seed)  # the `noise` op draws from the global RNG
    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(batch[0]), batch[1])
    loss.backward()
    return loss.detach(), [p.grad for p in model.parameters()]


def truth_csv(path, tests: dict[str, dict[str, float]], seeds: int = 3):
    """A truth CSV in the export format (truth/table.py export_csv) with the given test
    accuracies per arch string (dataset -> percent), each the mean of `seeds` seeds."""
    from darts_engine.truth.base import TruthEntry
    from darts_engine.truth.table import export_csv

    class ByHand:
        def archs(self):
            return iter(tests)

        def query(self, arch):
            return TruthEntry(arch, tests[arch], seeds={d: seeds for d in tests[arch]})

    ByHand.path = path
    export_csv(ByHand(), path)
    return path
