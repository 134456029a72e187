"""The collapse demo's retrain report (runs/demo.py) on a store filled by hand: which pair is a
demo pair, which retrains belong to it, their final test accuracies and the table's values."""

import numpy as np
import pytest

from darts_engine import SearchConfig
from darts_engine.events import EpochRecord, RunFinished, RunStarted
from darts_engine.runs.demo import ROLES, demo_cells, demo_pair, demo_recipe, demo_text
from darts_engine.runs.kinds import REFERENCE_CELLS, retrain_run_config
from darts_engine.runs.store import RunStore
from darts_engine.train.retrain import METRICS, preset
from darts_engine.truth.table import CsvTable
from tests.helpers import truth_csv

BI_CELL = "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"
SINGLE_CELL = ("|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+"
               "|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
REFERENCE = REFERENCE_CELLS["nb201"][1]


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "runs")
    yield s
    s.close()


def _search(store, algorithm, genotype, status="completed", **changes):
    config = SearchConfig(space="nb201", algorithm=algorithm, dataset="shapes", epochs=2,
                          seed=3, **changes).to_dict()
    run_id = store.create_run(config, name=algorithm)
    rec = store.recorder(run_id)
    rec(RunStarted(config, "cpu", 1, 2, ("none",), {"cell": ("a",)}))
    for e in range(2):
        rec(EpochRecord(e, e + 1, 1.0, 1.0, 0.1, 1.0, 1.0, {"cell": np.zeros((1, 1), np.float32)},
                        genotype, metrics={"val_acc": 0.9}))
    rec(RunFinished(status, 2))
    rec.close()
    return store.get_run(run_id)


def _retrain(store, genotype, source, accs=(0.3, 0.6), finish=True, **changes):
    cfg = preset("nb201", **{"dataset": "shapes", "seed": 3, **changes})
    config = retrain_run_config(cfg, genotype, source, 1)
    run_id = store.create_run(config, name="r")
    rec = store.recorder(run_id)
    rec(RunStarted(config, "cpu", 5, 7, (), {}, task="retrain", metrics=METRICS))
    for e, acc in enumerate(accs):
        rec(EpochRecord(e, e + 1, 1.0, 1.0, 0.1, 1.0, 1.0, {}, genotype,
                        metrics={"test_acc": acc, "train_acc": acc}))
    if finish:
        rec(RunFinished("completed", len(accs)))
    else:
        store.set_status(run_id, "running")
    rec.close()
    return run_id


def test_a_pair_is_two_completed_searches_differing_only_in_the_algorithm(store):
    bi, single = _search(store, "bilevel-1st", BI_CELL), _search(store, "single", SINGLE_CELL)
    assert demo_pair([single, bi]) == (bi["id"], single["id"])
    assert demo_pair([bi, _search(store, "bilevel-1st", BI_CELL)]) is None  # no single-level
    assert demo_pair([bi, _search(store, "single", SINGLE_CELL, arch_lr=1e-2)]) is None
    assert demo_pair([bi, _search(store, "single", SINGLE_CELL, status="stopped")]) is None
    assert demo_pair([bi, single, bi]) is None


def test_the_demo_recipe_is_the_searchs_recipe_dataset_and_seed(store):
    cfg = demo_recipe(_search(store, "bilevel-1st", BI_CELL))
    assert (cfg.recipe, cfg.dataset, cfg.seed) == ("nb201", "shapes", 3)


def test_cells_report_each_roles_newest_matching_retrain_and_its_final_accuracy(store):
    bi, single = _search(store, "bilevel-1st", BI_CELL), _search(store, "single", SINGLE_CELL)
    assert [c.retrain_id for c in demo_cells(store, bi["id"], single["id"])] == [None] * 3
    _retrain(store, BI_CELL, bi["id"], accs=(0.1, 0.2))             # older: not reported
    newest_bi = _retrain(store, BI_CELL, bi["id"], accs=(0.4, 0.55))
    _retrain(store, SINGLE_CELL, single["id"], accs=(0.9,), seed=4)  # another seed: not ours
    running = _retrain(store, SINGLE_CELL, single["id"], accs=(0.5,), finish=False)
    ref = _retrain(store, REFERENCE, None, accs=(0.5, 0.7))
    cells = demo_cells(store, bi["id"], single["id"])
    assert [c.role for c in cells] == list(ROLES)
    assert [c.retrain_id for c in cells] == [newest_bi, running, ref]
    assert [c.test_acc for c in cells] == [0.55, None, 0.7]  # a running retrain: none yet
    assert cells[1].status == "running"
    text = demo_text(cells)
    assert "bi-level cell **55.0%**" in text and "single-level cell running" in text
    assert "**70.0%**" in text and "table" not in text  # no table configured


def test_table_accuracies_are_looked_up_per_cell_and_the_table_named(store, tmp_path):
    bi, single = _search(store, "bilevel-1st", BI_CELL), _search(store, "single", SINGLE_CELL)
    _retrain(store, BI_CELL, bi["id"])
    path = truth_csv(tmp_path / "t.csv", {BI_CELL: {"cifar10": 54.3},
                                          REFERENCE: {"cifar10": 93.24}})
    cells = demo_cells(store, bi["id"], single["id"], CsvTable(path))
    assert [c.truth for c in cells] == [54.3, None, 93.24]  # the single cell has no row
    text = demo_text(cells)
    assert "bi-level cell 54.30%" in text and "93.24%" in text
    assert cells[0].truth_protocol in text


def test_before_any_retrain_only_the_table_speaks(store, tmp_path):
    bi, single = _search(store, "bilevel-1st", BI_CELL), _search(store, "single", SINGLE_CELL)
    assert demo_text(demo_cells(store, bi["id"], single["id"])) == ""
    path = truth_csv(tmp_path / "t.csv", {BI_CELL: {"cifar10": 54.3}})
    text = demo_text(demo_cells(store, bi["id"], single["id"], CsvTable(path)))
    assert "Retrained" not in text and "bi-level cell 54.30%" in text
