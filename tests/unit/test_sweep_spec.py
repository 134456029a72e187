"""Sweep specs (runs/sweep.py): parsing the CLI's text, the expansion order, and every refusal
naming its field before anything is queued (in-process `cli.main` for the CLI's bad input)."""

from __future__ import annotations

import json

import pytest

from darts_engine.cli import main
from darts_engine.config import ConfigError, field_help
from darts_engine.runs.store import RunStore
from darts_engine.runs.sweep import (
    MAX_RUNS,
    SweepSpec,
    expand,
    grid_from_texts,
    parse_grid,
    parse_seeds,
    point_label,
)

TINY = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space", "nb201",
        "--init-channels", "4", "--cells", "1", "--device", "cpu", "--epochs", "1"]


# --- parsing ---------------------------------------------------------------------------------
def test_parse_grid_keeps_the_values_as_text_in_order():
    assert parse_grid("arch_lr=3e-4,1e-3,3e-3") == ("arch_lr", ["3e-4", "1e-3", "3e-3"])
    assert parse_grid(" arch-weight-decay = 0 , 1e-3 ") == ("arch_weight_decay", ["0", "1e-3"])


@pytest.mark.parametrize("text, field", [("arch_lr", "grid"), ("=1,2", "grid"),
                                         ("arch_lr=", "grid"), ("arch_lr=1,,2", "arch_lr")])
def test_parse_grid_refuses_malformed_text(text, field):
    with pytest.raises(ConfigError) as e:
        parse_grid(text)
    assert e.value.field == field


def test_one_field_twice_in_the_grid_is_refused():
    assert list(grid_from_texts(["lr=0.1", "arch_lr=1e-3"])) == ["lr", "arch_lr"]
    with pytest.raises(ConfigError, match="arch_lr is given twice") as e:
        grid_from_texts(["arch_lr=1e-3", "arch_lr=3e-3"])
    assert e.value.field == "arch_lr"


@pytest.mark.parametrize("text, seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,1,5", [0, 1, 5]),
                                         ("0-2,7", [0, 1, 2, 7]), ("3", [3]), ("2-2", [2])])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text, words", [("4-0", "runs backwards; write 0-4"),
                                         ("-1", "integers >= 0"), ("a", "integers >= 0"),
                                         ("1.5", "integers >= 0"), ("", "integers >= 0"),
                                         ("0-100000", "at most 500 runs")])
def test_parse_seeds_refuses(text, words):
    with pytest.raises(ConfigError, match=words) as e:
        parse_seeds(text)
    assert e.value.field == "seeds"


# --- expansion -------------------------------------------------------------------------------
def test_expand_is_the_grid_product_in_order_then_seed_with_typed_values():
    spec = SweepSpec(base={"space": "nb201", "arch_lr": 0.5, "epochs": 3},
                     grid={"arch_lr": ["3e-4", "1e-3"], "arch_weight_decay": ["0", "1e-3"]},
                     seeds=[7, 1])
    runs = expand(spec)
    want = [(3e-4, 0.0, 7), (3e-4, 0.0, 1), (3e-4, 1e-3, 7), (3e-4, 1e-3, 1),
            (1e-3, 0.0, 7), (1e-3, 0.0, 1), (1e-3, 1e-3, 7), (1e-3, 1e-3, 1)]
    assert [(r.point["arch_lr"], r.point["arch_weight_decay"], r.seed) for r in runs] == want
    for r in runs:
        assert list(r.point) == ["arch_lr", "arch_weight_decay"]  # no seed in the point
        assert (r.config.arch_lr, r.config.arch_weight_decay, r.config.seed) == \
            (r.point["arch_lr"], r.point["arch_weight_decay"], r.seed)  # the grid wins
        assert (r.config.space, r.config.epochs) == ("nb201", 3)  # the base stays
        assert isinstance(r.point["arch_weight_decay"], float)


def test_an_explicit_list_of_points_keeps_its_order_and_the_fields_order():
    spec = SweepSpec(base={}, points=[{"lr": "0.1", "arch_lr": "1e-3"},
                                      {"arch_lr": "3e-3", "lr": "0.05"}], seeds=[0])
    runs = expand(spec)
    assert [r.point for r in runs] == [{"lr": 0.1, "arch_lr": 1e-3}, {"lr": 0.05, "arch_lr": 3e-3}]
    assert [list(r.point) for r in runs] == [["lr", "arch_lr"]] * 2


def test_a_plug_in_option_can_be_swept():
    """Plug-ins declare their own fields (config.declare_option): the sweep asks field_help."""
    assert "pc_k" in field_help()
    runs = expand(SweepSpec(base={"method": "pc-darts", "init_channels": 8},
                            grid={"pc_k": ["2", "4"]}, seeds=[0]))
    assert [r.config.pc_k for r in runs] == [2, 4]


def test_the_spec_round_trips_through_json_with_its_grid_order():
    spec = SweepSpec(base={"epochs": 2}, grid={"lr": [0.1], "arch_lr": [1e-3, 3e-3]}, seeds=[0, 1])
    back = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict(), sort_keys=True)))
    assert back == spec and list(back.grid) == ["lr", "arch_lr"]


def test_point_label():
    assert point_label({"arch_lr": 0.001, "space": "nb201", "cells": 2}) == \
        "arch_lr=0.001, space=nb201, cells=2"


@pytest.mark.parametrize("kwargs, field, words", [
    ({"grid": {"seed": ["1", "2"]}}, "seed", "seeds have their own option"),
    ({"grid": {"arch_lrr": ["1e-3"]}}, "arch_lrr", "did you mean arch_lr"),
    ({"grid": {"zzz": ["1"]}}, "zzz", "unknown config field 'zzz'"),
    ({"grid": {"arch_lr": ["20"]}}, "arch_lr", "grid point arch_lr=20, seed 0: arch_lr must be "
                                               "<= 10"),
    ({"grid": {"epochs": ["x"]}}, "epochs", "epochs must be an int"),
    ({"grid": {"space": ["nb201", "resnet"]}}, "space", "space must be one of"),
    ({"grid": {"arch_lr": ["1e-3", "0.001"]}}, "arch_lr", "lists one value twice"),
    ({"grid": {"arch_lr": []}}, "arch_lr", "has no values"),
    ({"grid": {}}, "grid", "no grid"),
    ({"grid": {"lr": ["0.1"]}, "points": [{"lr": "0.1"}]}, "grid", "not both"),
    ({"grid": {}, "points": []}, "grid", "list of points is empty"),
    ({"grid": {}, "points": [{"lr": "0.1"}, {"arch_lr": "1"}]}, "grid", "the same fields"),
    ({"grid": {}, "points": [{"lr": "0.1"}, {"lr": ".1"}]}, "lr", "listed twice"),
    ({"grid": {"lr": ["0.1"]}, "seeds": []}, "seeds", "no seeds"),
    ({"grid": {"lr": ["0.1"]}, "seeds": [0, 1, 0]}, "seeds", "0 given twice"),
    ({"grid": {"lr": ["0.1"]}, "seeds": [-1]}, "seeds", "integers >= 0"),
    ({"grid": {"lr": ["0.1"]}, "base": {"batch_size": 0}}, "batch_size",
     "the base config: batch_size must be >= 1"),
    ({"grid": {"lr": ["0.1"]}, "base": {"bogus": 1}}, "bogus", "the base config: unknown"),
    ({"grid": {"arch_lr": [str(k * 1e-4) for k in range(1, 252)]}, "seeds": [0, 1]}, "grid",
     f"502 runs (251 points × 2 seeds); at most {MAX_RUNS}"),
    ({"grid": {"lr": ["0.1"] * 30, "arch_lr": ["1"] * 30}}, "grid", "the grid has 900 points"),
])
def test_refusals_name_the_field_and_the_fix(kwargs, field, words):
    with pytest.raises(ConfigError) as e:
        expand(SweepSpec(**{"base": {}, "seeds": [0], **kwargs}))
    assert e.value.field == field and words in str(e.value), str(e.value)


def test_the_cap_itself_is_allowed():
    runs = expand(SweepSpec(base={}, grid={"arch_lr": [str(k * 1e-4) for k in range(1, 251)]},
                            seeds=[0, 1]))
    assert len(runs) == MAX_RUNS


# --- the CLI: bad input exits 2 naming the field, with nothing queued ------------------------
@pytest.mark.parametrize("args, words", [
    (["--grid", "seed=1,2"], "seeds have their own option"),
    (["--grid", "arch_lrr=1e-3"], "did you mean arch_lr"),
    (["--grid", "arch_lr=20"], "arch_lr must be <= 10"),
    (["--grid", "arch_lr=1e-3", "--seeds", "4-0"], "seeds: the range '4-0' runs backwards"),
    (["--grid", "arch_lr=1e-3", "--seed", "3"], "--seed sets one seed; a sweep lists its seeds"),
    ([], "the sweep has no grid"),
    (["--grid", "arch_lr=1e-3", "--max-concurrent", "0"], "max_concurrent must be an integer"),
    (["--grid", "arch_lr=1e-3", "--ray-address", "auto"], "--ray-address needs --executor ray"),
    (["--grid", "arch_lr=1e-3", "--batch-size", "4000"], "batch_size must be <="),
    (["--grid", "batch_size=32,100"], "batch_size must be <= 64"),  # the data check, run 2
    (["--grid", "arch_lr=1e-3", "--base", "/nonexistent/run.toml"], "does not exist"),
])
def test_cli_bad_input_exits_2_and_queues_nothing(capsys, home, args, words):
    code = main(["--home", str(home), "sweep", *TINY, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert words in err and "Traceback" not in err
    store = RunStore(home)
    assert store.list_runs().empty and store.list_sweeps().empty
