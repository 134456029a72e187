"""The CLI's bad-input cases in-process through `cli.main` (no search, no subprocess): exit 2, a
message naming the field, no traceback, no run left behind. test_cli.py keeps one subprocess
case for the real exit code."""

from __future__ import annotations

import numpy as np
import pytest

from darts_engine.cli import main
from darts_engine.runs.store import RunStore

TINY = ["--dataset", "shapes", "--data-limit", "128", "--batch-size", "32", "--space", "nb201",
        "--init-channels", "4", "--cells", "1", "--device", "cpu", "--threads", "1"]


def run(capsys, home, *args) -> tuple[int, str]:
    code = main(["--home", str(home), *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, words", [
    (["--epochs", "-5"], "epochs must be >= 1"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--space", "resnet"], "space must be one of"),
    (["--algorithm", "evolution"], "algorithm must be one of"),
    (["--dataset", "imagenet"], "dataset must be one of"),
    (["--dataset", "cifar10", "--data-root", "/nonexistent/dir"], "data_root"),
    (["--batch-size", "4000"], "batch_size must be <="),
])
def test_bad_input_exits_2_with_the_field_and_leaves_no_run(capsys, home, args, words):
    code, err = run(capsys, home, "search", *TINY, *args)
    assert code == 2, err
    assert words in err and "Traceback" not in err
    assert RunStore(home).list_runs().empty


def test_missing_dataset_says_where_it_looked(capsys, home, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    code, err = run(capsys, home, "search", "--dataset", "cifar10", "--data-root", str(root))
    assert code == 2
    assert str(root) in err and "--download" in err
    assert RunStore(home).list_runs().empty


def test_unknown_run_is_a_clean_error(capsys, home):
    code, err = run(capsys, home, "show", "20990101-000000-dead")
    assert code == 2 and "Traceback" not in err


def test_resume_refuses_a_completed_run_naming_the_resumable_states(capsys, home):
    run_id = RunStore(home).create_run({"space": "nb201"}, status="completed")
    code, err = run(capsys, home, "resume", run_id)
    assert code == 2 and f"run {run_id} is completed: nothing to resume" in err
    assert "Only stopped, failed, interrupted runs can be resumed" in err


def test_truth_export_of_a_missing_file_exits_2_naming_it_and_writes_nothing(capsys, home,
                                                                              tmp_path):
    missing, out = tmp_path / "no-such-NATS.pth", tmp_path / "nb201.csv"
    code, err = run(capsys, home, "truth", "export", "--from", str(missing), "--out", str(out))
    assert code == 2 and "Traceback" not in err
    assert str(missing) in err or missing.name in err
    assert not out.exists() and not home.exists()   # no run store opened for a conversion


def test_truth_export_converts_a_file_in_process(capsys, home, tmp_path):
    """A two-arch CSV in, the same two archs and numbers out (exit 0, the count printed)."""
    from darts_engine.truth.base import TruthEntry
    from darts_engine.truth.reader import open_truth
    from darts_engine.truth.table import export_csv

    archs = [f"|{op}~0|+|none~0|none~1|+|none~0|none~1|none~2|"
             for op in ("skip_connect", "nor_conv_3x3")]

    class Two:
        path = tmp_path / "two"

        def archs(self):
            return iter(archs)

        def query(self, arch):
            return TruthEntry(arch, {"cifar10": 10.0 + archs.index(arch)}, source="by hand")

    source, out = tmp_path / "two.csv", tmp_path / "nb201.csv"
    export_csv(Two(), source)
    code = main(["--home", str(home), "truth", "export", "--from", str(source), "--out",
                 str(out)])
    assert code == 0 and "wrote 2 architectures" in capsys.readouterr().out
    back = open_truth(out)
    assert [back.query(a).test for a in archs] == [{"cifar10": 10.0}, {"cifar10": 11.0}]


def test_show_prints_the_metrics_the_run_declared(capsys, home):
    """A run (filled by hand) that declares only val_acc: show's epoch table has that column
    and not train_acc, although the store holds one."""
    from darts_engine.events import EpochRecord, RunStarted, metric

    store = RunStore(home)
    run_id = store.create_run({"space": "nb201", "epochs": 1})
    rec = store.recorder(run_id)
    rec(RunStarted(config={"space": "nb201", "epochs": 1}, device="cpu", n_params=1,
                   steps_per_epoch=1, ops=("none",), edges={"cell": ("0→1",)},
                   task="classification",
                   metrics=(metric("val_acc", "validation accuracy", headline=True),)))
    rec(EpochRecord(epoch=0, step=1, train_loss=0.5, val_loss=0.6, lr=0.1, epoch_time=1.0,
                    wall_time=1.0, genotype="", alphas={"cell": np.zeros((1, 1), np.float32)},
                    metrics={"train_acc": 0.3, "val_acc": 0.4}))
    rec.close()
    store.close()
    assert main(["--home", str(home), "show", run_id]) == 0
    out = capsys.readouterr().out.splitlines()
    header = next(ln for ln in out if ln.split()[:1] == ["epoch"]).split()
    assert header == ["epoch", "train_loss", "val_loss", "val_acc", "epoch_time"]


ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
ALL_CONV = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
            "nor_conv_3x3~2|")


def test_show_with_truth_adds_each_epochs_true_accuracy_and_the_protocol(capsys, home, tmp_path,
                                                                          monkeypatch):
    """Two hand-made epochs (all-conv, then all-skip) and a truth CSV with known values: show
    --truth prints them per epoch; without the flag or $DARTBOARD_TRUTH nothing is added."""
    from darts_engine.events import EpochRecord, RunStarted, metric
    from tests.helpers import truth_csv

    monkeypatch.delenv("DARTBOARD_TRUTH", raising=False)
    store = RunStore(home)
    run_id = store.create_run({"space": "nb201", "epochs": 2})
    rec = store.recorder(run_id)
    rec(RunStarted(config={"space": "nb201", "epochs": 2}, device="cpu", n_params=1,
                   steps_per_epoch=1, ops=("none",), edges={"cell": ("0→1",)},
                   task="classification",
                   metrics=(metric("val_acc", "validation accuracy", headline=True),)))
    for epoch, genotype in enumerate((ALL_CONV, ALL_SKIP)):
        rec(EpochRecord(epoch=epoch, step=epoch + 1, train_loss=0.5, val_loss=0.6, lr=0.1,
                        epoch_time=1.0, wall_time=1.0, genotype=genotype,
                        alphas={"cell": np.zeros((1, 1), np.float32)}, metrics={"val_acc": 0.4}))
    rec.close()
    store.close()
    csv = truth_csv(tmp_path / "nb201.csv", {ALL_CONV: {"cifar10": 93.5, "cifar100": 70.25},
                                             ALL_SKIP: {"cifar10": 54.25, "cifar100": 15.5}})

    assert main(["--home", str(home), "show", run_id]) == 0
    assert "true_cifar10" not in capsys.readouterr().out
    assert main(["--home", str(home), "show", run_id, "--truth", str(csv)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert any(ln.startswith("truth: ") and "200 epochs" in ln for ln in out), out
    i = next(i for i, ln in enumerate(out) if ln.split()[:1] == ["epoch"])
    header = out[i].split()
    assert header[-2:] == ["true_cifar10", "true_cifar100"]
    rows = [ln.split() for ln in out[i + 1:i + 3]]
    assert [(float(r[-2]), float(r[-1])) for r in rows] == [(93.5, 70.25), (54.25, 15.5)]


def test_show_with_a_truth_file_in_the_wrong_format_names_it_and_exits_2(capsys, home, tmp_path):
    from darts_engine.events import EpochRecord

    store = RunStore(home)
    run_id = store.create_run({"space": "nb201", "epochs": 1})
    rec = store.recorder(run_id)
    rec(EpochRecord(epoch=0, step=1, train_loss=0.5, val_loss=0.6, lr=0.1, epoch_time=1.0,
                    wall_time=1.0, genotype=ALL_SKIP, alphas={}, metrics={"val_acc": 0.4}))
    rec.close()
    store.close()
    bad = tmp_path / "nb201.csv"
    bad.write_text("not,a,truth,table\n")
    assert main(["--home", str(home), "show", run_id, "--truth", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(bad) in err and "Traceback" not in err
