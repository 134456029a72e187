"""`retrain`'s bad input in-process through `cli.main` (no training): exit 2, a message naming
the field, no run left behind. The source run is written by hand through the recorder."""

from __future__ import annotations

import numpy as np
import pytest

from darts_engine.cli import main
from darts_engine.events import EpochRecord, RunFinished, RunStarted
from darts_engine.runs.kinds import recipe_for, retrain_run_config
from darts_engine.runs.store import RunStore
from darts_engine.train.retrain import preset

NB201_CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
              "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
NB201_SKIP = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
              "|skip_connect~0|skip_connect~1|skip_connect~2|")
DARTS = ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
         "('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), "
         "('skip_connect', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
         "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
         "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
         "reduce_concat=[2, 3, 4, 5])")


@pytest.fixture
def search_run(home):
    """A search run with two recorded epochs (their genotypes), made of hand-written events."""
    store = RunStore(home)
    run_id = store.create_run({"space": "nb201", "dataset": "shapes", "epochs": 2})
    rec = store.recorder(run_id)
    rec(RunStarted({"space": "nb201", "dataset": "shapes", "epochs": 2}, "cpu", 10, 4,
                   ("none",), {"cell": ("1<-0",)}))
    for epoch, text in enumerate((NB201_CONV, NB201_SKIP)):
        rec(EpochRecord(epoch, 4 * (epoch + 1), 1.0, 1.0, 0.1, 0.1, 0.1,
                        {"cell": np.zeros((1, 1), np.float32)}, text))
    rec(RunFinished("completed", 2, NB201_SKIP))
    rec.close()
    return run_id


def run(capsys, home, *args) -> tuple[int, str]:
    before = len(RunStore(home).list_runs())
    code = main(["--home", str(home), "retrain", *args])
    assert len(RunStore(home).list_runs()) == before  # nothing written
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["20990101-000000-dead"], "no run '20990101-000000-dead'"),
    (["{run}", "--epoch", "3"], "epoch must be 1..2"),
    (["{run}", "--epoch", "0"], "epoch must be 1..2"),
    (["{run}", "--recipe", "darts-eval"], "recipe 'darts-eval' retrains a DARTS Genotype"),
    (["--genotype", "|not_an_op~0|+"], "genotype:"),
    (["--genotype", "Genotype(normal=[('sep_conv_3x3', 0)"], "genotype:"),
    (["--genotype", DARTS, "--recipe", "nb201"], "recipe 'nb201' retrains an NB201"),
    (["--genotype", NB201_CONV, "--epoch", "1"], "--epoch picks an epoch of RUN"),
    (["{run}", "--genotype", NB201_CONV], "either RUN"),
    ([], "either RUN"),
    (["--genotype", NB201_CONV, "--epochs", "0"], "epochs must be an integer >= 1"),
    (["--genotype", NB201_CONV, "--dataset", "imagenet"], "dataset must be one of"),
])
def test_bad_retrain_input_exits_2_naming_it(capsys, home, search_run, args, words):
    code, err = run(capsys, home, *[a.format(run=search_run) for a in args])
    assert code == 2, err
    assert words in err and "Traceback" not in err


def test_a_retrain_run_is_not_a_source(capsys, home):
    store = RunStore(home)
    retrain_id = store.create_run(retrain_run_config(preset("nb201"), NB201_CONV))
    code, err = run(capsys, home, retrain_id)
    assert code == 2 and "is a retrain run" in err


def test_the_recipe_follows_the_genotype_kind():
    assert recipe_for(NB201_CONV) == "nb201"
    assert recipe_for(DARTS) == "darts-eval"


def test_each_reference_cell_is_of_its_recipes_kind():
    from darts_engine.runs.kinds import REFERENCE_CELLS
    from darts_engine.train.retrain import check_genotype

    for recipe, (_, text) in REFERENCE_CELLS.items():
        assert recipe_for(text) == recipe
        check_genotype(preset(recipe), text)
