"""Guide: what DARTS is, why it collapses, and every method, algorithm, relaxation, space,
indicator and alert the engine offers, for a student. The introduction is written here; every
later section is generated from the engine's registries and their help texts, so a new entry
appears without touching this page. Other pages link to its anchors (/guide#indicators)."""

import re

import streamlit as st

from darts_engine import ALGORITHMS, DATASETS, METHODS, RELAXATIONS, SPACES, TASKS
from darts_engine.monitor.alerts import rule_docs
from darts_engine.monitor.indicators import indicator_docs
from darts_engine.registries import ALERT_ACTIONS
from darts_engine.viz.curves import UNIT_NAMES
from pages import common

DARTS_TEXT = r"""
**DARTS** (Liu, Simonyan & Yang, *DARTS: Differentiable Architecture Search*, ICLR 2019) turns
the discrete choice "which operation goes on this edge of the cell?" into a continuous one that
gradient descent can optimise.

**Continuous relaxation (§2.2).** A cell is a small graph; each edge $(i, j)$ carries *every*
candidate operation $o$ (convolutions, pooling, skip connection, `none`) at once, each with a
learnable logit $\alpha^{(i,j)}_o$. The edge outputs the softmax-weighted mixture

$$\bar o^{(i,j)}(x) = \sum_o
\frac{\exp \alpha^{(i,j)}_o}{\sum_{o'} \exp \alpha^{(i,j)}_{o'}}\, o(x).$$

The network holding all these mixtures is the *supernet*; $\alpha$ (one row per edge, one column
per op) is its architecture.

**A bi-level problem (§2.3).** The weights $w$ are fitted on the training data, the
architecture on held-out data:

$$\min_\alpha \; \mathcal L_{val}(w^*(\alpha), \alpha) \quad \text{s.t.} \quad
w^*(\alpha) = \arg\min_w \mathcal L_{train}(w, \alpha).$$

Steps alternate between $w$ and $\alpha$. *First order* pretends $w^*(\alpha) = w$: the α step is
just the gradient of the validation loss. *Second order* looks one weight step ahead
($w' = w - \xi \nabla_w \mathcal L_{train}$) and differentiates through it; the extra
Hessian-vector product is approximated by finite differences, which makes a step about 2-4×
dearer.

**The derived cell (§2.4).** When the search ends, $\alpha$ is rounded to a discrete cell: on
every edge the strongest operation (argmax of the weights, `none` excluded in the DARTS space),
and in the DARTS cell each intermediate node keeps only its **two** strongest incoming edges.
NAS-Bench-201 keeps all six edges and takes the argmax on each. That cell is what would be
trained from scratch and reported.
"""

COLLAPSE_TEXT = r"""
Run DARTS long enough and the derived cell fills up with **parameter-free operations**: skip
connections, pooling, `none`. The supernet's accuracy keeps rising while the cell it hands you
gets worse. Several papers explain why and propose a cure; the dashboard measures what they
measure.

- **Zela et al. 2020**, *Understanding and Robustifying Differentiable Architecture Search*
  (RobustDARTS, ICLR 2020). The dominant eigenvalue $\lambda_{max}$ of the Hessian of the
  validation loss with respect to $\alpha$ grows during the search; a sharp minimum in $\alpha$
  loses a lot of accuracy when $\alpha$ is rounded to one op per edge. **DARTS-ES** stops the
  search when the local average of $\lambda_{max}$ rises too fast. Their spaces S1-S4 make the
  failure appear quickly.
- **Liang et al. 2019**, *DARTS+: Improved Differentiable Architecture Search with Early
  Stopping*. Collapse is overfitting of the bi-level search: stop when the normal cell has two
  or more skip connections, or when the ranking of the learnable ops has been stable for a
  number of epochs.
- **Chu et al. 2020**, *Fair DARTS* (ECCV 2020) and *DARTS-* (ICLR 2021). The softmax makes ops
  compete exclusively, and the skip connection has an unfair advantage because it eases the
  supernet's optimisation (like a residual link); Fair DARTS gives each op an independent
  sigmoid weight, DARTS- adds an auxiliary skip whose weight decays away.
- **Hou et al. 2021**, *Single-DARTS*. Blames the bi-level optimisation itself: updating $w$ and
  $\alpha$ together on the same batch (single-level) avoids the collapse.
- **Wang et al. 2021**, *Rethinking Architecture Selection in Differentiable NAS* (ICLR 2021).
  The magnitude of $\alpha$ does not say how much an operation contributes; skip wins the
  argmax although removing it would hurt less. Selecting ops by how much the supernet's
  accuracy drops without them gives better cells.

The indicators and alerts below put these readings side by side on your own runs.
"""


# A displayed formula: $$ ... $$, possibly over several source lines (kept under 100 columns).
DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)


def prose(text: str) -> None:
    """Markdown with its displayed formulas drawn by st.latex: st.markdown's KaTeX fails on a
    $$ block that spans source lines and shows the raw TeX, and the prose after it, as an error."""
    for i, part in enumerate(DISPLAY_MATH.split(text)):
        if i % 2:
            st.latex(" ".join(part.split()))
        elif part.strip():
            st.markdown(part)


def entry(title: str, name: str, text: str) -> None:
    """One registry entry: its title, its registered name (what the CLI and a config use)
    and its help text."""
    st.markdown(f"**{title}** · `{name}`\n\n{text}")


def how_often(every: str) -> str:
    return ("every epoch" if every == "epoch"
            else f"every `{every}` epochs (off when `{every}` is 0)")


common.require_app()
st.title("Guide")
st.caption("What DARTS is, why it collapses, and what each option and chart of this dashboard "
           "means, with the paper it comes from.")

st.header("What DARTS is", anchor="darts")
prose(DARTS_TEXT)

st.header("Why it collapses", anchor="collapse")
prose(COLLAPSE_TEXT)

st.header("Methods", anchor="methods")
st.markdown("A method changes the supernet or the loop (its hooks); any method runs with any "
            "algorithm below unless it says otherwise.")
for name in METHODS:
    method = METHODS.get(name)
    entry(method.label, name, method.description)

st.header("Algorithms", anchor="algorithms")
st.markdown("How weights and α are updated each step.")
for name in ALGORITHMS:
    entry(ALGORITHMS.help(name) or name, name, ALGORITHMS.get(name).description)

st.header("Relaxations", anchor="relaxations")
st.markdown("How each edge's α becomes mixing weights.")
for name in RELAXATIONS:
    entry(name, name, RELAXATIONS.help(name))

st.header("Tasks", anchor="tasks")
st.markdown("What a search is trained for: its data, the losses of both steps and its metrics "
            "(the headline is shown where one number sums a run up).")
for name in TASKS:
    task = TASKS.get(name)
    head = task.headline()
    entry(task.label, name, f"{task.description}.\n\nHeadline: {head['label']}"
                            + (f" ({head['unit']})" if head.get("unit") else "")
                            + ". Spaces: " + ", ".join(f"`{n}`" for n in SPACES if task.serves(n))
                            + ".")

st.header("Search spaces", anchor="spaces")
for name in SPACES:
    space = SPACES.get(name)
    entry(name, name, f"{space.description}.\n\nOps: {', '.join(f'`{o}`' for o in space.ops)}. "
                      f"Cell types: {', '.join(space.cell_types)}.")

st.header("Datasets", anchor="datasets")
for name in DATASETS:
    entry(name, name, DATASETS.help(name))

st.header("Indicators", anchor="indicators")
st.markdown("Computed during the search and drawn on the Live and Compare pages. Each says what "
            "it measures, what a collapse looks like on it, and where it comes from.")
for doc in indicator_docs():
    scope = "one value per cell type" if doc["per_cell"] else "one value per run"
    entry(doc["title"], doc["name"],
          f"{doc['what']}\n\n*Collapse:* {doc['collapse']}\n\n*Source:* {doc['source']}. "
          f"Measured {how_often(doc['every'])}, {scope}"
          + (f"; shown in {UNIT_NAMES.get(doc['unit'], doc['unit'])}." if doc["unit"] else "."))

st.header("Alerts", anchor="alerts")
st.markdown("Rules checked after every epoch. What happens when one fires is the run's "
            "`alert_action`:")
st.markdown("\n".join(f"- `{name}`: {ALERT_ACTIONS.help(name)}" for name in ALERT_ACTIONS))
for doc in rule_docs():
    entry(doc["title"], doc["name"], f"{doc['explanation']}\n\n*Source:* {doc['source']}.")
