"""Figure builders (darts_engine/viz/) on hand-made inputs: the figure JSON a browser gets."""

from __future__ import annotations

import colorsys
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import plotly.io as pio
import pytest

from darts_engine import SPACES
from darts_engine.events import metric
from darts_engine.model.genotype import (
    DARTS_CELL,
    DARTS_OPS,
    NB201_CELL,
    NB201_OPS,
    DartsGenotype,
    NB201Genotype,
    genotype_ops,
    softmax,
)
from darts_engine.viz.alphas import alpha_heatmap, edge_weight_lines, param_free_mass
from darts_engine.viz.cells import (
    CELL_FONT,
    GRAPHVIZ_FONT_CSS,
    cell_dot,
    cell_dots,
    derive,
    stage_cells,
)
from darts_engine.viz.curves import (
    compare_curves,
    downsample,
    ema,
    format_indicator,
    indicator_overlay,
    indicator_panel,
    indicator_unit,
    training_curves,
)
from darts_engine.viz.palette import (
    ALERT_COLOR,
    EDGE_WEIGHT_LABEL,
    INDICATOR_COLOR,
    op_color,
    run_color,
)
from darts_engine.viz.tables import (
    config_differences,
    genotype_diff,
    summary_table,
)
from tests.helpers import array


def figure_json(fig) -> dict:
    return json.loads(pio.to_json(fig, validate=False))


def hue(color: str) -> float:
    r, g, b = (int(color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


# --- colours ---------------------------------------------------------------------------------
@pytest.mark.parametrize("space", SPACES.names())
def test_every_op_has_one_colour_warm_for_parameter_free(space):
    s = SPACES.get(space)
    for op in s.ops:
        h = hue(op_color(op))
        if op in s.param_free:
            assert h < 90 or h > 290, (op, h)   # reds, oranges, yellows, pinks
        else:
            assert 90 <= h <= 290, (op, h)      # greens, blues, violets


def test_op_colours_are_distinct_within_a_space():
    for space in SPACES.names():
        ops = SPACES.get(space).ops
        assert len({op_color(o) for o in ops}) == len(ops)


# --- helpers ---------------------------------------------------------------------------------
def test_downsample_keeps_last_and_bounds_count():
    assert downsample(5, 10).tolist() == [0, 1, 2, 3, 4]
    idx = downsample(1000, 150)
    assert len(idx) <= 150 and idx[-1] == 999 and np.all(np.diff(idx) > 0)


def test_ema_debiased_skips_nan():
    y = np.array([1.0, np.nan, 3.0, 3.0])
    out = ema(y, 0.5)
    assert out[0] == 1.0 and np.isnan(out[1])
    # debiased: (0.5*0.5*1 + 0.5*3) / (1 - 0.25) for the third value
    assert out[2] == pytest.approx((0.25 + 1.5) / 0.75)
    np.testing.assert_array_equal(ema(y, 0.0), y)


def test_param_free_mass_uniform_alphas():
    ops = DARTS_OPS
    pf = SPACES.get("darts").param_free
    assert param_free_mass(np.zeros((14, 8)), ops, pf) == pytest.approx(len(pf) / 8)
    skip = np.zeros((14, 8))
    skip[:, ops.index("skip_connect")] = 50
    assert param_free_mass(skip, ops, pf) == pytest.approx(1.0)


# --- α figures ---------------------------------------------------------------------------------
def test_alpha_heatmap_shape_scale_and_op_order():
    ops, edges = NB201_OPS, SPACES.get("nb201").edge_labels
    w = softmax(np.random.default_rng(0).normal(size=(6, 5)))
    fig = figure_json(alpha_heatmap(w, ops, edges, title="cell"))
    (trace,) = fig["data"]
    assert trace["type"] == "heatmap"
    assert trace["x"] == list(ops) and trace["y"] == list(edges)
    assert (trace["zmin"], trace["zmax"]) == (0.0, 1.0)
    np.testing.assert_allclose(array(trace["z"]), w, rtol=1e-6)


def test_alpha_heatmap_leaves_ops_an_edge_lacks_empty():
    """RobustDARTS S1: two ops per edge; the others are blank cells, not weights of 0.00."""
    space = SPACES.get("s1")
    mask = space.op_mask("normal")
    raw = np.where(mask, np.random.default_rng(1).normal(size=mask.shape), -np.inf)
    w = softmax(raw)
    fig = figure_json(alpha_heatmap(w, space.ops, space.edge_labels, mask=mask))
    (trace,) = fig["data"]
    z, text = array(trace["z"]).astype(float), np.array(trace["text"])
    assert np.isnan(z[~mask]).all() and (text[~mask] == "").all()
    np.testing.assert_allclose(z[mask], w[mask], rtol=1e-6)
    assert list(text[mask]) == [f"{v:.2f}" for v in w[mask]]
    with pytest.raises(ValueError, match="mask must have shape"):
        alpha_heatmap(w, space.ops, space.edge_labels, mask=mask[:3])


def test_alpha_heatmap_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        alpha_heatmap(np.zeros((5, 6)), NB201_OPS, SPACES.get("nb201").edge_labels)


def test_alpha_heatmap_edge_weight_strip_beside_the_ops():
    ops, edges = DARTS_OPS, SPACES.get("darts").edge_labels
    w = softmax(np.random.default_rng(0).normal(size=(14, 8)))
    beta = np.linspace(0.05, 0.95, 14)  # hand-made; any values in 0..1
    fig = figure_json(alpha_heatmap(w, ops, edges, edge_weights=beta))
    heat, strip = fig["data"]
    np.testing.assert_allclose(array(heat["z"]), w, rtol=1e-6)  # the ops part is unchanged
    assert strip["type"] == "heatmap" and strip["xaxis"] == "x2"
    assert strip["x"] == [EDGE_WEIGHT_LABEL] and strip["y"] == list(edges)  # same rows
    assert (strip["zmin"], strip["zmax"], strip["showscale"]) == (0.0, 1.0, False)  # same scale
    np.testing.assert_allclose(array(strip["z"]).reshape(-1), beta, rtol=1e-6)
    ops_axis, strip_axis = fig["layout"]["xaxis"]["domain"], fig["layout"]["xaxis2"]["domain"]
    assert ops_axis[1] < strip_axis[0] and strip_axis[1] - strip_axis[0] < 0.15  # narrow, right
    assert len(figure_json(alpha_heatmap(w, ops, edges))["data"]) == 1  # no β, no strip
    with pytest.raises(ValueError, match="edge_weights must have shape"):
        alpha_heatmap(w, ops, edges, edge_weights=np.ones(6))


@pytest.mark.parametrize("t", [np.arange(7.0), np.array([0, 0.2, 0.9, 1, 2, 2.1, 3])])
def test_edge_weight_lines_one_panel_per_edge_one_line_per_op(t):
    ops, edges = DARTS_OPS, SPACES.get("darts").edge_labels
    w = softmax(np.random.default_rng(1).normal(size=(7, 14, 8)))
    fig = figure_json(edge_weight_lines(t, w, ops, edges, cols=7))
    assert [tr["name"] for tr in fig["data"]] == list(ops)  # one trace (and colour) per op
    for tr in fig["data"]:
        assert tr["line"]["color"] == op_color(tr["name"])
    frames = [s for s in fig["layout"]["shapes"] if s["type"] == "rect"]
    assert len(frames) == 14
    titles = [a["text"] for a in fig["layout"]["annotations"] if a["text"].startswith("<b>")]
    assert titles == [f"<b>{e}</b>" for e in edges]
    # Edge 2, op 3: its segment of op 3's trace, back in real time and weight units.
    trace = fig["data"][3]
    segments = np.split(array(trace["customdata"]).reshape(-1, 2), 14)
    np.testing.assert_allclose(segments[2][:7, 0], t)
    np.testing.assert_allclose(segments[2][:7, 1], w[:, 2, 3], rtol=1e-6)
    assert np.isnan(segments[2][7]).all()  # a gap before the next panel
    y = np.split(array(trace["y"]), 14)[2][:7]
    frame = frames[2]
    np.testing.assert_allclose(y - frame["y0"], w[:, 2, 3], rtol=1e-6)
    x = np.split(array(trace["x"]), 14)[2][:7]
    assert x[0] == pytest.approx(frame["x0"]) and x[-1] == pytest.approx(frame["x1"])


def test_edge_weight_lines_write_their_time_range_rounded():
    """α snapshots fall mid-epoch (step / steps per epoch): the range reads 0.7 to 7.9, and a
    whole epoch without a decimal, not 0.714 / 7.86."""
    ops, edges = NB201_OPS, SPACES.get("nb201").edge_labels
    w = softmax(np.zeros((3, 6, 5)))
    for t, shown in (([5 / 7, 3.0, 55 / 7], ["epoch 0.7", "epoch 7.9"]),
                     ([1.0, 4.0, 8.0], ["epoch 1", "epoch 8"])):
        fig = figure_json(edge_weight_lines(np.array(t), w, ops, edges))
        texts = [a["text"] for a in fig["layout"]["annotations"]]
        assert [x for x in texts if x.startswith("epoch")] == shown


def test_training_curves_raw_faint_under_smoothed():
    steps = pd.DataFrame({"step": np.arange(1, 21), "train_loss": np.linspace(2, 1, 20),
                          "train_acc": np.linspace(0.1, 0.6, 20)})
    epochs = pd.DataFrame({"epoch": [0, 1], "val_loss": [1.8, 1.2], "val_acc": [0.2, 0.5],
                           "train_loss": [1.9, 1.3], "train_acc": [0.2, 0.5]})
    fig = figure_json(training_curves(steps, epochs, steps_per_epoch=10, smoothing=0.9))
    assert len(fig["data"]) == 6  # per panel: raw, smoothed, held-out
    raw, smooth, val = fig["data"][:3]
    assert raw["opacity"] < 0.5 and "opacity" not in smooth
    np.testing.assert_allclose(array(raw["x"]), np.arange(1, 21) / 10)
    np.testing.assert_allclose(array(smooth["y"]), ema(steps["train_loss"], 0.9))
    np.testing.assert_allclose(array(val["x"]), [1, 2])


def test_compare_curves_one_colour_per_run():
    ep = pd.DataFrame({"epoch": [0, 1], "val_loss": [1.0, 0.9], "val_acc": [0.3, 0.4],
                       "train_loss": [1.1, 1.0], "train_acc": [0.2, 0.3]})
    fig = figure_json(compare_curves({"a": ep, "b": ep}))
    assert len(fig["data"]) == 8
    colours = {tr["legendgroup"]: tr["line"]["color"] for tr in fig["data"]}
    assert colours == {"a": run_color(0), "b": run_color(1)}


# --- the cell DAG -----------------------------------------------------------------------------
DARTS_G = DartsGenotype(
    normal=[("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2),
            ("skip_connect", 0), ("sep_conv_5x5", 1), ("max_pool_3x3", 0), ("skip_connect", 4)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1)] * 4, reduce_concat=[2, 3, 4, 5])


def _dot_edges(dot: str) -> list[tuple[str, str, str]]:
    return re.findall(r'(\w+) -> (\w+) \[label="([^"]+)"', dot)


def test_cell_dot_darts_edges_labels_and_output():
    (dot,) = [cell_dot(genotype_ops(DARTS_G)["normal"], topology=DARTS_CELL)]
    edges = _dot_edges(dot)
    assert len(edges) == 8
    assert ("n0", "n2", "sep_conv_3x3") in edges and ("n4", "n5", "skip_connect") in edges
    assert dot.count("-> out") == 4 and '"c_{k-2}"' in dot and '"c_{k}"' in dot
    assert f'color="{op_color("skip_connect")}"' in dot


def test_cell_dot_nb201_has_no_concat_node():
    g = NB201Genotype(((("skip_connect", 0),), (("nor_conv_3x3", 0), ("none", 1)),
                       (("avg_pool_3x3", 0), ("skip_connect", 1), ("nor_conv_1x1", 2))))
    dot = cell_dot(genotype_ops(g)["cell"], topology=NB201_CELL)
    assert len(_dot_edges(dot)) == 6 and "out" not in dot


def _fontsizes(dot: str) -> list[float]:
    return [float(x) for x in re.findall(r"fontsize=([\d.]+)", dot)]


def test_cell_dot_fonts_are_large_enough_for_a_projector():
    """Node, op and title fonts of at least 20 pt; the NB201 cell is drawn top to bottom (left
    to right its six labelled edges make it ~1000 px wide, and the page scales it down to fit
    a column)."""
    nb = NB201Genotype(((("skip_connect", 0),), (("nor_conv_3x3", 0), ("none", 1)),
                        (("avg_pool_3x3", 0), ("skip_connect", 1), ("nor_conv_1x1", 2))))
    for dot in (cell_dot(genotype_ops(DARTS_G)["normal"], topology=DARTS_CELL, title="normal"),
                cell_dot(genotype_ops(nb)["cell"], topology=NB201_CELL, title="cell")):
        assert len(_fontsizes(dot)) == 3 and min(_fontsizes(dot)) >= 20
    assert "rankdir=TB" in cell_dot(genotype_ops(nb)["cell"], topology=NB201_CELL)
    assert "rankdir=LR" in cell_dot(genotype_ops(DARTS_G)["normal"], topology=DARTS_CELL)
    assert min(CELL_FONT.values()) >= 20
    # Streamlit's container CSS (`* { font-size: 0.6rem }`) beats the SVG attribute: the pages'
    # CSS gives each label the size its DOT attribute names (checked in Chromium by hand).
    for n in CELL_FONT.values():
        assert f'text[font-size="{n}.00"] {{ font-size: {n}px; }}' in GRAPHVIZ_FONT_CSS


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` is not installed")
def test_cell_dot_labels_render_at_least_16px_in_a_half_page_column():
    """Rendered by Graphviz and scaled to a 620 px column (a half of a 1400 px page, as Live's
    heatmap | cell row and a Compare of two runs are), the smallest label is >= 16 px."""
    nb = NB201Genotype(((("nor_conv_3x3", 0),), (("avg_pool_3x3", 0), ("nor_conv_1x1", 1)),
                        (("avg_pool_3x3", 0), ("avg_pool_3x3", 1), ("avg_pool_3x3", 2))))
    for dot in (cell_dot(genotype_ops(DARTS_G)["normal"], topology=DARTS_CELL, title="normal"),
                cell_dot(genotype_ops(nb)["cell"], topology=NB201_CELL, title="cell")):
        svg = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True,
                             check=True, timeout=30).stdout
        width_pt = float(re.search(r'<svg width="([\d.]+)pt"', svg).group(1))
        smallest = min(float(x) for x in re.findall(r'font-size="([\d.]+)"', svg))
        assert smallest * 620 / width_pt >= 16, (width_pt, smallest)


def test_alpha_rows_match_the_spaces_edge_labels():
    darts_labels = SPACES.get("darts").edge_labels
    names = ["s0", "s1", "n0", "n1", "n2", "n3"]
    for target in range(2, 6):
        for j in range(target):
            row = DARTS_CELL.row(j, target)
            assert darts_labels[row] == f"n{target - 2}<-{names[j]}"
    nb_labels = SPACES.get("nb201").edge_labels
    for target in range(1, 4):
        for j in range(target):
            assert nb_labels[NB201_CELL.row(j, target)] == f"{target}<-{j}"


def test_cell_dots_widths_follow_the_kept_ops_weight():
    a = np.zeros((6, 5))
    a[0, NB201_OPS.index("skip_connect")] = 5.0    # 1<-0 strongly skip
    a[5, NB201_OPS.index("nor_conv_3x3")] = 1.0    # 3<-2 mildly conv
    g = derive("nb201", NB201_OPS, {"cell": a})
    dot = cell_dots(g, {"cell": a}, NB201_OPS)["cell"]
    widths = {(s, t): float(w) for s, t, w in
                  re.findall(r"(\w+) -> (\w+) \[.*penwidth=([\d.]+)", dot)}
    p = softmax(a)
    assert f"skip_connect: weight {p[0, 1]:.2f}" in dot
    assert widths[("n0", "n1")] > widths[("n2", "n3")] > widths[("n0", "n2")]


def test_cell_dots_widths_follow_the_edge_weights_when_given():
    a = np.zeros((6, 5))
    a[:, NB201_OPS.index("nor_conv_3x3")] = 2.0    # every edge: the same op weight
    g = derive("nb201", NB201_OPS, {"cell": a})
    beta = np.array([1.0, 0.9, 0.1, 0.2, 0.3, 0.5])  # per node: 1 | 0.9 0.1 | 0.2 0.3 0.5
    dot = cell_dots(g, {"cell": a}, NB201_OPS, edge_weights={"cell": beta})["cell"]
    widths = {(s, t): float(w) for s, t, w in
              re.findall(r"(\w+) -> (\w+) \[.*penwidth=([\d.]+)", dot)}
    assert widths[("n0", "n1")] == pytest.approx(1 + 5 * 1.0)
    assert widths[("n0", "n2")] == pytest.approx(1 + 5 * 0.9)
    assert widths[("n1", "n2")] == pytest.approx(1 + 5 * 0.1)
    assert widths[("n2", "n3")] == pytest.approx(1 + 5 * 0.5)
    p = softmax(a)[0, NB201_OPS.index("nor_conv_3x3")]
    assert f"nor_conv_3x3: weight {p:.2f} · edge weight softmax(β) 0.10" in dot  # both named
    plain = cell_dots(g, {"cell": a}, NB201_OPS)["cell"]
    assert "softmax(β)" not in plain  # without edge weights: the op weight sets the width


def test_stage_cells_nb201_one_dag_and_genotype_per_stage_reached():
    cells = np.zeros((3, 6, 5))                      # (stages, edges, ops); stage 3 not reached
    cells[0, np.arange(6), NB201_OPS.index("skip_connect")] = 1
    cells[1, np.arange(6), [2, 3, 4, 0, 1, 2]] = 1
    stages = stage_cells({"cell": cells}, NB201_OPS, NB201_CELL)
    assert [k for k, _, _ in stages] == [0, 1]
    (k, text, dots), (_, text2, _) = stages
    assert text == "|skip_connect~0|+|skip_connect~0|skip_connect~1|+" \
                   "|skip_connect~0|skip_connect~1|skip_connect~2|"
    assert text2 == "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+" \
                    "|none~0|skip_connect~1|nor_conv_1x1~2|"
    assert list(dots) == ["cell"] and "stage 1 · cell" in dots["cell"]
    assert len(_dot_edges(dots["cell"])) == 6 and ("n1", "n2", "skip_connect") in \
        _dot_edges(dots["cell"])


def test_stage_cells_darts_leaves_out_a_cell_type_absent_at_a_depth():
    keep = [("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2), ("dil_conv_3x3", 2, 3),
            ("sep_conv_5x5", 0, 3), ("max_pool_3x3", 1, 4), ("skip_connect", 3, 4),
            ("sep_conv_3x3", 0, 5), ("avg_pool_3x3", 4, 5)]
    onehot = np.zeros((14, 8))
    for op, j, t in keep:
        onehot[DARTS_CELL.row(j, t), DARTS_OPS.index(op)] = 1
    normal, reduce = np.zeros((2, 14, 8)), np.zeros((2, 14, 8))
    normal[0] = normal[1] = reduce[1] = onehot      # stage 1 has no reduction cell
    stages = stage_cells({"normal": normal, "reduce": reduce}, DARTS_OPS, DARTS_CELL)
    (_, text0, dots0), (_, text1, dots1) = stages
    assert list(dots0) == ["normal"] and list(dots1) == ["normal", "reduce"]
    pairs = [("sep_conv_3x3", 0), ("skip_connect", 1), ("sep_conv_5x5", 0), ("dil_conv_3x3", 2),
             ("max_pool_3x3", 1), ("skip_connect", 3), ("sep_conv_3x3", 0), ("avg_pool_3x3", 4)]
    assert text0 == f"normal={pairs!r}" and text1 == f"normal={pairs!r}, reduce={pairs!r}"
    assert sorted(_dot_edges(dots1["reduce"])) == sorted(
        (f"n{j}", f"n{t}", op) for op, j, t in keep)
    assert "stage 2 · reduce cell" in dots1["reduce"]


# --- comparing ---------------------------------------------------------------------------------
def test_genotype_diff_ignores_order_within_a_node():
    other = DartsGenotype(
        normal=[("skip_connect", 1), ("sep_conv_3x3", 0)] + list(DARTS_G.normal[2:6])
        + [("avg_pool_3x3", 0), ("skip_connect", 4)],
        normal_concat=[2, 3, 4, 5], reduce=DARTS_G.reduce, reduce_concat=[2, 3, 4, 5])
    diff = genotype_diff({"a": str(DARTS_G), "b": str(other)}, DARTS_OPS)
    assert list(diff.columns) == ["cell", "node", "a", "b", "differs"]
    assert len(diff) == 8
    changed = diff[diff["differs"]]
    assert changed[["cell", "node"]].values.tolist() == [["normal", "3"]]
    assert changed["b"].iloc[0] == "avg_pool_3x3 ← c_{k-2}, skip_connect ← 2"


VAL_ACC = metric("val_acc", "val accuracy", unit="%", headline=True, scale=100.0)


def test_summary_table_and_config_differences():
    base = {"space": "nb201", "algorithm": "bilevel-1st", "seed": 2, "epochs": 3,
            "arch_lr": 0.01, "name": "x"}
    g = "|skip_connect~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|skip_connect~1|avg_pool_3x3~2|"
    run = {"config": base, "epochs_done": 3, "headline": VAL_ACC, "values": [0.2, 0.5, 0.4],
           "wall_time": 65.0,
           "genotype": g, "alphas": {"cell": np.zeros((6, 5))}, "ops": NB201_OPS,
           "param_free": ("none", "skip_connect", "avg_pool_3x3"), "cell": "cell"}
    single = dict(run, config=dict(base, algorithm="single", name="y"))
    assert config_differences({"a": run["config"], "b": single["config"]}) == [
        "algorithm"]
    table = summary_table({"bi": run, "single": single})
    assert list(table.columns) == ["bi", "single"]
    assert table.loc["final val accuracy", "bi"] == "40.0%"
    assert table.loc["best val accuracy", "bi"] == "50.0%"
    assert table.loc["skip_connect in the cell", "bi"] == "3"       # NB201's cell is "cell"
    assert table.loc["parameter-free ops in the cell", "bi"] == "5"
    assert table.loc["parameter-free α mass (cell)", "bi"] == "0.60"
    assert table.loc["wall time", "bi"] == "1m 05s"
    assert table.loc["algorithm", "single"] == "single"
    lr = summary_table({"a": run, "b": dict(run, config=dict(base, arch_lr=0.1))})
    assert lr.loc["config · arch_lr"].tolist() == ["0.01", "0.1"]


def test_summary_table_shows_each_runs_declared_headline_with_its_scale_unit_and_direction():
    """A lower-is-better metric in dB: best is the minimum; a run without that metric gets –."""
    base = {"space": "nb201", "algorithm": "bilevel-1st", "epochs": 3}
    err = metric("err", "error", unit="dB", higher_is_better=False, headline=True, scale=10.0)
    run = {"config": base, "epochs_done": 3, "headline": err, "values": [0.5, 0.2, np.nan],
           "wall_time": 1.0, "genotype": "", "alphas": {}, "ops": NB201_OPS,
           "param_free": (), "cell": "cell"}
    acc = dict(run, headline=VAL_ACC, values=[0.25])
    table = summary_table({"a": run, "b": acc})
    assert table.loc["final error", "a"] == "–"          # the last epoch recorded NaN
    assert table.loc["best error", "a"] == "2.0dB"       # min(0.5, 0.2) × 10
    assert table.loc["best error", "b"] == "–"
    assert table.loc["best val accuracy", "b"] == "25.0%"
    assert table.loc["best val accuracy", "a"] == "–"


# --- collapse indicators ------------------------------------------------------------------
def indicator_epochs() -> pd.DataFrame:
    """Four epochs; λmax measured every 2nd epoch only (NaN in the others, as the store reads)."""
    return pd.DataFrame({"epoch": [0, 1, 2, 3],
                         "ind_skip_mass.cell": [0.20, 0.25, 0.35, 0.50],
                         "ind_none_mass.cell": [0.20, 0.15, 0.10, 0.05],
                         "ind_hessian_eig": [np.nan, 1.5, np.nan, 3.0]})


def panel_points(fig: dict, color: str) -> np.ndarray:
    """(epoch, value) rows of the panel trace in `color`, NaN separators dropped."""
    (trace,) = [t for t in fig["data"] if t["line"]["color"] == color]
    pts = array(trace["customdata"]).astype(float).reshape(-1, 2)
    return pts[np.isfinite(pts[:, 0])]


def test_indicator_panel_one_figure_skips_missing_epochs_and_marks_alerts():
    keys = ["hessian_eig", "skip_mass.cell"]
    fig = figure_json(indicator_panel(indicator_epochs(), keys, ["λmax", "skip"],
                                      [2, 2, 0], cols=2))
    # λmax (slate): measured at epochs 2 and 4 only (1-based), the gaps dropped, not drawn as 0
    np.testing.assert_array_equal(panel_points(fig, INDICATOR_COLOR), [[2, 1.5], [4, 3.0]])
    skip = panel_points(fig, op_color("skip_connect"))
    np.testing.assert_allclose(skip, [[1, .2], [2, .25], [3, .35], [4, .5]])
    # Each panel's values scaled to its own range inside its unit square, time shared:
    trace = next(t for t in fig["data"] if t["line"]["color"] == INDICATOR_COLOR)
    x, y = (array(trace[k]) for k in ("x", "y"))
    ok = np.isfinite(x)
    np.testing.assert_allclose(x[ok], [1 / 3, 1.0])            # epochs 2, 4 of 1..4
    np.testing.assert_allclose(y[ok], [0.05, 0.95])           # min -> 0.05, max -> 0.95
    alert_lines = [s for s in fig["layout"]["shapes"] if s["type"] == "line"]
    assert len(alert_lines) == 2 * 2                           # epochs 1 and 3, in both panels
    assert all(s["line"]["color"] == ALERT_COLOR for s in alert_lines)
    assert sorted({round(s["x0"], 6) for s in alert_lines})[:2] == [0, round(2 / 3, 6)]
    texts = [a["text"] for a in fig["layout"]["annotations"]]
    assert "<b>λmax</b>" in texts and "now 3 · range 1.5–3" in texts


def test_indicator_panel_keeps_skip_and_none_apart_in_their_op_colours():
    fig = figure_json(indicator_panel(indicator_epochs(),
                                      ["skip_mass.cell", "none_mass.cell"],
                                      ["skip", "none"]))
    df = indicator_epochs()
    np.testing.assert_allclose(panel_points(fig, op_color("skip_connect"))[:, 1],
                               df["ind_skip_mass.cell"])
    np.testing.assert_allclose(panel_points(fig, op_color("none"))[:, 1],
                               df["ind_none_mass.cell"])


def test_indicator_panel_of_an_unmeasured_indicator_says_not_yet():
    fig = figure_json(indicator_panel(indicator_epochs(), ["disc_gap"], ["gap"]))
    assert panel_points(fig, INDICATOR_COLOR).size == 0
    assert "not yet" in [a["text"] for a in fig["layout"]["annotations"]]
    with pytest.raises(ValueError, match="one label per key"):
        indicator_panel(indicator_epochs(), ["disc_gap"], [])


def test_accuracy_gap_indicators_are_shown_in_percentage_points():
    """train − val accuracy and the discretisation gap are recorded as fractions (as val_acc
    is) and shown in percentage points; the derived cell's accuracy in %; others as recorded."""
    df = pd.DataFrame({"epoch": [0, 1], "ind_train_val_gap": [0.02, 0.0122],
                       "ind_disc_val_acc": [0.5, 0.975], "ind_skip_mass.cell": [0.2, 0.3]})
    assert format_indicator("train_val_gap", 0.0122) == "1.22 pp"
    assert format_indicator("disc_val_acc", 0.975) == "97.5%"
    assert format_indicator("skip_mass.cell", 0.3) == "0.3"
    fig = figure_json(indicator_panel(df, ["train_val_gap", "skip_mass.cell"], ["gap", "skip"]))
    texts = [a["text"] for a in fig["layout"]["annotations"]]
    assert "now 1.22 pp · range 1.22–2 pp" in texts and "now 0.3 · range 0.2–0.3" in texts
    overlay = figure_json(indicator_overlay({"a": df}, "train_val_gap", "gap"))
    np.testing.assert_allclose(array(overlay["data"][0]["y"]), [2.0, 1.22])
    assert overlay["layout"]["yaxis"]["title"]["text"] == "gap (percentage points)"
    assert df["ind_train_val_gap"].tolist() == [0.02, 0.0122]   # the table is not changed


def test_an_indicators_display_unit_comes_from_its_declaration():
    """A plug-in's indicator declares its unit and scale; the charts need no table of their own."""
    from darts_engine.monitor.indicators import Indicator
    from darts_engine.registries import INDICATORS

    INDICATORS.register("toy_gap", Indicator("toy_gap", "Toy gap", "w", "c", "s", per_cell=False,
                                             unit="pp", scale=100.0))
    try:
        assert indicator_unit("toy_gap") == (100.0, "pp")
        assert format_indicator("toy_gap", 0.031) == "3.1 pp"
    finally:
        INDICATORS.unregister("toy_gap")
    assert indicator_unit("toy_gap") == indicator_unit("skip_mass.normal") == (1.0, "")


def test_indicator_overlay_one_line_per_run_that_measured_it():
    runs = {"a": indicator_epochs(), "b": indicator_epochs().iloc[:2],
            "c": pd.DataFrame({"epoch": [0]})}
    fig = figure_json(indicator_overlay(runs, "hessian_eig", "λmax"))
    assert [t["name"] for t in fig["data"]] == ["a", "b"]
    assert fig["layout"]["yaxis"]["title"]["text"] == "λmax"
    assert [t["line"]["color"] for t in fig["data"]] == [run_color(0), run_color(1)]
    np.testing.assert_array_equal(array(fig["data"][1]["x"]), [2])
