"""The per-epoch ground truth of a run's derived cells (runs/truth_view.py) and its figures
(viz/truth.py), on a hand-made epochs frame and a tiny truth CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from darts_engine.runs.truth_view import is_nb201_space, truth_series
from darts_engine.truth.reader import open_truth
from darts_engine.viz.truth import truth_curves, truth_overlay
from tests.helpers import truth_csv

SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|" \
       "skip_connect~2|"
CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|" \
       "nor_conv_3x3~2|"
ABSENT = "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"
TRUTH = {CONV: {"cifar10": 93.76, "cifar100": 70.86, "ImageNet16-120": 43.81},
         SKIP: {"cifar10": 54.30, "cifar100": 15.61, "ImageNet16-120": 16.32}}


@pytest.fixture
def table(tmp_path):
    return open_truth(truth_csv(tmp_path / "nb201.csv", TRUTH))


def epochs_frame(genotypes):
    n = len(genotypes)
    return pd.DataFrame({"epoch": np.arange(n), "val_acc": np.linspace(0.5, 0.9, n),
                         "genotype": genotypes})


def test_each_epoch_gets_its_cells_truth_and_unknown_cells_are_nan(table):
    s = truth_series(epochs_frame([CONV, SKIP, ABSENT, CONV]), "nb201", table)
    assert s.archs == (CONV, SKIP, ABSENT, CONV)
    np.testing.assert_array_equal(s.test["cifar10"], [93.76, 54.30, np.nan, 93.76])
    np.testing.assert_array_equal(s.test["cifar100"], [70.86, 15.61, np.nan, 70.86])
    np.testing.assert_array_equal(s.test["ImageNet16-120"], [43.81, 16.32, np.nan, 43.81])
    assert s.missing == (ABSENT,)
    assert s.protocol == "NAS-Bench-201, 200 epochs, mean of 3 seeds"
    assert s.found and s.datasets == ("cifar10", "cifar100", "ImageNet16-120")


def test_a_cifar10_only_table_gives_one_dataset(tmp_path):
    table = open_truth(truth_csv(tmp_path / "c10.csv", {SKIP: {"cifar10": 54.3}}))
    s = truth_series(epochs_frame([SKIP, CONV]), "nb201", table)
    assert s.datasets == ("cifar10",) and s.missing == (CONV,)
    np.testing.assert_array_equal(s.test["cifar10"], [54.3, np.nan])
    assert np.isnan(s.test["cifar100"]).all()


def test_a_darts_space_run_or_an_empty_genotype_gives_no_truth(table):
    darts = "Genotype(normal=[('skip_connect', 0)], normal_concat=[2], reduce=[], reduce_concat=[])"
    assert is_nb201_space("nb201") and not is_nb201_space("darts")
    s = truth_series(epochs_frame([darts, darts]), "darts", table)
    assert not s.found and s.archs == ("", "") and s.protocol == ""
    s = truth_series(epochs_frame(["", CONV]), "nb201", table)
    np.testing.assert_array_equal(s.test["cifar10"], [np.nan, 93.76])


def test_the_figure_draws_the_supernet_and_each_dataset_with_the_protocol(table):
    s = truth_series(epochs_frame([SKIP, CONV]), "nb201", table)
    fig = truth_curves(s.epochs, np.array([50.0, 90.0]), "validation accuracy", s.test,
                       s.protocol)
    by_name = {t.name: list(t.y) for t in fig.data}
    assert by_name == {"supernet validation accuracy": [50.0, 90.0],
                       "true test · CIFAR-10": [54.30, 93.76],
                       "true test · CIFAR-100": [15.61, 70.86],
                       "true test · ImageNet16-120": [16.32, 43.81]}
    assert list(fig.data[0].x) == [1.0, 2.0]
    assert s.protocol in fig.layout.annotations[0].text


def test_the_overlay_has_one_line_per_run():
    fig = truth_overlay({"a": (np.array([0, 1]), np.array([54.3, 93.76])),
                         "b": (np.array([0]), np.array([np.nan]))}, "proxy label")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[0].y) == [54.3, 93.76] and "proxy label" in fig.layout.annotations[0].text
