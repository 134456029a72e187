"""The per-architecture results layout shared by NAS-Bench-201 and NATS-Bench files.

An `ArchResults` state dict (`nats_bench/api_utils.py`, `ArchResults.load_state_dict`) holds
`dataset_seed` {dataset: [seeds]} and `all_results` {(dataset, seed): ResultsCount state dict};
each ResultsCount has `epochs` and `eval_acc1es` keyed "setname@epoch". We read what
`get_more_info(..., is_random=False)` returns: the last epoch, averaged over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import DATASETS, TruthEntry, TruthError

# dataset -> (dataset trained, eval set) for test and valid, as `NATStopology.get_more_info`
# maps them: CIFAR-10's test is "ori-test" of the train+valid run, its valid "x-valid" of the
# "cifar10-valid" run; CIFAR-100 and ImageNet16-120 split their test set into x-valid / x-test.
TEST = {"cifar10": ("cifar10", "ori-test"), "cifar100": ("cifar100", "x-test"),
        "ImageNet16-120": ("ImageNet16-120", "x-test")}
VALID = {"cifar10": ("cifar10-valid", "x-valid"), "cifar100": ("cifar100", "x-valid"),
         "ImageNet16-120": ("ImageNet16-120", "x-valid")}


def _seed_mean(results: Mapping[str, Any], dataset: str, setname: str) -> tuple[float, int] | None:
    seeds = results["dataset_seed"].get(dataset)
    if not seeds:
        return None
    accs = []
    for seed in seeds:
        trial = results["all_results"][(dataset, seed)]
        key = f"{setname}@{trial['epochs'] - 1}"
        if key not in trial["eval_acc1es"]:
            return None
        accs.append(float(trial["eval_acc1es"][key]))
    return sum(accs) / len(accs), len(accs)


def entry_from_results(arch: str, results: Any, source: str) -> TruthEntry:
    """The seed-mean last-epoch accuracies in one ArchResults state dict; `source` names the file."""
    test, valid, seeds = {}, {}, {}
    try:
        for name in DATASETS:
            found = _seed_mean(results, *TEST[name])
            if found is None:
                raise TruthError(f"{source}: no {TEST[name][1]} accuracy for {name} of {arch}")
            test[name], seeds[name] = found
            found = _seed_mean(results, *VALID[name])
            if found is not None:
                valid[name] = found[0]
    except (KeyError, TypeError, AttributeError) as e:
        raise TruthError(f"{source}: results for {arch} are not in the NAS-Bench-201 ArchResults "
                         f"layout (missing {e})") from None
    return TruthEntry(arch, test, valid, seeds)
