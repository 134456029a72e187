"""Config validation: every bad value gets a message naming the field, the value and the fix."""

from __future__ import annotations

import dataclasses

import pytest

from darts_engine import ConfigError, SearchConfig
from darts_engine.config import field_help
from darts_engine.registries import by_name
from darts_engine.train.data import check_config


@pytest.mark.parametrize("changes, field, words", [
    ({"epochs": -5}, "epochs", ">= 1"),
    ({"batch_size": 0}, "batch_size", ">= 1"),
    ({"space": "nope"}, "space", "darts"),
    ({"algorithm": "magic"}, "algorithm", "bilevel-1st"),
    ({"dataset": "imagenet-22k"}, "dataset", "digits"),
    ({"lr": 0.0}, "lr", "> 0"),
    ({"lr": float("nan")}, "lr", "finite"),
    ({"train_portion": 1.0}, "train_portion", "<= 0.95"),
    ({"device": "tpu"}, "device", "cuda:N"),
    ({"init_channels": 5}, "init_channels", "even"),
    ({"lr_min": 1.0}, "lr_min", "<= lr"),
    ({"alert_action": "panic"}, "alert_action", "alert, stop"),
    ({"step_order": "beta-first"}, "step_order", "alpha-first, weights-first"),
    ({"step_order": "weights-first", "algorithm": "single"}, "step_order", "alpha-first"),
])
def test_bad_values_name_the_field(changes, field, words):
    with pytest.raises(ConfigError) as e:
        SearchConfig(**changes)
    assert e.value.field == field
    assert field in str(e.value) and words in str(e.value)


def test_strings_are_coerced_with_field_names():
    cfg = SearchConfig.from_dict({"epochs": "3", "augment": "yes", "lr": "0.1"})
    assert (cfg.epochs, cfg.augment, cfg.lr) == (3, True, 0.1)
    with pytest.raises(ConfigError, match="epochs must be an int, got 'three'"):
        SearchConfig.from_dict({"epochs": "three"})
    with pytest.raises(ConfigError, match="unknown config field"):
        SearchConfig.from_dict({"epoch": 3})


def test_data_checks_need_no_files(tmp_path):
    with pytest.raises(ConfigError, match="batch_size must be <= 898") as e:
        check_config(SearchConfig(dataset="digits", batch_size=1000))
    assert e.value.field == "batch_size"
    with pytest.raises(ConfigError, match="data_root .* does not exist") as e:
        check_config(SearchConfig(dataset="cifar10", data_root=str(tmp_path / "missing")))
    assert e.value.field == "data_root"


def test_toml_and_json_round_trip(tmp_path):
    cfg = SearchConfig(space="nb201", epochs=7, arch_lr=0.01)
    p = tmp_path / "run.json"
    import json

    p.write_text(json.dumps(cfg.to_dict()))
    assert SearchConfig.from_file(p) == cfg
    t = tmp_path / "run.toml"
    t.write_text('space = "nb201"\nepochs = 7\narch_lr = 0.01\n')
    assert SearchConfig.from_file(t) == cfg


def test_every_field_has_help_and_a_group():
    for name, meta in field_help().items():
        assert meta["help"], name
        assert meta["group"], name


def test_choices_name_a_registry_so_the_form_offers_a_selectbox():
    """The launch form and the CLI list a field's registry entries (alert_action too)."""
    fields = field_help()
    for name, meta in fields.items():
        if meta["choices"]:
            assert meta["default"] in by_name(meta["choices"]), name
    assert by_name(fields["alert_action"]["choices"]).names() == ["alert", "stop"]


def test_a_plugin_option_behaves_like_a_field_and_lives_with_its_plugin():
    from darts_engine.config import OPTION_OWNERS, declare_option, withdraw_option

    assert OPTION_OWNERS["pc_k"] == "method pc-darts"       # declared in methods/pcdarts.py
    assert "pc_k" not in {f.name for f in dataclasses.fields(SearchConfig)}
    declare_option("method test", "test_knob", 2, "A test knob.", lo=1, hi=5)
    try:
        cfg = SearchConfig(test_knob=3)
        assert cfg.test_knob == 3 and SearchConfig().test_knob == 2
        assert cfg.to_dict()["test_knob"] == 3
        assert SearchConfig.from_dict(cfg.to_dict()) == cfg != SearchConfig()
        assert cfg.replace(epochs=2).test_knob == 3
        assert SearchConfig.from_dict({"test_knob": "4"}).test_knob == 4   # coerced
        meta = field_help()["test_knob"]
        assert (meta["type"], meta["lo"], meta["owner"]) == ("int", 1, "method test")
        with pytest.raises(ConfigError, match="test_knob must be <= 5, got 9") as e:
            SearchConfig(test_knob=9)
        assert e.value.field == "test_knob"
        with pytest.raises(ValueError, match="already declared by method test"):
            declare_option("method other", "test_knob", 1, "again")
        with pytest.raises(ValueError, match="already declared"):
            declare_option("method other", "epochs", 1, "a core field")
    finally:
        withdraw_option("test_knob")
    with pytest.raises(ConfigError, match="unknown config field"):
        SearchConfig.from_dict({"test_knob": 3})
    with pytest.raises(AttributeError, match="no field 'test_knob'"):
        SearchConfig().test_knob  # noqa: B018
