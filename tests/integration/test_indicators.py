"""Collapse indicators and alert rules: hand-made inputs with known answers, then the loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from darts_engine import INDICATORS, SPACES, ConfigError, parse_genotype, search
from darts_engine.events import AlertRecord, LogRecord
from darts_engine.model.genotype import genotype_ops, softmax
from darts_engine.model.spaces import discrete_weights
from darts_engine.monitor import indicators as ind
from darts_engine.monitor import probes
from darts_engine.monitor.alerts import RULES, check_alerts, rule_docs
from darts_engine.runs.store import RunStore
from tests.helpers import tiny

NB201 = SPACES.get("nb201").ops      # none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool
DARTS = SPACES.get("darts").ops
ALL_SKIP_NB201 = ("|skip_connect~0|+|skip_connect~0|skip_connect~1|+"
                  "|skip_connect~0|skip_connect~1|skip_connect~2|")
ALL_SKIP_DARTS = ("Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), "
                  "('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), "
                  "('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1)], "
                  "normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('sep_conv_3x3', 1), "
                  "('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 0), "
                  "('sep_conv_3x3', 1), ('none', 0), ('sep_conv_3x3', 4)], "
                  "reduce_concat=[2, 3, 4, 5])")


def logits(p: list[float]) -> np.ndarray:
    return np.log(np.asarray(p, dtype=np.float64))


def cells(text: str, ops=None) -> dict:
    return genotype_ops(parse_genotype(text, ops=ops))


# --- α indicators --------------------------------------------------------------------------

def test_entropy_is_one_for_uniform_and_zero_for_one_hot():
    assert ind.entropy(np.full((6, 5), 1 / 5)) == pytest.approx(1.0)
    assert ind.entropy(softmax(np.full((14, 8), 3.7))) == pytest.approx(1.0)
    assert ind.entropy(np.eye(5)[[0, 1, 2, 3, 4, 0]]) == pytest.approx(0.0, abs=1e-9)
    half = np.array([[0.5, 0.5, 0.0, 0.0]])   # sparsemax-style zeros are fine
    assert ind.entropy(half) == pytest.approx(np.log(2) / np.log(4))


def test_masses_max_share_and_margin_on_known_weights():
    p = [0.1, 0.4, 0.2, 0.2, 0.1]            # none, skip, conv1, conv3, pool
    q = [0.6, 0.1, 0.1, 0.1, 0.1]
    a = np.array([p, q])                    # mixing weights (edges=2, ops=5)
    assert ind.skip_mass(a, NB201) == pytest.approx((0.4 + 0.1) / 2)
    assert ind.none_mass(a, NB201) == pytest.approx((0.1 + 0.6) / 2)
    assert ind.pf_mass(a, NB201) == pytest.approx(((0.1 + 0.4 + 0.1) + (0.6 + 0.1 + 0.1)) / 2)
    assert ind.none_max(a, NB201) == pytest.approx(0.6)
    assert ind.none_share(a, NB201) == pytest.approx(0.5)
    assert ind.margin(a) == pytest.approx(((0.4 - 0.2) + (0.6 - 0.1)) / 2)
    s2 = ("skip_connect", "sep_conv_3x3")  # no `none` in the space: its mass is 0
    w = np.full((14, 2), 0.5)
    assert ind.none_mass(w, s2) == 0.0 == ind.none_max(w, s2)


def test_alpha_norm_and_logsumexp():
    a = np.zeros((6, 5))
    assert ind.alpha_norm(a) == 0.0
    assert ind.alpha_lse(a) == pytest.approx(np.log(5))
    a[0, 0] = 3.0
    a[1, 1] = 4.0
    assert ind.alpha_norm(a) == pytest.approx(5.0)
    assert ind.alpha_lse(a + 1000.0) == pytest.approx(ind.alpha_lse(a) + 1000.0)  # no overflow


def test_flips_and_ranking_stability():
    prev = logits([[0.1, 0.2, 0.3, 0.4, 0.0 + 1e-3]] * 3)    # conv3 > conv1 on every edge
    cur = prev.copy()
    assert ind.argmax_flips(prev, cur) == 0 and ind.rank_tau(prev, cur, NB201) == 1.0
    assert ind.same_ranking(prev, cur, NB201)
    cur[0, [2, 3]] = cur[0, [3, 2]]                          # edge 0: conv1 > conv3 now
    assert ind.argmax_flips(prev, cur) == 1
    assert ind.rank_tau(prev, cur, NB201) == pytest.approx((-1 + 1 + 1) / 3)
    assert not ind.same_ranking(prev, cur, NB201)
    cur[1, 1] = 10.0                                        # skip wins edge 1: PF ops not ranked
    assert ind.argmax_flips(prev, cur) == 2 and ind.rank_tau(prev, cur, NB201) < 1
    assert ind.kendall_tau(np.arange(5), -np.arange(5)) == -1.0
    assert np.isnan(ind.rank_tau(prev[:, :2], cur[:, :2], ("none", "sep_conv_3x3")))


# --- derived-cell indicators -----------------------------------------------------------------

def test_all_skip_cells_count_every_edge():
    nb = cells(ALL_SKIP_NB201)["cell"]
    assert ind.skip_count(nb) == 6 and ind.pf_count(nb) == 6
    darts = cells(ALL_SKIP_DARTS)
    assert ind.skip_count(darts["normal"]) == 8 and ind.pf_count(darts["normal"]) == 8
    assert ind.skip_count(darts["reduce"]) == 1 and ind.pf_count(darts["reduce"]) == 3


def test_genotype_changes_and_swapped_edges():
    before = cells("|skip_connect~0|+|none~0|nor_conv_3x3~1|+"
                   "|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|")["cell"]
    after = cells("|skip_connect~0|+|none~0|skip_connect~1|+"
                  "|nor_conv_1x1~0|skip_connect~1|none~2|")["cell"]
    assert ind.genotype_changes(before, after) == 2 and ind.edges_swapped(before, after) == 0
    a = cells(ALL_SKIP_DARTS)["normal"]
    b = list(a)
    b[7] = ("sep_conv_3x3", 3, 5)          # node 3 now reads node 1 instead of s1
    assert ind.genotype_changes(a, b) == 1 and ind.edges_swapped(a, b) == 1
    b[6] = ("sep_conv_3x3", 0, 5)          # same input, different op: a change, not a swap
    assert ind.genotype_changes(a, b) == 2 and ind.edges_swapped(a, b) == 1


@pytest.mark.parametrize("space", SPACES.names())
def test_every_cell_indicator_gives_a_number_in_every_space(space):
    sp = SPACES.get(space)
    rng = np.random.default_rng(0)
    prev = {t: sp.logits({t: rng.normal(size=(sp.n_edges_of(t), len(sp.ops)))})[t]
            for t in sp.cell_types}
    cur = {t: a + rng.normal(size=a.shape) for t, a in prev.items()}
    g_prev, g_cur = (genotype_ops(sp.derive(a)) for a in (prev, cur))
    for t in sp.cell_types:
        state = ind.CellState(sp.ops, cur[t], softmax(cur[t]), g_cur[t], prev[t], g_prev[t])
        for name in INDICATORS.names():
            fn = INDICATORS.get(name).fn
            if fn is not None:
                v = fn(state)
                assert isinstance(v, float)
                assert np.isfinite(v) or name == "rank_tau", (space, name)


def test_every_indicator_explains_itself():
    docs = ind.indicator_docs()
    assert [d["name"] for d in docs] == INDICATORS.names()
    for d in docs:
        assert d["title"] and d["what"] and d["collapse"] and d["source"]
    assert ind.split_key("skip_mass.normal") == (INDICATORS.get("skip_mass"), "normal")
    assert ind.split_key("disc_gap") == (INDICATORS.get("disc_gap"), None)
    assert {d["name"] for d in rule_docs()} == {r.name for r in RULES}


# --- Hessian ---------------------------------------------------------------------------------

def test_top_eigenvalue_of_a_quadratic_with_known_hessian():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(60, 60)))
    # the most negative eigenvalue has the larger magnitude: plain power iteration would
    # return -3; the top of the spectrum is 2.0, only 2.5% above the next one
    eig = np.concatenate([np.linspace(-3.0, 1.9, 58), [1.95, 2.0]])
    h = torch.tensor(q @ np.diag(eig) @ q.T)
    x = torch.zeros(60, dtype=torch.float64, requires_grad=True)
    grad = torch.autograd.grad(0.5 * x @ h @ x, x, create_graph=True)[0]

    def hvp(v: torch.Tensor) -> torch.Tensor:  # through autograd, as for α
        return torch.autograd.grad(grad @ v, x, retain_graph=True)[0]

    assert probes.top_eigenvalue(hvp, 60, iters=20) == pytest.approx(2.0, rel=0.01)
    assert np.linalg.eigvalsh(probes.full_hessian(hvp, 60)).max() == pytest.approx(2.0, rel=1e-9)


def test_iterative_lambda_max_agrees_with_the_full_hessian_on_nb201():
    from darts_engine import build_search

    s = build_search(tiny(epochs=1))
    search(s.cfg, setup=s)                     # α and w no longer at their init
    batches = list(s.data.held_out.ordered(8))[:1]
    s.model.eval()
    buffers = {n: b.clone() for n, b in s.model.named_buffers()}
    exact = probes.hessian_eigenvalue(s.model, batches, ("cell",), 1e-3)   # 30 entries: full H
    assert not s.model.training                # mode and BN statistics are restored
    assert all(torch.equal(b, buffers[n]) for n, b in s.model.named_buffers())
    with probes._preserved(s.model):
        s.model.train()
        hvp, n = probes.alpha_hvp(s.model, batches, ("cell",), 1e-3)
        iterative = probes.top_eigenvalue(hvp, n, iters=20)
        v = torch.randn(n, dtype=torch.float64)
        hvp_wd, _ = probes.alpha_hvp(s.model, batches, ("cell",), 0.5)  # + weight decay · I
        assert torch.allclose(hvp_wd(v) - hvp(v), (0.5 - 1e-3) * v, atol=1e-6)
    assert n == 30
    assert iterative == pytest.approx(exact, rel=0.01)


# --- discretisation gap ----------------------------------------------------------------------

def test_discrete_weights_pick_one_op_per_kept_edge():
    sp = SPACES.get("darts")
    g = parse_genotype(ALL_SKIP_DARTS)
    w = discrete_weights(g, sp)
    assert w["normal"].sum() == 8 and w["reduce"].sum() == 8
    assert (w["normal"].sum(axis=1) <= 1).all()
    skip = DARTS.index("skip_connect")
    rows = [sp.edge_labels.index(lbl) for lbl in ("n0<-s0", "n0<-s1", "n3<-s0", "n3<-s1")]
    assert all(w["normal"][r, skip] == 1 for r in rows)
    assert w["reduce"][sp.edge_labels.index("n3<-n2"), DARTS.index("sep_conv_3x3")] == 1
    nb = discrete_weights(parse_genotype(ALL_SKIP_NB201), SPACES.get("nb201"))["cell"]
    assert (nb[:, NB201.index("skip_connect")] == 1).all() and nb.sum() == 6


def test_discretisation_gap_of_a_one_hot_supernet_is_zero():
    from darts_engine import build_search

    s = build_search(tiny(epochs=1))
    search(s.cfg, setup=s)
    with torch.no_grad():                       # α one-hot on conv3x3 everywhere
        s.model.alphas["cell"].fill_(-50.0)
        s.model.alphas["cell"][:, NB201.index("nor_conv_3x3")] = 50.0
    g = s.space.derive({"cell": s.model.alphas["cell"].detach().numpy()})
    calib = list(s.data.train.ordered(32))[:2]
    evaluation = list(s.data.held_out.ordered())
    buffers = {n: b.clone() for n, b in s.model.named_buffers()}
    discrete = probes.discrete_accuracy(s.model, g, s.space, calib, evaluation)
    assert all(torch.equal(b, buffers[n]) for n, b in s.model.named_buffers())
    probes.recalibrate_bn(s.model, calib)          # the supernet under the same BN protocol
    assert probes.accuracy(s.model, evaluation) - discrete == pytest.approx(0.0, abs=1e-9)


# --- alert rules on synthetic histories ------------------------------------------------------

def rows(key: str, values: list[float], start: int = 0) -> list[dict]:
    return [{"epoch": start + i, key: v} for i, v in enumerate(values)]


def fired(history: list[dict], **cfg) -> list[str]:
    return [f.rule for f in check_alerts(history, tiny(**cfg))]


def test_darts_plus_skip_rule():
    h = rows("skip_count.normal", [0, 1, 1, 2])
    assert fired(h, space="darts") == ["darts+-skip"]
    assert fired(h[:3], space="darts") == []
    assert fired(h + [{"epoch": 4, "skip_count.normal": 3}], space="darts") == []  # once
    assert fired(h, space="darts", alert_skip_count=3) == []
    assert fired(h, space="darts", alert_skip_count=0) == []
    assert fired(rows("skip_count.cell", [1, 2])) == ["darts+-skip"]       # NB201: the cell
    assert check_alerts(h, tiny())[0].keep_epoch == 2                       # before the alert


def test_darts_plus_stable_ranking_rule():
    h = rows("rank_stable_epochs", [0, 1, 2, 0, 1, 2, 3])
    assert fired(h, stable_epochs=3) == ["darts+-stable"]
    assert fired(h[:6], stable_epochs=3) == []
    assert fired(h, stable_epochs=4) == [] and fired(h, stable_epochs=0) == []


def test_darts_es_rule():
    flat = rows("hessian_eig", [1.0] * 20)
    assert fired(flat) == []
    rising = rows("hessian_eig", [1.0] * 10 + [1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.2, 2.4, 2.6, 2.8])
    assert fired(rising[:16]) == []                 # kept epoch 15 − 2 − 4 = 9 < 10
    assert fired(rising[:17]) == ["darts-es"]       # mean(1.4..2.2) = 1.8 / mean(1,1,1,1.2,1.4)
    assert check_alerts(rising[:17], tiny())[0].keep_epoch == 10  # centre of the earlier window
    assert fired(rising[:17], alert_es_factor=2.0) == []          # 1.8 / 1.12 = 1.61
    # measured every 2 epochs (odd epochs): the lag is 4 measurements = 8 epochs
    slope = [1.0 if e <= 11 else 1 + 0.2 * (e - 11) for e in range(24)]
    sparse = [r for r in rows("hessian_eig", slope) if r["epoch"] % 2 == 1]
    assert fired(sparse) == ["darts-es"] and fired(sparse[:-1]) == []   # 2.6 / 1.24 at 23
    assert check_alerts(sparse, tiny())[0].keep_epoch == 11
    early = rows("hessian_eig", [1, 1, 1, 1, 1, 9, 9, 9, 9, 9])   # before epoch 10: no alert
    assert fired(early) == []


def test_pf_mass_threshold_rule():
    h = [{"epoch": 0, "pf_mass.normal": 0.5, "pf_mass.reduce": 0.5},
         {"epoch": 1, "pf_mass.normal": 0.5, "pf_mass.reduce": 0.7}]
    assert fired(h) == []                          # off by default
    assert fired(h, alert_pf_mass=0.6) == ["pf-mass"]
    assert fired(h, alert_pf_mass=0.8) == []
    assert "reduce 0.70" in check_alerts(h, tiny(alert_pf_mass=0.6))[0].message


def test_alert_action_is_validated():
    with pytest.raises(ConfigError, match="alert_action") as e:
        tiny(alert_action="panic")
    assert e.value.field == "alert_action"


# --- in the search loop --------------------------------------------------------------------

def test_a_tiny_search_records_indicators_and_alerts_in_the_store(home):
    store = RunStore(home)
    cfg = tiny(epochs=2, hessian_every=2, gap_every=2, alert_pf_mass=0.01, alert_skip_count=0,
               stable_epochs=0)
    run_id = store.create_run(cfg.to_dict(), name="t")
    rec = store.recorder(run_id)
    result = search(cfg, rec, checkpoint_dir=store.run_dir(run_id))
    rec.close()
    assert result.status == "completed", result.error
    em = store.epoch_metrics(run_id)
    for key in ("skip_count.cell", "pf_mass.cell", "skip_mass.cell", "none_mass.cell",
                "entropy.cell", "margin.cell", "rank_tau.cell", "alpha_norm.cell",
                "alpha_grad_norm", "weight_grad_norm", "train_val_gap"):
        assert em[f"ind_{key}"].notna().all(), key
    for key in ("hessian_eig", "disc_gap", "disc_val_acc"):      # every 2 epochs: epoch 1 only
        assert em[f"ind_{key}"].isna().tolist() == [True, False], key
    assert em["ind_train_val_gap"].tolist() == pytest.approx(
        (em["train_acc"] - em["val_acc"]).tolist())
    alerts = store.alerts(run_id)
    assert list(alerts["rule"]) == ["pf-mass"] and list(alerts["epoch"]) == [0]
    assert list(alerts["action"]) == ["alert"]


def test_indicators_do_not_change_the_search():
    plain = search(tiny(epochs=2))
    measured = search(tiny(epochs=2, hessian_every=1, gap_every=1))
    for cell in plain.alphas:
        np.testing.assert_array_equal(plain.alphas[cell], measured.alphas[cell])


def test_stop_keeps_the_genotype_from_before_the_alert():
    probe = search(tiny(epochs=4))
    pf = [h["indicators"]["pf_mass.cell"] for h in probe.history]
    first = next((e for e in range(1, len(pf)) if pf[e] > max(pf[:e])), None)
    if first is None:
        pytest.skip(f"pf mass never rises in this tiny run: {pf}")
    threshold = (max(pf[:first]) + pf[first]) / 2
    events = []
    cfg = tiny(epochs=4, alert_pf_mass=threshold, alert_action="stop", alert_skip_count=0,
               stable_epochs=0)
    result = search(cfg, events.append)
    assert result.status == "stopped" and result.epochs_done == first + 1
    kept = probe.history[first - 1]["genotype"]
    assert result.genotype == kept
    alerts = [e for e in events if isinstance(e, AlertRecord)]
    assert [(a.epoch, a.rule, a.action) for a in alerts] == [(first, "pf-mass", "stop")]
    logs = [e.message for e in events if isinstance(e, LogRecord)]
    assert any(kept in m and f"epoch {first - 1}" in m for m in logs)
    assert events[-1].genotype == kept


def test_indicator_history_survives_a_resume(tmp_path):
    from darts_engine import SearchControl
    from darts_engine.events import EpochRecord

    cfg = tiny(epochs=3)
    whole = search(cfg, checkpoint_dir=tmp_path / "a")
    control = SearchControl()

    def stop_after_epoch_1(ev):
        if isinstance(ev, EpochRecord) and ev.epoch == 1:
            control.stop()

    first = search(cfg, stop_after_epoch_1, control, checkpoint_dir=tmp_path / "b")
    assert first.status == "stopped" and first.epochs_done == 2
    resumed = search(cfg, checkpoint_dir=tmp_path / "b", resume=True)
    assert resumed.history == whole.history    # indicators and genotypes included
