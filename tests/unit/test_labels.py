"""What the pages call things (darts_engine/runs/labels.py), on hand-made keys and rows."""

from __future__ import annotations

from darts_engine.monitor.alerts import rule_docs
from darts_engine.monitor.indicators import indicator_docs
from darts_engine.runs.labels import (alert_rule, headline_indicators, indicator_help,
                                      indicator_keys, indicator_label, run_label)


def test_indicator_keys_come_in_registry_order_and_skip_what_is_not_an_indicator():
    columns = ["val_acc", "ind_skip_mass.normal", "ind_disc_gap", "ind_not_registered",
               "ind_pf_mass.reduce", "ind_pf_mass.normal"]
    order = [d["name"] for d in indicator_docs()]
    keys = indicator_keys(columns)
    assert sorted(keys) == sorted(["skip_mass.normal", "disc_gap", "pf_mass.reduce",
                                   "pf_mass.normal"])
    ranks = [order.index(k.partition(".")[0]) for k in keys]
    assert ranks == sorted(ranks)
    assert keys.index("pf_mass.normal") < keys.index("pf_mass.reduce")  # cells by name


def test_headline_indicators_keep_the_spaces_headline_cell_and_whole_network_ones():
    keys = ["skip_mass.normal", "skip_mass.reduce", "disc_gap", "argmax_flips.normal"]
    assert headline_indicators(keys, "darts") == ["skip_mass.normal", "disc_gap"]
    assert headline_indicators(["skip_mass.cell"], "nb201") == ["skip_mass.cell"]
    assert headline_indicators(["skip_mass.normal"], "no-such-space") == []


def test_labels_name_the_cell_except_nb201s_only_cell():
    title = next(d["title"] for d in indicator_docs() if d["name"] == "skip_mass")
    assert indicator_label("skip_mass.normal") == f"{title} (normal cell)"
    assert indicator_label("skip_mass.cell") == title
    assert "[Guide](/guide#indicators)" in indicator_help("skip_mass.normal")


def test_alert_rule_by_name_and_an_unknown_rule_by_its_name_alone():
    first = rule_docs()[0]
    assert alert_rule(first["name"]) == first
    assert alert_rule("gone") == {"name": "gone", "title": "gone", "source": "",
                                  "explanation": ""}


def test_run_label_falls_back_to_the_algorithm_when_the_run_has_no_name():
    row = {"id": "r1", "config": {"space": "nb201", "dataset": "digits", "algorithm": "single"}}
    assert run_label({**row, "name": "pair"}) == "pair — nb201/digits (r1)"
    assert run_label(row) == "single — nb201/digits (r1)"
