"""Fidelity to the reference code, each checked against an independent hand computation.

- MS-DARTS' mean shift (aaron851113/MS-DARTS, attacker/perturb_ms.py `Mean_Shift_alpha` with
  sota/cnn/model_search.py `clip()`): samples clipped to [0, 1] *and renormalised* before the
  loss and the kernel distance; the update averages the unclipped samples.
- DARTS-ES (automl/RobustDARTS, src/utils.py `EVLocalAvg`): the start condition is on the kept
  epoch and the lag counts λmax measurements.
- RobustDARTS' S4 `noise` op (src/operations.py `NoiseOp`): N(0, 1) in eval mode too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from darts_engine.methods.smoothing import mean_shift
from darts_engine.model.ops import NoiseOp
from darts_engine.monitor.alerts import darts_es
from tests.helpers import tiny

# --- MS-DARTS mean shift ----------------------------------------------------------------------


def _np_clip_rows(raw: np.ndarray) -> np.ndarray:
    """The reference `clip()`, row by row: argmax of the raw row, clamp, revive, divide by sum."""
    out = raw.copy()
    for line in out:
        top = int(np.argmax(line))
        np.clip(line, 0.0, 1.0, out=line)
        if line.sum() == 0.0:
            line[top] = 1.0
        line /= line.sum()
    return out


def test_one_mean_shift_iteration_matches_the_reference_arithmetic():
    rng = np.random.default_rng(0)
    p_np = {t: np.exp(rng.normal(size=(2, 3)) * 2) for t in ("normal", "reduce")}
    p_np = {t: w / w.sum(-1, keepdims=True) for t, w in p_np.items()}   # rows of softmax(α)
    coef = {t: rng.normal(size=(2, 3)) for t in p_np}                    # a linear mock loss
    p = {t: torch.tensor(w) for t, w in p_np.items()}

    def loss_fn(w):
        return sum((w[t] * torch.tensor(coef[t])).sum() for t in w) ** 2

    eps, n, h = 0.25, 3, 1.0
    torch.manual_seed(7)
    got = mean_shift(p, loss_fn, eps, samples=n, iters=1, bandwidth=h)

    # the same uniform draws (sample by sample, cell type by cell type), then numpy only
    torch.manual_seed(7)
    noise = [{t: (2 * torch.rand_like(w) - 1).numpy() * eps for t, w in p.items()}
             for _ in range(n)]
    raw = [{t: p_np[t] + noise[i][t] for t in p_np} for i in range(n)]   # ξ̃_n
    clipped = [{t: _np_clip_rows(r[t]) for t in r} for r in raw]         # ξ_n, rows sum to 1
    assert any((r[t] < 0).any() for r in raw for t in r)                 # some entries clip
    losses = np.array([sum((c[t] * coef[t]).sum() for t in c) ** 2 for c in clipped])
    omega = np.exp(losses - losses.max())
    omega /= omega.sum()
    for t in p_np:
        d2 = np.array([((p_np[t] - c[t]) ** 2).sum() for c in clipped]) / h ** 2
        k = np.exp(-0.5 * d2) / (h * math.sqrt(2 * math.pi))
        expected = sum(omega[i] * k[i] * raw[i][t] for i in range(n)) / (omega @ k)
        np.testing.assert_allclose(got[t].numpy(), expected, rtol=1e-10, atol=1e-12)


# --- DARTS-ES -----------------------------------------------------------------------------------


def _rows(values: dict[int, float], epochs: int) -> list[dict]:
    return [{"epoch": e, **({"hessian_eig": values[e]} if e in values else {})}
            for e in range(epochs)]


def _first_alert(history: list[dict], **cfg) -> tuple[int, int] | None:
    """(epoch the rule first holds, epoch whose genotype it keeps), or None."""
    c = tiny(**cfg)
    for e in range(1, len(history) + 1):
        cond = darts_es(history[:e], c)
        if cond is not None:
            return int(history[e - 1]["epoch"]), cond.keep_epoch
    return None


def _robustdarts_es(measured: list[tuple[int, float]], ev_freq: int, factor: float = 1.3,
                    start: int = 10, window: int = 5, delta: int = 4) -> tuple[int, int] | None:
    """EVLocalAvg.update + early_stop, restated: local averages from ceil(window/2) values on,
    each belonging to epoch − ev_freq·⌊window/2⌋; compared with the one `delta` entries back."""
    ev, la = [], []
    for epoch, v in measured:
        ev.append(v)
        if len(ev) < math.ceil(window / 2):
            continue
        la.append(np.mean(ev[-window:]))
        kept = epoch - ev_freq * (window // 2) - ev_freq * delta
        if kept >= start and la[-1] / la[-1 - delta] > factor:
            return epoch, kept
    return None


@pytest.mark.parametrize("every, expected", [(2, (22, 10)), (1, (16, 10))])
def test_darts_es_counts_measurements_and_starts_on_the_kept_epoch(every, expected):
    """λmax 1 up to epoch 10, 2 after. Hand count, every 2 epochs: at epoch 22 the kept epoch
    (22 − 2·2 − 2·4) reaches 10; the earlier window is the measurements at 6..14 (mean 1.4),
    2/1.4 > 1.3. Reading epochs instead fires at 18 (epoch ≥ 10), keeping epoch 6. Every epoch:
    at 16 the kept epoch is 16 − 2 − 4 = 10, earlier window 8..12 (mean 1.4); an 8-epoch lag
    would fire at 13."""
    measured = [(e, 1.0 if e <= 10 else 2.0) for e in range(0, 40, every)]
    history = _rows(dict(measured), 40)
    assert _first_alert(history) == expected
    assert _robustdarts_es(measured, every) == expected


@pytest.mark.parametrize("seed", range(6))
def test_darts_es_agrees_with_the_reference_tracker_on_random_curves(seed):
    rng = np.random.default_rng(seed)
    every = [1, 2, 3][seed % 3]
    values = np.exp(np.cumsum(rng.normal(0.05, 0.15, size=60)))
    measured = [(e, float(values[e])) for e in range(0, 60, every)]
    assert _first_alert(_rows(dict(measured), 60)) == _robustdarts_es(measured, every)


def test_darts_es_compares_with_a_partial_earlier_window_as_the_reference_does():
    """λmax every 11 epochs (0, 11, ..., 110): 1 for seven measurements, then 3. At the 8th
    (epoch 77) the kept measurement is the 2nd (epoch 11 >= 10); the local average 4
    measurements earlier is over the 4 values there are (mean 1), now (1+1+1+1+3)/5 = 1.4 > 1.3.
    Waiting for a full earlier window would fire one measurement later, at epoch 88."""
    measured = [(e, 1.0 if e < 77 else 3.0) for e in range(0, 121, 11)]
    assert _robustdarts_es(measured, 11) == (77, 11)
    assert _first_alert(_rows(dict(measured), 121)) == (77, 11)


def test_alert_sources_cite_papers_and_the_cli_line_points_to_the_guide():
    from darts_engine.monitor.alerts import RULES, alert_line

    for rule in RULES:
        assert "ALGORITHMS" not in rule.source + rule.explanation
        assert "Guide" not in rule.source           # the Guide shows the source: no self-citation
        assert alert_line(0, rule.name, "m").endswith(f"{rule.source}; see the dashboard's "
                                                      "Guide, Alerts")
    es = next(r for r in RULES if r.name == "darts-es")
    assert "Zela et al. 2020" in es.source
    assert "Zela et al. 2020" in alert_line(22, "darts-es", "DARTS-ES: curvature rising")


def test_ms_darts_preset_runs_the_plain_darts_space_with_augmentation():
    """MS-DARTS' default space "s5" is DARTS' 8 ops with `none` and without `noise`."""
    from darts_engine.model.spaces import get_space
    from darts_engine.train.presets import preset_values

    for title in ("MS-DARTS code defaults (CIFAR-10)", "SDARTS-RS paper settings (CIFAR-10)"):
        values = preset_values(title)
        assert values["augment"] is True and values["space"] == "darts"
    ops = get_space("darts").ops
    assert len(ops) == 8 and "none" in ops and "noise" not in ops


# --- RobustDARTS S4 noise op ------------------------------------------------------------------


@pytest.mark.parametrize("stride", [1, 2])
def test_noise_op_is_standard_normal_in_eval_mode_too(stride):
    op = NoiseOp(stride).eval()
    torch.manual_seed(0)
    x = torch.full((8, 16, 64, 64), 5.0)
    y = op(x)
    assert y.shape == (8, 16, 64 // stride, 64 // stride)
    assert abs(float(y.mean())) < 0.01 and abs(float(y.std()) - 1) < 0.01
    assert not torch.equal(op(x), y)                      # fresh noise each call


CIFAR_PAPER_PRESETS = (
    "DARTS paper settings (CIFAR-10)",        # train/presets.py
    "NAS-Bench-201 settings (CIFAR-10)",      # train/presets.py
    "PC-DARTS paper settings (CIFAR-10)",     # methods/pcdarts.py
    "SDARTS-RS paper settings (CIFAR-10)",    # methods/smoothing.py
    "MS-DARTS code defaults (CIFAR-10)",      # methods/smoothing.py
)


@pytest.mark.parametrize("title", CIFAR_PAPER_PRESETS)
def test_cifar_paper_presets_augment_as_their_reference_code(title):
    """quark0 train_search.py, AutoDL get_nas_search_loaders, PC-DARTS, SDARTS and MS-DARTS
    all search on CIFAR-10 with RandomCrop(32, padding=4) + RandomHorizontalFlip (train/data.py
    CIFAR_CROP_FLIP). Catches: `augment=True` dropped from the DARTS, NB201 or PC-DARTS preset
    (no other test does; SDARTS-RS / MS-DARTS are also covered by the MS-DARTS preset test)."""
    from darts_engine.train.presets import preset_values

    values = preset_values(title)
    assert values["dataset"] == "cifar10"
    assert values["augment"] is True


def test_every_cifar_preset_augments():
    """The same for any preset added later on CIFAR-10/100, so the list above cannot go stale."""
    from darts_engine.train.presets import PRESETS, preset_values

    cifar = [t for t in PRESETS if preset_values(t)["dataset"] in ("cifar10", "cifar100")]
    assert set(CIFAR_PAPER_PRESETS) <= set(cifar)
    assert [t for t in cifar if preset_values(t)["augment"] is not True] == []


def test_nb201_preset_takes_the_weight_step_first():
    """AutoDL-Projects exps/NAS-Bench-201-algos/DARTS-V1.py `search_func`: w step, then α step.
    Catches: "step_order": "weights-first" dropped from the NB201 preset (train/presets.py);
    DARTS' own preset keeps quark0's alpha-first order."""
    from darts_engine.train.presets import preset_config, preset_values

    assert preset_values("NAS-Bench-201 settings (CIFAR-10)")["step_order"] == "weights-first"
    assert preset_config("NAS-Bench-201 settings (CIFAR-10)").step_order == "weights-first"
    assert preset_values("DARTS paper settings (CIFAR-10)")["step_order"] == "alpha-first"
