"""The Live page's drawings of plug-in artifacts: LFR-DARTS' cell per stage (kinds stage /
stage_cells), a super-resolution run's pictures (image_strip), and one line for each kind no
renderer knows, so nothing is silently missing. Not a page itself: pages/live.py lists these
sections.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from darts_engine.registries import METHODS, SPACES
from darts_engine.runs.states import RunState, is_active
from darts_engine.runs.views import RunView
from darts_engine.viz.cells import stage_cells
from darts_engine.viz.images import strip_panels
from pages import common

STAGE_KINDS = ("stage", "stage_cells")
IMAGE_KINDS = ("image_strip", "image_strip_scores")
KNOWN_KINDS = ("edge_weights", "edge_logits", *STAGE_KINDS, *IMAGE_KINDS)  # kinds drawn here


def images_section(view: RunView, status: dict[str, Any]) -> None:
    """Artifacts of kind image_strip (super-resolution): a fixed test crop as the run sees it
    after each epoch, with each panel's PSNR against HR."""
    for k, strip in enumerate(view.image_strips):
        st.subheader("The pictures · " + strip.declaration.get("label", "image strip"))
        epochs = [int(e) for e in strip.epochs]
        epoch = epochs[-1]
        if len(epochs) > 1:
            epoch = st.select_slider("Epoch", epochs, value=epochs[-1],
                                     format_func=lambda e: str(e + 1),
                                     key=f"live_strip_epoch_{k}")
        images, scores = strip.at(epoch)
        panels = strip_panels(images, scores, strip.titles)
        st.image([p for p, _ in panels], caption=[c for _, c in panels])
        st.caption(f"Epoch {epoch + 1}. The same crop every epoch, enlarged by repeating pixels "
                   "so that no smoothing hides the detail; PSNR on the Y channel against HR "
                   "with a border of the scale cropped, as the validation PSNR.")


def stages_section(view: RunView, status: dict[str, Any]) -> None:
    """Artifacts of kind stage / stage_cells (LFR-DARTS): the stage searched now and the cell
    each stage derived so far."""
    if not any(k in view.artifacts for k in STAGE_KINDS):
        return
    method = view.config.get("method", "")
    st.subheader("Cells per depth · "
                 + (METHODS.get(method).label if method in METHODS else method))
    cells = view.stage_cells
    if view.stage is None or not cells:
        st.info("The stages' cells appear when the first epoch ends.")
        return
    stage = int(view.stage[0])
    n_stages = next(iter(cells.values())).shape[0]
    state = status["state"]
    # The current stage's cell is final only when the run completed (a stopped run resumes it).
    current = "final" if state == RunState.COMPLETED else (
        "searching" if is_active(state) else "unfinished")
    st.markdown(f"Now: **stage {stage + 1} of {n_stages}**"
                + ("" if is_active(state) else f" (run {state})"))
    st.caption("Cells are searched one depth at a time, shallow to deep: at the end of a stage "
               "its cell is derived with the space's rule (weak connections pruned), frozen, "
               "and the supernet deepened for the next stage. Earlier stages are frozen; the "
               "current stage's cell is what its α would give now. Only the paper's abstract "
               "could be read (Hao & Zhu 2022): stages, pruning and schedule are our "
               "interpretation (see the [Guide](/guide#methods)).")
    cols = st.columns(n_stages)
    for k, text, dots in stage_cells(cells, view.ops,
                                        SPACES.get(view.config["space"]).topology):
        with cols[k]:
            st.markdown(f"**Stage {k + 1}** · {'frozen' if k < stage else current}")
            for dot in dots.values():
                st.graphviz_chart(dot, width="stretch")
            st.code(text, language=None, wrap_lines=True)


def unknown_artifacts_section(view: RunView, status: dict[str, Any]) -> None:
    """Artifact kinds this page has no renderer for: one line each, so nothing is silently
    missing."""
    common.unknown_artifacts(view, KNOWN_KINDS)
