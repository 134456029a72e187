"""darts_engine: differentiable architecture search (DARTS and friends), headless.

The library behind DARTboard. It never imports streamlit. Importing the package registers every
search space, algorithm, dataset, method variant and relaxation, so the registries below are
complete.

    from darts_engine import SearchConfig, search
    result = search(SearchConfig(dataset="digits", space="nb201", algorithm="single", epochs=3))
"""

import importlib

# Every plug-in module registers itself when imported. The order is explicit (not the import
# sorter's): it is the order the launch form, the CLI and the Guide list the entries in.
PLUGINS = (
    "train.algorithms", "train.data", "model.spaces",                    # update rules, data, spaces
    "tasks.classification", "tasks.sisr",                                # tasks
    "truth.reader",                                                      # ground-truth tables
    "methods.base", "methods.pcdarts", "methods.smoothing", "methods.lfr",  # darts first
)
for _module in PLUGINS:
    importlib.import_module(f"{__name__}.{_module}")

from .config import ConfigError, SearchConfig  # noqa: E402
from .events import AlertRecord, EpochRecord, Event, LogRecord, RunFinished, RunStarted, StepRecord  # noqa: E402
from .model.genotype import DartsGenotype, Genotype, NB201Genotype, derive_genotype, parse_genotype  # noqa: E402
from .registries import ALGORITHMS, DATASETS, INDICATORS, METHODS, RELAXATIONS, SPACES, TASKS  # noqa: E402
from .search import SearchControl, SearchResult, build_search, search  # noqa: E402
from .train.data import DataError  # noqa: E402

__all__ = [
    "ALGORITHMS", "DATASETS", "INDICATORS", "METHODS", "RELAXATIONS", "SPACES", "AlertRecord",
    "ConfigError", "DartsGenotype", "DataError", "EpochRecord", "Event", "Genotype", "LogRecord",
    "NB201Genotype", "RunFinished", "RunStarted", "SearchConfig", "SearchControl",
    "SearchResult", "StepRecord", "TASKS", "build_search", "derive_genotype", "parse_genotype", "search",
]
