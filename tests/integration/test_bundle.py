"""Run bundles (bundle.py): export -> import round trips, and every kind of bad bundle is refused
with a message that says what is wrong, before anything is written."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import stat
import zipfile
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from darts_engine import METHODS, ConfigError
from darts_engine.cli import main
from darts_engine.runs import bundle as bundle_module
from darts_engine.runs.bundle import BundleError, export_bundle, import_bundle
from darts_engine.runs.manager import RunManager
from darts_engine.runs.store import RunStore
from tests.helpers import cell_spaces, cli, record, register_toys, tiny

TABLES = ("step_metrics", "epoch_metrics", "alphas", "extras", "logs", "alerts")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A store with one real run: 2 epochs, α every step, alerts fired, NaN indicators."""
    home = tmp_path_factory.mktemp("source") / "runs"
    s = RunStore(home)
    run_id = record(s, tiny(epochs=2, alpha_every=1, alert_pf_mass=0.1, alert_skip_count=0),
                    "collapsed · bi-level")
    assert len(s.alerts(run_id)) > 0
    yield s, run_id
    s.close()


@pytest.fixture
def target(tmp_path, source):
    """A store that already holds the source run (so "unchanged" means something)."""
    shutil.copytree(source[0].home, tmp_path / "target")
    s = RunStore(tmp_path / "target")
    yield s
    s.close()


def snapshot(store: RunStore) -> dict:
    """Row counts of every table and the folder listing: what a refused import must not move."""
    con = sqlite3.connect(store.path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("runs", *TABLES)}
    finally:
        con.close()
    return {"rows": counts, "files": sorted(p.name for p in store.home.iterdir())}


def assert_same_run(a: RunStore, a_id: str, b: RunStore, b_id: str, exact: bool = True) -> None:
    ra, rb = a.get_run(a_id), b.get_run(b_id)
    for key in ("id", "pid"):
        ra.pop(key), rb.pop(key)
    assert ra == rb
    pd.testing.assert_frame_equal(a.epoch_metrics(a_id), b.epoch_metrics(b_id), check_exact=exact)
    pd.testing.assert_frame_equal(a.step_metrics(a_id), b.step_metrics(b_id), check_exact=exact)
    pd.testing.assert_frame_equal(a.genotypes(a_id), b.genotypes(b_id))
    pd.testing.assert_frame_equal(a.alerts(a_id), b.alerts(b_id), check_exact=exact)
    for cell in ra["edges"]:
        for source in ("epoch", "step"):
            ia, alphas_a = a.alpha_history(a_id, cell, source)
            ib, alphas_b = b.alpha_history(b_id, cell, source)
            pd.testing.assert_frame_equal(ia, ib)
            np.testing.assert_array_equal(alphas_a, alphas_b)  # float32 survives every format


# --- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_then_import_gives_the_same_run(source, tmp_path, fmt):
    store, run_id = source
    data = export_bundle(store, run_id, fmt)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == sorted(f"{run_id}/{n}" for n in (
        "manifest.json", "run.json", "genotype.txt", *(f"{t}.{fmt}" for t in bundle_module.TABLES)))

    fresh = RunStore(tmp_path / "fresh")
    new_id = import_bundle(fresh, data)
    assert new_id == run_id  # a free id is kept
    # JSON writes 15 significant digits: float64 metrics come back within 1e-15, not bit-exact
    assert_same_run(store, run_id, fresh, new_id, exact=fmt != "json")
    assert fresh.get_run(new_id)["genotype"] == store.get_run(run_id)["genotype"]
    assert "cannot be resumed" in fresh.logs(new_id)["message"].iloc[-1]


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_a_task_metric_beyond_the_fixed_columns_round_trips(tmp_path, fmt):
    unregister = register_toys()
    try:
        store = RunStore(tmp_path / "source")
        run_id = record(store, tiny(task="toy-regression", method="toy-method", epochs=2), "toy")
        assert store.epoch_metrics(run_id)["neg_mse"].notna().all()
        fresh = RunStore(tmp_path / "fresh")
        new_id = import_bundle(fresh, export_bundle(store, run_id, fmt))
        assert_same_run(store, run_id, fresh, new_id, exact=fmt != "json")
        assert "neg_mse" in fresh.epoch_metrics(new_id).columns
    finally:
        unregister()


def test_a_taken_id_gets_a_new_one_and_the_original_stays(source, target):
    store, run_id = source
    before = snapshot(target)
    new_id = import_bundle(target, export_bundle(store, run_id))
    assert new_id != run_id and new_id[:15] == run_id[:15]  # same creation second
    assert_same_run(store, run_id, target, new_id)
    assert_same_run(store, run_id, target, run_id)
    assert snapshot(target)["rows"]["runs"] == before["rows"]["runs"] + 1


def test_a_bundle_from_before_the_manifest_imports(source, tmp_path):
    """Bundles the dashboard wrote before manifest.json existed: the format comes from names."""
    store, run_id = source
    files = unzip(export_bundle(store, run_id, "parquet"))
    del files[f"{run_id}/manifest.json"]
    fresh = RunStore(tmp_path / "fresh")
    assert_same_run(store, run_id, fresh, import_bundle(fresh, rezip(files)))


@pytest.mark.parametrize("kind, name", [("method", m) for m in METHODS.names()]  # on tiny's space
                         + [("space", s) for s in cell_spaces() if s != tiny().space])
def test_every_method_and_space_round_trips(tmp_path, kind, name):
    """Registries drive the matrix: a new method or space must survive a bundle too."""
    cfg = tiny(**{kind: name}, epochs=2, alpha_every=2,
               **({"lfr_stages": 2} if name == "lfr-darts" else {}))
    store = RunStore(tmp_path / "a")
    run_id = record(store, cfg, "")
    fresh = RunStore(tmp_path / "b")
    new_id = import_bundle(fresh, export_bundle(store, run_id))
    assert_same_run(store, run_id, fresh, new_id)
    declared = [{k: run[k] for k in ("task", "metrics", "artifacts")}
                for run in (store.get_run(run_id), fresh.get_run(new_id))]
    assert declared[0] == declared[1] and declared[0]["metrics"]  # the declaration travels


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_s1_masked_alphas_survive_every_format(tmp_path, fmt):
    """S1's α are −inf on the ops an edge lacks; JSON writes those as null, import restores them."""
    store = RunStore(tmp_path / "a")
    run_id = record(store, tiny(space="s1", epochs=1, init_channels=4, alpha_every=2), "")
    _, alphas = store.alpha_history(run_id, "normal", "epoch")
    assert np.isneginf(alphas).any() and np.isfinite(alphas).any()
    fresh = RunStore(tmp_path / "b")
    new_id = import_bundle(fresh, export_bundle(store, run_id, fmt))
    assert_same_run(store, run_id, fresh, new_id, exact=fmt != "json")


def test_a_missing_alpha_on_an_op_the_edge_has_is_refused(source, target):
    store, run_id = source
    files = unzip(export_bundle(store, run_id, "json"))
    name = f"{run_id}/alphas.json"
    rows = json.loads(files[name])
    rows[3]["value"] = None
    files[name] = json.dumps(rows).encode()
    before = snapshot(target)
    with pytest.raises(BundleError, match="missing or infinite α"):
        import_bundle(target, rezip(files))
    assert snapshot(target) == before


def test_a_running_run_becomes_interrupted_and_cannot_be_resumed(source, tmp_path):
    store, run_id = source
    files = unzip(export_bundle(store, run_id))
    edit_json(files, "run.json", lambda r: r | {"status": "running", "finished_at": None})
    fresh = RunStore(tmp_path / "fresh")
    new_id = import_bundle(fresh, rezip(files))
    run = fresh.get_run(new_id)
    assert run["status"] == "interrupted" and "exported while running" in run["error"]
    assert run["pid"] is None and run["finished_at"] is not None
    manager = RunManager(fresh, max_concurrent=1, threads_per_run=1)
    try:
        with pytest.raises(ConfigError, match="no checkpoint.*cannot be resumed"):
            manager.resume(new_id)
    finally:
        manager.shutdown(10)
    assert fresh.get_run(new_id)["status"] == "interrupted"
    assert len(fresh.epoch_metrics(new_id)) == 2  # nothing dropped


# --- bad bundles -----------------------------------------------------------------------------
def unzip(data: bytes) -> dict[str | zipfile.ZipInfo, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def rezip(files: dict[str | zipfile.ZipInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def member(files: dict, base: str) -> str:
    return next(n for n in files if isinstance(n, str) and n.endswith("/" + base))


def edit_json(files: dict, base: str, change: Callable[[dict], dict]) -> None:
    name = member(files, base)
    files[name] = json.dumps(change(json.loads(files[name]))).encode()


def edit_csv(files: dict, base: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    name = member(files, base)
    files[name] = change(pd.read_csv(io.BytesIO(files[name]))).to_csv(index=False).encode()


def symlink(files: dict) -> None:
    """genotype.txt replaced by a link to /etc/passwd, as `zip --symlinks` stores one."""
    name = member(files, "genotype.txt")
    del files[name]
    link = zipfile.ZipInfo(name)
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    files[link] = b"/etc/passwd"


def add(name: str, data: bytes = b"x") -> Callable[[dict], None]:
    return lambda files: files.__setitem__(name, data)


def add_beside(base: str) -> Callable[[dict], None]:
    """A file in the run's folder, next to run.json."""
    return lambda files: files.__setitem__(member(files, "run.json").replace("run.json", base),
                                           b"x")


def rename(base: str, new: Callable[[str], str]) -> Callable[[dict], None]:
    def change(files: dict) -> None:
        old = member(files, base)
        files[new(old)] = files.pop(old)
    return change


def config(**changes) -> Callable[[dict], None]:
    return lambda files: edit_json(files, "run.json",
                                   lambda r: r | {"config": r["config"] | changes})


def run_json(**changes) -> Callable[[dict], None]:
    return lambda files: edit_json(files, "run.json", lambda r: r | changes)


def table(base: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[dict], None]:
    return lambda files: edit_csv(files, base, change)


def both_genotypes(text: str) -> Callable[[dict], None]:
    def change(files: dict) -> None:
        edit_csv(files, "epoch_metrics.csv", lambda df: df.assign(genotype=text))
        edit_csv(files, "genotypes.csv", lambda df: df.assign(genotype=text))
    return change


BAD = {
    "zip-slip name": (add("../../evil.py"), "zip-slip"),
    "zip-slip inside the folder": (rename("run.json", lambda n: n.replace("/", "/../")),
                                   "zip-slip"),
    "absolute name": (add("/tmp/evil.py"), "absolute path"),
    "windows name": (add("C:\\evil.py"), "absolute path"),
    "symbolic link": (symlink, "symbolic link"),
    "unexpected member": (add_beside("notes.txt"), "unexpected file(s) in the bundle: "
                                                   "notes.txt"),
    "two run folders": (rename("alerts.csv", lambda n: "other/alerts.csv"), "one run folder"),
    "missing member": (lambda files: files.pop(member(files, "alphas.csv")), "lacks alphas.csv"),
    "missing run.json": (lambda files: files.pop(member(files, "run.json")), "lacks run.json"),
    "mixed formats": (rename("alerts.csv", lambda n: n.replace(".csv", ".json")),
                      "mixes table formats"),
    "run.json not JSON": (lambda files: files.__setitem__(member(files, "run.json"), b"{oops"),
                          "run.json is not valid JSON"),
    "run.json a list": (lambda files: edit_json(files, "run.json", lambda r: [r]),
                        "one JSON object"),
    "run.json wrong type": (run_json(epochs_done="2"), "epochs_done must be an int"),
    "run.json unknown status": (run_json(status="exploded"), "unknown status 'exploded'"),
    "run.json bad id": (run_json(id="../../etc"), "id must be a run id"),
    "run.json unknown key": (run_json(owner="me"), "unknown key(s) owner"),
    "invalid config value": (config(batch_size=0), "batch_size must be >= 1"),
    "unknown config field": (config(turbo=True), "unknown config field(s): turbo"),
    "unknown space": (config(space="resnet"), "space must be one of"),
    "manifest from the future": (lambda files: edit_json(files, "manifest.json",
                                                         lambda m: m | {"version": 99}),
                                 "format version 99"),
    "alphas of the wrong shape": (table("alphas.csv", lambda df: df[df["op"] != 4]),
                                  "not a full (edges=6, ops=5) grid"),
    "alphas edge out of range": (table("alphas.csv", lambda df: df.assign(edge=df["edge"] + 1)),
                                 "edge must be 0..5"),
    "alphas of an unknown cell": (table("alphas.csv", lambda df: df.assign(cell="normal")),
                                  "cell 'normal' is not a cell type"),
    "missing column": (table("step_metrics.csv", lambda df: df.drop(columns="lr")),
                       "missing: ['lr']"),
    "an undeclared metric column": (table("epoch_metrics.csv", lambda df: df.assign(psnr=1.0)),
                                    "unexpected: ['psnr']"),
    "text in a number column": (table("step_metrics.csv", lambda df: df.assign(lr="fast")),
                                "column 'lr' must hold numbers, got 'fast'"),
    "fractional epoch": (table("alerts.csv", lambda df: df.assign(epoch=0.5)),
                         "must hold whole numbers"),
    "epochs skip one": (table("epoch_metrics.csv", lambda df: df.assign(epoch=df["epoch"] * 2)),
                        "number the epochs 0, 1, ..."),
    "steps repeat": (table("step_metrics.csv", lambda df: df.assign(step=1)), "no repeats"),
    "genotype does not parse": (both_genotypes("|no_such_op~0|+|a~0|b~1|"), "cannot be read"),
    "genotype of another space": (both_genotypes(
        "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1)], normal_concat=[2], "
        "reduce=[('skip_connect', 0), ('skip_connect', 1)], reduce_concat=[2])"),
        "the 'nb201' space has ['cell']"),
    "genotype.txt differs": (lambda files: files.__setitem__(member(files, "genotype.txt"),
                                                             b"|none~0|\n"),
                             "genotype.txt does not match"),
    "genotypes table differs": (table("genotypes.csv", lambda df: df.iloc[:1]),
                                "genotypes does not match"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_bundle_is_refused_and_the_store_is_unchanged(source, target, case):
    store, run_id = source
    change, words = BAD[case]
    files = unzip(export_bundle(store, run_id))
    change(files)
    before = snapshot(target)
    with pytest.raises(BundleError) as e:
        import_bundle(target, rezip(files))
    assert words in str(e.value)
    assert snapshot(target) == before


@pytest.mark.parametrize("data, words", [
    (b"", "not a zip file"),
    (b"hello, I am a text file\n", "not a zip file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(200), "not a zip file"),
    (rezip({}), "lacks run.json, genotype.txt"),
])
def test_what_is_not_a_bundle_is_refused(target, data, words):
    before = snapshot(target)
    with pytest.raises(BundleError, match=words):
        import_bundle(target, data)
    assert snapshot(target) == before


def test_a_zip_bomb_is_refused_before_it_is_unpacked(source, target, monkeypatch):
    store, run_id = source
    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 1 << 20)
    files = unzip(export_bundle(store, run_id))
    files[member(files, "alphas.csv")] = bytes(8 << 20)  # 8 MiB of zeros: ~8 KiB deflated
    data = rezip(files)
    assert len(data) < 64 << 10
    before = snapshot(target)
    with pytest.raises(BundleError, match="over the limit of 1,048,576"):
        import_bundle(target, data)
    monkeypatch.setattr(bundle_module, "MAX_MEMBER_BYTES", 64 << 20)
    monkeypatch.setattr(bundle_module, "MAX_TOTAL_BYTES", 4 << 20)
    with pytest.raises(BundleError, match="the bundle unpacks to .* over the limit"):
        import_bundle(target, data)
    assert snapshot(target) == before


def test_a_path_that_is_no_file_is_refused(target, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        import_bundle(target, tmp_path / "nothing.zip")


# --- the CLI and the Runs page ---------------------------------------------------------------
def test_cli_exports_a_bundle_and_imports_it(source, tmp_path, capsys):
    """`export --out X.zip` writes a bundle, `import` adds it (a real subprocess: exit 0 and the
    run id); a bad bundle exits 2 with the message and no traceback."""
    store, run_id = source
    out = tmp_path / "bundle.zip"
    assert main(["--home", str(store.home), "export", run_id, "--out", str(out)]) == 0
    home = tmp_path / "other"
    p = cli(home, "import", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"run id: {run_id}"
    imported = RunStore(home)
    assert_same_run(store, run_id, imported, run_id)

    bad = tmp_path / "bad.zip"
    bad.write_bytes(rezip({"../evil.py": b"import os"}))
    before = snapshot(imported)
    capsys.readouterr()
    assert main(["--home", str(home), "import", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: bundle member '../evil.py'") and "zip-slip" in err
    assert snapshot(imported) == before
    imported.close()


def test_runs_page_imports_an_uploaded_bundle(app, home, source):
    """AppTest drives st.file_uploader: into an empty store (the uploader is there before any
    run), then a bad file shows its message and no traceback."""
    store, run_id = source
    at = app("pages/runs.py")
    assert "No runs yet" in at.info[0].value
    at.file_uploader(key="runs_import").set_value(
        ("run.zip", export_bundle(store, run_id), "application/zip")).run()
    assert not at.exception
    assert "Imported **collapsed · bi-level** (completed)" in at.success[0].value
    assert at.dataframe[0].value["id"].tolist() == [run_id]
    assert at.selectbox(key="runs_selected").value == run_id

    at.file_uploader(key="runs_import").set_value(
        ("notes.zip", b"not a zip at all", "application/zip")).run()
    assert not at.exception
    assert "notes.zip was not imported" in at.error[0].value
    assert "not a zip file" in at.error[0].value
    assert len(RunStore(home).list_runs()) == 1
