"""DARTS variants ("methods"), registered by name, and how they compose with update rules.

Two orthogonal choices make a search:
- `algorithm` (algorithms.py) is the *update rule*: how one step turns batches into w and α
  updates (bi-level first / second order, single-level).
- `method` (this registry) is what a DARTS variant changes *around* the update rule:
  - the supernet it builds (PC-DARTS: partial channels and edge normalisation, pcdarts.py),
  - the mixing weights of the weight step (SDARTS-RS, MS-DARTS: `StepContext.w_step_mixing`,
    smoothing.py),
  - the loop between epochs (LFR-DARTS: derive, freeze and deepen per stage, lfr.py).
  Every method runs under every update rule; each module says which one its paper used.
  (`relaxation`, softmax or sparsemax, is a third, independent choice: relaxations.py.)

A method is a `Method` (name, label, config check) whose `start(cfg)` returns a `MethodRun`:
the per-run hooks the search loop calls. The defaults change nothing, which is plain DARTS:

    build_search:  model_options() -> supernet options; attach(setup) after the optimisers
    each epoch:    begin_epoch(setup, epoch) after lr / update_alpha are set; events it returns
                   are reported
    epoch record:  extras(setup) -> arrays stored with the epoch (EpochRecord.extras)
    checkpoints:   state_dict() / load_state_dict(setup, state) (before optimiser states load)

Paper hyper-parameters come as launch presets (`offer_preset`), never as hidden defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..registries import METHODS
from ..train.setup import MethodRun

if TYPE_CHECKING:
    from ..config import SearchConfig


def _no_check(cfg: SearchConfig) -> None:
    pass


@dataclass(frozen=True)
class Method:
    name: str
    label: str                                   # for people, e.g. "LFR-DARTS (approximation)"
    description: str
    start: Callable[[SearchConfig], MethodRun]   # the per-run hooks
    check: Callable[[SearchConfig], None] = _no_check  # raises ConfigError naming the field

    def check_config(self, cfg: SearchConfig) -> None:
        self.check(cfg)


def register(method: Method) -> Method:
    return METHODS.register(method.name, method, f"{method.label}: {method.description}")


def get_method(name: str) -> Method:
    return METHODS.get(name)


def offer_preset(title: str, description: str, overrides: dict[str, Any], **fields: Any) -> None:
    """Add a launch preset (presets.PRESETS, which the launch form lists) for a method.

    fields: any other Preset field (pair=, indicator=, measured=, reproduce=), passed through;
    an unknown name raises TypeError naming it."""
    from ..train.presets import PRESETS, Preset

    PRESETS[title] = Preset(description, overrides, **fields)


register(Method(
    "darts", "DARTS", "the plain supernet and loop: every edge mixes all candidate ops by "
                      "its α, and the update rule alone decides the run (Liu, Simonyan & Yang "
                      "2019, §2; quark0/darts cnn/model_search.py Network). Left alone, bi-level "
                      "DARTS often collapses to parameter-free ops", MethodRun))
