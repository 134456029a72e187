"""Shared fixtures. Tests run on CPU with small real searches; nothing is mocked."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("DARTBOARD_HOME", os.path.join(os.path.dirname(__file__), ".runs-never"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: longer than a few seconds; CI skips these")
    config.addinivalue_line("markers", "browser: drives a real Chromium through Playwright")
    torch.set_num_threads(1)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh run-store folder, also exported as DARTBOARD_HOME for code that reads it."""
    d = tmp_path / "runs"
    monkeypatch.setenv("DARTBOARD_HOME", str(d))
    return d


def tiny(**overrides):
    """A search config that finishes in about a second on one CPU thread."""
    from darts_engine import SearchConfig

    base = dict(space="nb201", algorithm="bilevel-1st", dataset="shapes", data_limit=128,
                batch_size=32, epochs=1, init_channels=4, cells=1, device="cpu", seed=0)
    base.update(overrides)
    if base["space"] != "nb201" and "cells" not in overrides:
        base["cells"] = 3
    return SearchConfig(**base)
