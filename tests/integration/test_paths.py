"""Path escapes from the UI are refused: '..', absolute paths elsewhere, symlinks out."""

from __future__ import annotations

import pytest

from darts_engine import ConfigError
from darts_engine.runs.paths import resolve_inside
from darts_engine.runs.store import RunStore, StoreError


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "cifar").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (r / "link-out").symlink_to(tmp_path / "outside")
    (r / "link-in").symlink_to(r / "cifar")
    return r


@pytest.mark.parametrize("bad", ["../outside", "cifar/../../outside", "/etc", "link-out",
                                 "link-out/x", "", "a\x00b"])
def test_escapes_are_refused(root, bad):
    with pytest.raises(ConfigError) as e:
        resolve_inside(root, bad, "data_root")
    assert e.value.field == "data_root"


@pytest.mark.parametrize("good, rel", [("cifar", "cifar"), (".", ""), ("link-in", "cifar"),
                                       ("new/sub", "new/sub")])
def test_inside_paths_resolve(root, good, rel):
    assert resolve_inside(root, good, "data_root") == (root / rel).resolve()


def test_absolute_path_inside_is_fine(root):
    assert resolve_inside(root, str(root / "cifar"), "x") == (root / "cifar").resolve()


def test_export_refuses_escapes(home, tmp_path):
    from darts_engine import search
    from tests.helpers import tiny

    store = RunStore(home)
    cfg = tiny()
    run_id = store.create_run(cfg.to_dict())
    rec = store.recorder(run_id)
    search(cfg, rec)
    rec.close()
    (home / "out-link").symlink_to(tmp_path)
    for bad in (home / ".." / "x", tmp_path / "elsewhere", home / "out-link"):
        with pytest.raises(StoreError):
            store.export_run(run_id, "csv", bad, allowed_root=home)
    assert store.export_run(run_id, "csv", home / "exports" / "a", allowed_root=home)
