"""The page half of the seam's contract (issue 13, item 8): a task and a method defined in the
tests, never named in pages/, are chosen in the Launch form, run, and show on Live and Compare:
the headline metric by its declared label, artifact kinds no page draws by a one-line note."""

from __future__ import annotations

import pytest

from tests.helpers import (
    TOY_HEADLINE,
    TOY_KINDS,
    TOY_METHOD,
    TOY_OPTION,
    TOY_TASK,
    launch_from_form,
    record,
    register_toys,
    tiny,
)

FORM = {"epochs": 2, "data_limit": 64, "batch_size": 16, "init_channels": 4}


@pytest.fixture
def toys():
    unregister = register_toys()
    yield
    unregister()


def test_a_toy_task_and_method_launch_from_the_form_and_show_on_live_and_compare(app, home,
                                                                                  toys):
    at = app()
    at.selectbox(key="launch_preset").set_value("Quick look (seconds)").run()
    assert TOY_TASK in at.selectbox(key="launch_task").options  # the form's choices: TASKS
    run_id, store, run = launch_from_form(at, home, FORM,
                                          {"task": TOY_TASK, "method": TOY_METHOD},
                                          {"device": "cpu", TOY_OPTION: "0.5"})
    assert run["status"] == "completed" and run["epochs_done"] == 2, run["error"]
    assert (run["config"]["task"], run["config"]["method"]) == (TOY_TASK, TOY_METHOD)
    assert run["config"][TOY_OPTION] == 0.5     # the toy method's own field is in the form

    # Live: the declared headline where validation accuracy was; each unknown kind noted.
    at.run()
    assert not at.exception and at.selectbox(key="live_run").value == run_id
    epochs = store.epoch_metrics(run_id)
    (shown,) = [m for m in at.metric if m.label == f"Best {TOY_HEADLINE}"]
    # the epochs frame gets a column per declared metric name (engineer T2's part of the seam)
    assert shown.value == (f"{epochs['neg_mse'].max():.1f}" if "neg_mse" in epochs else "–")
    notes = [c.value for c in at.caption if c.value.startswith("Not drawn here")]
    assert len(notes) == len(TOY_KINDS)     # one line per kind no renderer draws
    for kind, label in zip(TOY_KINDS, ("a toy grid", "a toy scalar"), strict=True):
        assert any(f"`{kind}`" in n and label in n for n in notes), notes

    # Compare with a classification run: each run's own headline, "–" where it has none.
    other = record(store, tiny(epochs=1), "classification")
    at.switch_page("pages/compare.py")
    at.query_params["runs"] = f"{run_id},{other}"
    at.run()
    assert not at.exception
    compare_notes = [c.value for c in at.caption if c.value.startswith("Not drawn here")]
    assert len(compare_notes) == len(TOY_KINDS)     # the toy run's kinds; the other has none
    assert all(any(f"`{kind}`" in n for n in compare_notes) for kind in TOY_KINDS)
    table = at.dataframe[-1].value
    assert f"best {TOY_HEADLINE}" in table.index and "best validation accuracy" in table.index
    assert (table.loc["best validation accuracy"] != "–").sum() == 1   # only the other run's
    assert (table.loc[f"best {TOY_HEADLINE}"] == "–").sum() >= 1       # the other run has none
