"""The CLI's bad-input cases in-process through `cli.main` (no search, no subprocess): exit 2, a
message naming the field, no traceback, no run left behind. test_cli.py keeps one subprocess
case for the real exit code."""

from __future__ import annotations

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
