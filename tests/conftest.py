"""Shared fixtures. Tests run on CPU with small real searches; nothing is mocked."""

from __future__ import annotations

import os

import pytest
import torch

APP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "app.py")

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


@pytest.fixture
def app(home):
    """Opens the dashboard in Streamlit's AppTest (optionally on a page, with query
    parameters). Afterwards the cached run manager is released, which stops and joins its
    search threads, and no DARTboard thread may be left running."""
    import threading

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def open_app(page: str | None = None, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params.update(query)
        at.run()
        if page:
            at.switch_page(page).run()
        assert not at.exception, at.exception
        return at

    yield open_app
    st.cache_resource.clear()
    st.cache_data.clear()
    for t in threading.enumerate():
        if t.name == "dartboard-warm-up":
            t.join(120)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("dartboard-")]


