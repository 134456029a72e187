"""The Launch form: its dataset folder defaults to the data root itself, so what a run stores is
the folder the user put the dataset in (README: "datasets load from ./data"); fixed choices
are select boxes, never free text."""

from __future__ import annotations

import pytest

from darts_engine.config import field_help
from darts_engine.registries import by_name
from darts_engine.runs.store import RunStore
from tests.helpers import manager


def test_the_default_dataset_folder_is_the_data_root_not_a_folder_inside_it(app, home,
                                                                           tmp_path, monkeypatch):
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("DARTBOARD_DATA", str(root))
    at = app()
    assert at.text_input(key="launch_data_root").value == str(root.resolve())
    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    assert at.text_input(key="launch_data_root").value == str(root.resolve())
    at.number_input(key="launch_epochs").set_value(1)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    run_id = at.query_params["run"]
    manager().wait(run_id, timeout=120)
    # Before: the config's "./data" was read inside the data root, giving <root>/data.
    assert RunStore(home).get_run(run_id)["config"]["data_root"] == str(root.resolve())


def test_a_relative_folder_typed_in_the_form_stays_relative_to_the_data_root(app, home,
                                                                           tmp_path, monkeypatch):
    root = tmp_path / "data"
    (root / "cifar").mkdir(parents=True)
    monkeypatch.setenv("DARTBOARD_DATA", str(root))
    at = app()
    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    at.text_input(key="launch_data_root").set_value("cifar")
    at.number_input(key="launch_epochs").set_value(1)
    at.form_submit_button[0].click().run()
    assert not at.exception and not at.error
    run_id = at.query_params["run"]
    manager().wait(run_id, timeout=120)
    assert RunStore(home).get_run(run_id)["config"]["data_root"] == str((root / "cifar").resolve())


@pytest.mark.parametrize("field, names", [("step_order", ["alpha-first", "weights-first"]),
                                          ("optimizer", ["sgd", "adam"])])
def test_fixed_choices_are_select_boxes_with_each_choice_explained(app, field, names):
    assert by_name(field_help()[field]["choices"]).names() == names
    box = app().selectbox(key=f"launch_{field}")
    assert list(box.options) == names and box.value == names[0]
    assert all(f"**{n}**" in box.help for n in names)
