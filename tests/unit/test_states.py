"""The run lifecycle: one enum (runs/states.py) that the store, manager, CLI and pages ask."""

import pytest

from darts_engine.runs import schema, store
from darts_engine.runs.states import RunState, is_active, names


def test_every_state_is_either_active_or_final():
    for state in RunState:
        assert state.active != state.final


def test_the_lifecycle_as_the_store_and_manager_use_it():
    assert names("active") == ("queued", "running", "paused", "stopping")
    assert names("final") == ("completed", "stopped", "failed", "interrupted")
    assert names("resumable") == ("stopped", "failed", "interrupted")
    assert not RunState.COMPLETED.resumable           # nothing left to run
    assert not RunState.RUNNING.resumable             # its writer is still at it


def test_the_store_schema_spells_no_list_of_its_own():
    assert set(schema.ACTIVE) == {s.value for s in RunState if s.active}
    assert set(schema.STATUSES) == set(names())


def test_parse_takes_the_stored_string_and_names_the_field_on_bad_input():
    assert RunState.parse("paused") is RunState.PAUSED
    assert RunState.parse(RunState.FAILED) is RunState.FAILED
    assert str(RunState.STOPPED) == "stopped"
    with pytest.raises(ValueError, match=r"status must be one of queued, running.*'finished'"):
        RunState.parse("finished")
    with pytest.raises(ValueError, match=r"^run\.status must"):
        RunState.parse("done", field="run.status")


def test_is_active_on_strings_and_members():
    assert is_active("running") and is_active(RunState.QUEUED)
    assert not is_active("completed") and not is_active("no such state")


def test_names_rejects_an_unknown_group():
    with pytest.raises(ValueError, match="which must be"):
        names("finished")


def test_the_store_rejects_an_unknown_status_by_name(tmp_path):
    s = store.RunStore(tmp_path)
    with pytest.raises(store.StoreError, match="unknown run status 'done'; use one of queued"):
        s.create_run({"space": "x"}, status="done")
    run_id = s.create_run({"space": "x"}, status="queued")
    s.set_status(run_id, "failed", "boom")
    assert RunState.parse(s.get_run(run_id)["status"]).resumable
