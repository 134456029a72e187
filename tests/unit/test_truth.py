"""NAS-Bench-201 ground truth (darts_engine/truth): readers keyed by arch string, the 200-epoch
seed mean, the restricted unpickler, bad files named in the error, and the real nats_bench API
agreeing with our reader on a synthetic fast-mode folder in the real format."""

from __future__ import annotations

import bz2
import importlib.util
import itertools
import pickle
from pathlib import Path

import pytest
import torch

from darts_engine.model.genotype import NB201_OPS
from darts_engine.registries import TRUTH, by_name
from darts_engine.truth.base import DATASETS, TruthError, check_arch
from darts_engine.truth.export import truth_export_main
from darts_engine.truth.proxy import NASLIB_EDGES, PROXY, AnalogProxy, arch_from_naslib
from darts_engine.truth.reader import open_truth
from darts_engine.truth.table import export_csv

SEEDS = (777, 888)
# NATS-Bench's dataset -> eval sets (nats_bench/api_utils.py, ArchResults.get_metrics docstring)
EVAL_SETS = {"cifar10-valid": ("x-valid", "ori-test"), "cifar10": ("ori-test",),
             "cifar100": ("x-valid", "x-test", "ori-test"),
             "ImageNet16-120": ("x-valid", "x-test", "ori-test")}
PICKED = (0, 1, 4567, 15624)  # indices that get a per-architecture file


def all_archs() -> list[str]:
    """The 15,625 arch strings, in a fixed order of our choosing (an index is only a file name)."""
    return ["|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
            for ops in itertools.product(NB201_OPS, repeat=6)]


def acc(index: int, hp: str, dataset: str, setname: str, seed: int, epoch: int) -> float:
    """A distinct, hand-computable accuracy for every coordinate (percent)."""
    d = list(EVAL_SETS).index(dataset)
    s = ("x-valid", "x-test", "ori-test").index(setname)
    return (10 + index % 50 + (30 if hp == "200" else 0) + d * 2 + s * 0.5
            + (SEEDS.index(seed) * 1.25) + epoch * 0.01)


def trial(index: int, hp: str, dataset: str, seed: int) -> dict:
    """One ResultsCount state dict (nats_bench/api_utils.py, ResultsCount.__init__/reset_eval)."""
    epochs = int(hp)
    evals = {f"{name}@{e}": acc(index, hp, dataset, name, seed, e)
             for name in EVAL_SETS[dataset] for e in range(epochs)}
    return {"name": dataset, "net_state_dict": None,
            "train_acc1es": {e: 5.0 + e for e in range(epochs)}, "train_acc5es": None,
            "train_losses": {e: 2.0 / (e + 1) for e in range(epochs)},
            "train_times": {e: 1.5 for e in range(epochs)},
            "arch_config": {"name": "infer.tiny", "C": 16, "N": 5}, "params": 0.1, "flop": 15.0,
            "seed": seed, "epochs": epochs, "latency": [0.01],
            "eval_names": list(EVAL_SETS[dataset]), "eval_acc1es": evals,
            "eval_losses": {k: 1.0 for k in evals}, "eval_times": {k: 0.25 for k in evals}}


def arch_results(index: int, arch: str, hp: str) -> dict:
    """One ArchResults state dict, two seeds per dataset."""
    return {"arch_index": index, "arch_str": arch, "clear_net_done": True,
            "dataset_seed": {d: list(SEEDS) for d in EVAL_SETS},
            "all_results": {(d, s): trial(index, hp, d, s) for d in EVAL_SETS for s in SEEDS}}


def write_pbz2(path: Path, obj: object) -> None:
    path.write_bytes(bz2.compress(pickle.dumps(obj, protocol=4)))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A NATS-tss-v1_0-3ffb9-simple folder in the real layout with a handful of architectures."""
    root = tmp_path_factory.mktemp("truth") / "NATS-tss-v1_0-3ffb9-simple"
    root.mkdir()
    archs = all_archs()
    write_pbz2(root / "meta.pickle.pbz2", {"meta_archs": archs})
    for i in PICKED:
        write_pbz2(root / f"{i:06d}.pickle.pbz2",
                   {hp: arch_results(i, archs[i], hp) for hp in ("12", "200")})
    return root


def expected_test(index: int, dataset: str) -> float:
    """Our independent reading: epoch 199 of hp 200, mean of the two seeds."""
    name, setname = {"cifar10": ("cifar10", "ori-test"), "cifar100": ("cifar100", "x-test"),
                     "ImageNet16-120": ("ImageNet16-120", "x-test")}[dataset]
    return sum(acc(index, "200", name, setname, s, 199) for s in SEEDS) / len(SEEDS)


def test_truth_registry_holds_the_path_readers():
    assert TRUTH.names() == ["nats-tss-fast", "nb201-pth", "csv"]
    assert by_name("truth") is TRUTH


def test_fast_folder_reads_200_epochs_seed_mean(folder):
    table = open_truth(folder)
    archs = all_archs()
    assert sorted(table.archs()) == sorted(archs[i] for i in PICKED)
    for i in PICKED:
        e = table.query(archs[i])
        for d in DATASETS:
            assert e.test[d] == pytest.approx(expected_test(i, d))
        assert e.valid["cifar10"] == pytest.approx(
            sum(acc(i, "200", "cifar10-valid", "x-valid", s, 199) for s in SEEDS) / 2)
        assert e.seeds == {d: 2 for d in DATASETS}
        assert e.protocol == "NAS-Bench-201, 200 epochs, mean of 2 seeds"


def test_real_nats_bench_api_agrees_and_shows_the_hp_trap(folder):
    nats_bench = pytest.importorskip("nats_bench")
    api = nats_bench.create(str(folder), "tss", fast_mode=True, verbose=False)
    ours = open_truth(folder)
    for arch in ours.archs():
        idx = api.query_index_by_arch(arch)
        e = ours.query(arch)
        for d in DATASETS:
            info = api.get_more_info(idx, d, hp="200", is_random=False)
            assert e.test[d] == pytest.approx(info["test-accuracy"])
            if d != "cifar10":
                assert e.valid[d] == pytest.approx(info["valid-accuracy"])
            default = api.get_more_info(idx, d, is_random=False)  # hp defaults to "12"
            assert default["test-accuracy"] < e.test[d] - 20
            one_seed = api.get_more_info(idx, d, hp="200", is_random=SEEDS[0])
            assert one_seed["test-accuracy"] != pytest.approx(e.test[d])
        info = api.get_more_info(idx, "cifar10-valid", hp="200", is_random=False)
        assert e.valid["cifar10"] == pytest.approx(info["valid-accuracy"])


def _touch(path: str) -> None:
    Path(path).write_text("ran")


class Planted:
    """Unpickling this would call _touch: the restricted unpickler must refuse before that."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def test_restricted_unpickler_refuses_classes_and_runs_nothing(tmp_path):
    root = tmp_path / "nats"
    root.mkdir()
    archs = all_archs()
    write_pbz2(root / "meta.pickle.pbz2", {"meta_archs": archs})
    marker = tmp_path / "marker"
    write_pbz2(root / "000000.pickle.pbz2", {"200": Planted(marker)})
    table = open_truth(root)
    with pytest.raises(TruthError, match=r"000000\.pickle\.pbz2.*test_truth\._touch"):
        table.query(archs[0])
    assert not marker.exists()
    write_pbz2(root / "meta.pickle.pbz2", {"meta_archs": archs, "x": Planted(marker)})
    with pytest.raises(TruthError, match=r"meta\.pickle\.pbz2: refusing to load class"):
        open_truth(root)
    assert not marker.exists()


def test_truncated_pickles_name_the_file(folder, tmp_path):
    root = tmp_path / "nats"
    root.mkdir()
    meta = (folder / "meta.pickle.pbz2").read_bytes()
    (root / "meta.pickle.pbz2").write_bytes(meta[: len(meta) // 2])
    with pytest.raises(TruthError, match=r"meta\.pickle\.pbz2: not a complete bz2 file"):
        open_truth(root)
    raw = pickle.dumps({"meta_archs": all_archs()}, protocol=4)
    (root / "meta.pickle.pbz2").write_bytes(bz2.compress(raw[:1000]))
    with pytest.raises(TruthError, match=r"meta\.pickle\.pbz2: not a readable pickle"):
        open_truth(root)


def test_bad_paths_and_archs(folder, tmp_path):
    wrong = tmp_path / "nb201.txt"
    wrong.write_text("hello")
    with pytest.raises(TruthError, match=r"nb201\.txt is not a known truth file: expected .*"
                       r"fast-mode folder.*\.pth.*\.csv"):
        open_truth(wrong)
    with pytest.raises(TruthError, match="does not exist"):
        open_truth(tmp_path / "missing.pth")
    with pytest.raises(TruthError, match=r"has no meta\.pickle\.pbz2"):
        open_truth(tmp_path)
    fake = tmp_path / "fake.pth"
    fake.write_bytes(b"not a torch file")
    with pytest.raises(TruthError, match=r"fake\.pth: not a readable NAS-Bench-201 \.pth"):
        open_truth(fake)
    table = open_truth(folder)
    with pytest.raises(TruthError, match=r"arch '\|conv~0\|' is not an NB201 arch string"):
        table.query("|conv~0|")
    with pytest.raises(TruthError, match=r"000002\.pickle\.pbz2: file not found"):
        table.query(all_archs()[2])  # in the meta list, its file not in this folder
    assert check_arch(all_archs()[7]) == all_archs()[7]
    with pytest.raises(TruthError):
        check_arch("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|")  # node 1 reads node 0


def test_csv_round_trip_and_bad_csv(folder, tmp_path):
    out = tmp_path / "nb201.csv"
    assert export_csv(open_truth(folder), out) == len(PICKED)
    assert out.read_text().startswith("# source: NAS-Bench-201\n# 200 epochs")
    back, ours = open_truth(out), open_truth(folder)
    assert list(back.archs()) == list(ours.archs())
    for arch in ours.archs():
        assert back.query(arch) == ours.query(arch)
        assert back.query(arch).protocol == "NAS-Bench-201, 200 epochs, mean of 2 seeds"
    with pytest.raises(TruthError, match=r"is not in .*nb201\.csv"):
        back.query(all_archs()[2])
    lines = out.read_text().splitlines()
    cut = tmp_path / "cut.csv"
    cut.write_text("\n".join([*lines[:2], lines[2].replace(",cifar100_test", ""), *lines[3:]]))
    with pytest.raises(TruthError, match=r"cut\.csv: missing columns cifar100_test"):
        open_truth(cut)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([*lines[:3], lines[3].replace(",", ",x", 1)]))
    with pytest.raises(TruthError, match=r"bad\.csv line 4 column cifar10_test: expected a num"):
        open_truth(bad)


def test_export_main_writes_nothing_on_bad_input(folder, tmp_path, capsys):
    class Args:
        source, out = str(tmp_path / "nope.pth"), str(tmp_path / "out.csv")

    assert truth_export_main(Args) == 2
    assert "nope.pth does not exist" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.iterdir())
    Args.source = str(folder)
    assert truth_export_main(Args) == 0
    assert f"wrote {len(PICKED)} architectures" in capsys.readouterr().out


def test_nb201_pth_in_the_v1_1_layout(folder, tmp_path):
    archs = all_archs()
    pth = tmp_path / "NAS-Bench-201-v1_1-096897.pth"
    torch.save({"meta_archs": archs, "evaluated_indexes": list(PICKED),
                "arch2infos": {i: {"less": arch_results(i, archs[i], "12"),
                                   "full": arch_results(i, archs[i], "200")} for i in PICKED}},
               pth)
    table, nats = open_truth(pth), open_truth(folder)
    assert sorted(table.archs()) == sorted(nats.archs())
    for arch in nats.archs():
        assert table.query(arch) == nats.query(arch)


def test_naslib_decoding_by_hand():
    # NASLib (1,2),(1,3),(1,4),(2,3),(2,4),(3,4) = 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2
    assert NASLIB_EDGES == ((1, 0), (2, 0), (3, 0), (2, 1), (3, 1), (3, 2))
    assert arch_from_naslib((2, 3, 4, 0, 1, 2)) == (
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")


def test_analog_proxy_against_known_cells():
    # find_spec, not importorskip: the package's own __init__ needs pkg_resources, gone from
    # setuptools >= 81; our reader never imports it
    if importlib.util.find_spec("analognasbench") is None:
        pytest.skip("analog-nasbench is not installed")

    proxy = AnalogProxy()
    assert len(list(proxy.archs())) == 15625
    cell = "|{0}~0|+|{0}~0|{0}~1|+|{0}~0|{0}~1|{0}~2|"
    assert proxy.query(cell.format("none")).test == {"cifar10": pytest.approx(10.00, abs=0.005)}
    assert proxy.query(cell.format("nor_conv_3x3")).test["cifar10"] == pytest.approx(93.24,
                                                                                     abs=0.005)
    assert proxy.query(cell.format("none")).protocol == PROXY
    assert "NAS-Bench-201" not in PROXY
    # the edge order, checked on the data: with every edge into node 3 `none` the output is
    # zero whatever the rest, so all 125 such cells sit at chance
    dead = [a for a in proxy.archs() if a.split("+")[2].count("none") == 3]
    assert len(dead) == 125
    assert {proxy.query(a).test["cifar10"] for a in dead} == {10.0}


def test_unpickler_allows_plain_containers_only():
    from collections import OrderedDict

    from darts_engine.truth.unpickle import load_plain

    plain = {"a": [1, 2.5, None, True], ("b", 1): OrderedDict(x={3}), "c": "s"}
    assert load_plain(pickle.dumps(plain, protocol=4), "x.pbz2") == plain
    for thing in (complex(1, 2), Path("p"), bytearray(b"1")):
        with pytest.raises(TruthError, match=r"x\.pbz2: refusing to load class"):
            load_plain(pickle.dumps(thing, protocol=4), "x.pbz2")


def test_csv_from_the_proxy_keeps_its_label(tmp_path):
    class Proxyish:  # a two-cell table in the proxy's shape: CIFAR-10 only, no seeds
        path = tmp_path / "proxy"

        def archs(self):
            return iter(all_archs()[:2])

        def query(self, arch):
            from darts_engine.truth.base import TruthEntry

            return TruthEntry(arch, {"cifar10": 50.5}, source=PROXY)

    out = tmp_path / "proxy.csv"
    assert export_csv(Proxyish(), out) == 2
    back = open_truth(out).query(all_archs()[1])
    assert back.test == {"cifar10": 50.5} and back.valid == {} and back.protocol == PROXY


def test_configured_truth_path_then_env_then_proxy(folder, tmp_path):
    from darts_engine.truth.reader import configured_truth

    out = tmp_path / "nb201.csv"
    export_csv(open_truth(folder), out)
    env = {"DARTBOARD_TRUTH": str(folder)}
    assert configured_truth(out, env).label == "truth CSV"  # the explicit path wins
    assert configured_truth(None, env).label == "NATS-Bench topology fast-mode folder"
    with pytest.raises(TruthError, match=r"^DARTBOARD_TRUTH: truth path .*gone does not exist"):
        configured_truth(None, {"DARTBOARD_TRUTH": str(tmp_path / "gone")})
    fallback = configured_truth(None, {})
    if importlib.util.find_spec("analognasbench") is None:
        assert fallback is None
    else:
        assert fallback.label == PROXY
