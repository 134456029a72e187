"""A retrain is a run of its own kind in the same manager and store as searches: recorded
through the recorder with its kind, genotype and source in the config, no α, its declared
metrics; stopped and resumed through the manager it completes; the read model shows it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from darts_engine.config import ConfigError
from darts_engine.runs.kinds import RETRAIN, run_kind
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from darts_engine.runs.views import list_runs, load_view
from darts_engine.train.retrain import preset
from tests.helpers import tiny

NB201_CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def _cfg(epochs=2):
    return preset("nb201", epochs=epochs, init_channels=4, cells_per_stage=1, threads=1)


@pytest.fixture
def manager(home):
    m = RunManager(RunStore(home), max_concurrent=2, threads_per_run=1)
    yield m
    m.shutdown(timeout=60)
    assert m.executor.alive() == 0


def test_a_retrain_through_the_manager_is_recorded_as_a_retrain_run(manager):
    run_id = manager.launch_retrain(_cfg(), NB201_CONV, source_run="abc", source_epoch=3)
    manager.wait(run_id, timeout=300)
    run = manager.store.get_run(run_id)
    assert run["status"] == "completed", run["error"]
    assert run["epochs_done"] == 2 and run["ops"] == [] and run["edges"] == {}
    cfg = run["config"]
    assert run_kind(cfg) == RETRAIN and cfg["recipe"] == "nb201" and cfg["epochs"] == 2
    assert (cfg["genotype"], cfg["source_run"], cfg["source_epoch"]) == (NB201_CONV, "abc", 3)
    assert run["name"] == "retrain · nb201 of abc @ epoch 4"
    assert [m["name"] for m in run["metrics"] if m["headline"]] == ["test_acc"]
    view = load_view(manager.store, run_id)
    assert view.kind == RETRAIN and view.ops == () and view.edges == {} and view.alphas == {}
    acc = view.headline_values()
    assert acc.shape == (2,) and np.all((acc > 0) & (acc <= 1))
    assert {"train_acc", "train_loss", "val_loss"} <= set(view.epochs.columns)
    listing = list_runs(manager.store, manager.live_ids()).set_index("id")
    assert listing.loc[run_id, "kind"] == RETRAIN and listing.loc[run_id, "space"] == "nb201"
    assert listing.loc[run_id, "headline_best"] == pytest.approx(acc.max())


def test_searches_and_retrains_share_the_listing(manager):
    search_id = manager.launch(tiny(epochs=1))
    manager.wait(search_id, timeout=120)
    listing = list_runs(manager.store, manager.live_ids()).set_index("id")
    assert listing.loc[search_id, "kind"] == "search"
    assert listing.loc[search_id, "space"] == "nb201"
    assert load_view(manager.store, search_id).kind == "search"


def test_a_bad_genotype_is_refused_before_anything_is_written(manager):
    with pytest.raises(ConfigError) as e:
        manager.launch_retrain(_cfg(), "|not_an_op~0|")
    assert e.value.field == "genotype"
    darts = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[2], "
             "reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=[2])")
    with pytest.raises(ConfigError, match="nb201"):
        manager.launch_retrain(_cfg(), darts)
    assert manager.store.list_runs().empty


def test_stopped_retrain_resumes_through_the_manager_and_completes(manager):
    run_id = manager.launch_retrain(_cfg(epochs=3), NB201_CONV)
    deadline = time.monotonic() + 300
    while manager.store.get_run(run_id)["epochs_done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    manager.stop(run_id)
    manager.wait(run_id, timeout=300)
    run = manager.store.get_run(run_id)
    assert run["status"] == "stopped" and 1 <= run["epochs_done"] < 3
    assert (manager.store.run_dir(run_id) / "retrain.pt").is_file()
    manager.resume(run_id)
    manager.wait(run_id, timeout=300)
    run = manager.store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 3, run["error"]
    assert run_kind(run["config"]) == RETRAIN  # the resumed RunStarted kept the kind
    epochs = manager.store.epoch_metrics(run_id)
    assert epochs["epoch"].tolist() == [0, 1, 2]


def test_a_retrain_run_round_trips_through_a_bundle(manager, tmp_path):
    from darts_engine.runs.bundle import BundleError, export_bundle, import_bundle

    run_id = manager.launch_retrain(_cfg(), NB201_CONV, source_run="abc", source_epoch=0)
    manager.wait(run_id, timeout=300)
    data = export_bundle(manager.store, run_id)
    other = RunStore(tmp_path / "other")
    new_id = import_bundle(other, data)
    a, b = manager.store.get_run(run_id), other.get_run(new_id)
    assert b["config"] == a["config"] and run_kind(b["config"]) == RETRAIN
    assert (b["ops"], b["edges"], b["genotype"]) == ([], {}, a["genotype"])
    assert b["metrics"] == a["metrics"]
    ea, eb = manager.store.epoch_metrics(run_id), other.epoch_metrics(new_id)
    assert eb["test_acc"].tolist() == pytest.approx(ea["test_acc"].tolist())
    assert load_view(other, new_id).alphas == {}
    # an imported retrain has no checkpoint: resuming it says so
    other.set_status(new_id, "stopped")
    with pytest.raises(ConfigError, match="no checkpoint"):
        RunManager(other, threads_per_run=1).resume(new_id)
    # α in a retrain bundle is refused, naming the table
    import io
    import zipfile
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            body = src.read(info)
            if info.filename.endswith("alphas.csv"):
                body += b"0,1,epoch,cell,0,0,0.5\n"
            z.writestr(info, body)
    with pytest.raises(BundleError, match="a retrain run trains a discrete network"):
        import_bundle(RunStore(tmp_path / "third"), out.getvalue())


def test_cli_retrains_a_search_runs_cell_at_an_epoch(home, capsys):
    from darts_engine.cli import main
    from tests.helpers import record

    store = RunStore(home)
    search_id = record(store, tiny(epochs=2), "s")
    first = store.genotypes(search_id)["genotype"].iloc[0]
    code = main(["--home", str(home), "retrain", search_id, "--epoch", "1", "--epochs", "1",
                 "--dataset", "digits", "--threads", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    retrain_id = next(i for i in store.list_runs()["id"] if i != search_id)
    run = store.get_run(retrain_id)
    assert run["status"] == "completed" and run["epochs_done"] == 1
    cfg = run["config"]
    assert (cfg["kind"], cfg["recipe"], cfg["dataset"]) == (RETRAIN, "nb201", "digits")
    assert (cfg["genotype"], cfg["source_run"], cfg["source_epoch"]) == (first, search_id, 0)
    assert f"run id: {retrain_id}" in out and "test_acc" in out
    code = main(["--home", str(home), "runs"])
    listing = capsys.readouterr().out
    assert code == 0 and "retrain" in listing and "search" in listing


def _after_first_epoch(manager, run_id):
    deadline = time.monotonic() + 300
    while manager.store.get_run(run_id)["epochs_done"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_paused_retrain_holds_and_finishes_after_resume(manager):
    run_id = manager.launch_retrain(_cfg(epochs=3), NB201_CONV)
    _after_first_epoch(manager, run_id)
    manager.pause(run_id)
    assert manager.wait_paused(run_id, timeout=60)
    held = manager.store.get_run(run_id)
    assert held["status"] == "paused" and held["epochs_done"] < 3
    time.sleep(0.3)
    assert manager.store.get_run(run_id)["epochs_done"] == held["epochs_done"]
    manager.resume(run_id)
    manager.wait(run_id, timeout=300)
    assert manager.store.get_run(run_id)["status"] == "completed"


def test_cli_resume_continues_a_stopped_retrain(manager, capsys):
    from darts_engine.cli import main

    run_id = manager.launch_retrain(_cfg(epochs=3), NB201_CONV)
    _after_first_epoch(manager, run_id)
    manager.stop(run_id)
    manager.wait(run_id, timeout=300)
    assert manager.store.get_run(run_id)["status"] == "stopped"
    code = main(["--home", str(manager.store.home), "resume", run_id, "--no-progress"])
    assert code == 0, capsys.readouterr().err
    run = manager.store.get_run(run_id)
    assert run["status"] == "completed" and run["epochs_done"] == 3
