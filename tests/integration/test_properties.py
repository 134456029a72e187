"""Property-based: random configs never crash validation, the store or a 1-step search."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from darts_engine import SPACES, ConfigError, SearchConfig, search
from darts_engine.config import FIELDS, field_help
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from darts_engine.train.data import check_config

META = field_help()

# The only ways a validated config may fail its one-step search (search._describe_failure's
# texts): the loss blew up (an extreme lr), or the device ran out of memory.
EXPECTED_FAILURES = (r"NonFiniteLoss: training loss became (nan|inf|-inf)\b",
                     r"the GPU ran out of memory\.")


def _value(name: str) -> st.SearchStrategy:
    meta = META[name]
    junk = st.one_of(st.none(), st.text(max_size=8), st.lists(st.integers(), max_size=2))
    if meta["choices"]:
        from darts_engine.registries import by_name

        good = st.sampled_from(by_name(meta["choices"]).names())
        return st.one_of(good, good, st.text(max_size=10), junk)
    if meta["type"] == "bool":
        return st.one_of(st.booleans(), st.sampled_from(["yes", "no", "maybe", "1"]), junk)
    if meta["type"] == "int":
        return st.one_of(st.integers(-10, 100), st.integers(), st.floats(allow_nan=True),
                         st.text(max_size=5), junk)
    if meta["type"] == "float":
        return st.one_of(st.floats(-1, 2), st.floats(allow_nan=True, allow_infinity=True),
                         st.integers(-5, 5), st.text(max_size=5), junk)
    return st.one_of(st.text(max_size=30), junk)


configs = st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), max_size=8).flatmap(
    lambda d: st.fixed_dictionaries({k: _value(k) for k in d}))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs)
def test_validation_accepts_or_names_a_field(data):
    try:
        cfg = SearchConfig.from_dict(data)
        check_config(cfg)
    except ConfigError as e:
        assert e.field, str(e)
        assert e.field in str(e) or e.field == "config"
        return
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg  # a valid config round-trips


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    m = RunManager(RunStore(tmp_path_factory.mktemp("prop-runs")), max_concurrent=1)
    yield m
    m.shutdown()


@settings(max_examples=30, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(configs)
@example({"method": "lfr-darts"})     # 3 stages by default: one epoch would be refused
def test_rejected_configs_leave_no_run_and_valid_ones_search(manager, data):
    try:
        cfg = SearchConfig.from_dict(data)
    except ConfigError:
        return  # nothing could even be built, let alone launched
    try:
        check_config(cfg)
    except ConfigError:
        with pytest.raises(ConfigError):
            manager.launch(cfg)
        assert manager.store.list_runs().empty
        return
    # Shrink whatever was drawn to one cheap step on the built-in 8×8 digits.
    darts_like = SPACES.get(cfg.space).topology.darts_cell
    c = max(2, min(cfg.init_channels, 4))
    small = {"epochs": 1, "device": "cpu", "dataset": "digits", "threads": 1, "alpha_every": 1,
             "init_channels": c + (c % 2 if darts_like else 0),
             "cells": 3 if darts_like else 1, "batch_size": min(cfg.batch_size, 16)}
    cfg = _fewest_epochs(cfg, small)
    half = min(cfg.train_portion, 1 - cfg.train_portion)
    cfg = cfg.replace(data_limit=math.ceil(cfg.batch_size / half) + 2)
    check_config(cfg)
    result = search(cfg)
    # A config that passed validation completes its steps (or is stopped by an alert it asked
    # for); it may fail only for a reason a person can act on, said in words.
    if result.status == "failed":
        assert any(re.match(reason, result.error) for reason in EXPECTED_FAILURES), result.error
    elif result.status == "completed":
        assert result.epochs_done == cfg.epochs and result.genotype, result
    else:
        assert result.status == "stopped", result
        assert 1 <= result.epochs_done <= cfg.epochs and result.genotype, result


def _fewest_epochs(cfg: SearchConfig, small: dict) -> SearchConfig:
    """The shrunk config with the fewest epochs its method accepts (1 for most; LFR-DARTS needs
    one per stage): a method's own rule about epochs is not the test's to break."""
    for epochs in range(1, cfg.epochs + 1):
        try:
            return cfg.replace(**{**small, "epochs": epochs})
        except ConfigError as e:
            last = e
    raise last
