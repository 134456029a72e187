"""Bi-level / single-level pairs (darts_engine/runs/pairs.py) on hand-made run rows."""

from __future__ import annotations

from darts_engine.runs.pairs import launched_pairs, pair_of

BASE = {"space": "nb201", "algorithm": "bilevel-1st", "seed": 0, "name": "demo"}


def test_launched_pairs_are_neighbours_that_differ_only_in_the_algorithm():
    runs = [{"id": "r5", "config": dict(BASE, algorithm="single")},   # newest first
            {"id": "r4", "config": BASE},
            {"id": "r3", "config": dict(BASE, algorithm="single", seed=1)},
            {"id": "r2", "config": BASE},                               # another seed
            {"id": "r1", "config": {"kind": "retrain", "recipe": "nb201-eval"}}]
    assert launched_pairs(runs) == [("r4", "r5")]
    both_single = [dict(runs[0], id="x"), runs[0]]
    assert launched_pairs(both_single) == [] and launched_pairs([]) == []
    assert launched_pairs(runs[:2][::-1]) == [("r4", "r5")]           # either order


def test_a_pair_differs_only_in_the_algorithm_and_is_two_searches():
    bi, single = {"id": "b", "config": BASE}, {"id": "s", "config": dict(BASE, algorithm="single")}
    assert pair_of(bi, single) == pair_of(single, bi) == ("b", "s")
    assert pair_of(bi, {"id": "s", "config": dict(BASE, algorithm="single", arch_lr=0.1)}) is None
    assert pair_of(bi, {"id": "x", "config": dict(BASE, algorithm="bilevel-2nd")}) is None
    retrain = {"id": "r", "config": dict(BASE, algorithm="single", kind="retrain")}
    assert pair_of(bi, retrain) is None
    assert bi["config"]["algorithm"] == "bilevel-1st"          # the rows are not changed
