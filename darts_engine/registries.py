"""The engine's registries. Modules register into these at import time.

`darts_engine/__init__.py` imports every registering module, so importing the package fills
them; the launch form, the CLI and parametrized tests read them.
"""

from __future__ import annotations

from typing import Any

from .registry import Registry

SPACES: Registry[Any] = Registry("space")
ALGORITHMS: Registry[Any] = Registry("algorithm")
DATASETS: Registry[Any] = Registry("dataset")
INDICATORS: Registry[Any] = Registry("indicator")
METHODS: Registry[Any] = Registry("method")
RELAXATIONS: Registry[Any] = Registry("relaxation")
ALERT_ACTIONS: Registry[Any] = Registry("alert action")
IMPLS: Registry[Any] = Registry("supernet implementation")
TRUTH: Registry[Any] = Registry("truth reader")
TASKS: Registry[Any] = Registry("task")
# Small fixed choices of core fields (config.py fills them), so the form and the CLI offer
# them like any registry choice instead of a free text box.
STEP_ORDERS: Registry[Any] = Registry("step order")
WEIGHT_OPTIMIZERS: Registry[Any] = Registry("weight optimiser")

_BY_NAME = {"space": SPACES, "algorithm": ALGORITHMS, "dataset": DATASETS,
            "indicator": INDICATORS, "method": METHODS, "relaxation": RELAXATIONS,
            "alert_action": ALERT_ACTIONS, "impl": IMPLS, "task": TASKS,
            "truth": TRUTH, "step_order": STEP_ORDERS, "optimizer": WEIGHT_OPTIMIZERS}


def by_name(kind: str) -> Registry[Any]:
    return _BY_NAME[kind]
