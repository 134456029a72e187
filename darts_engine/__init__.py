"""darts_engine: differentiable architecture search (DARTS and friends), headless.

The library behind DARTboard. It never imports streamlit. Importing the package registers every
search space, algorithm, dataset, method variant and relaxation, so the registries below are
complete.

    from darts_engine import SearchConfig, search
    result = search(SearchConfig(dataset="digits", space="nb201", algorithm="single", epochs=3))
"""

from . import algorithms, data, spaces  # noqa: F401  (registration side effects)
# Method variants, in the order the launch form lists them (darts first, from methods.py).
from . import pcdarts, smoothing  # noqa: F401, I001
from . import lfr  # noqa: F401, I001
from .config import ConfigError, SearchConfig
from .data import DataError
from .events import (AlertRecord, EpochRecord, Event, LogRecord, RunFinished, RunStarted,
                     StepRecord)
from .genotype import DartsGenotype, Genotype, NB201Genotype, derive_genotype, parse_genotype
from .registries import ALGORITHMS, DATASETS, INDICATORS, METHODS, RELAXATIONS, SPACES
from .search import SearchControl, SearchResult, build_search, search

__all__ = [
    "ALGORITHMS", "DATASETS", "INDICATORS", "METHODS", "RELAXATIONS", "SPACES", "AlertRecord",
    "ConfigError", "DartsGenotype", "DataError", "EpochRecord", "Event", "Genotype", "LogRecord",
    "NB201Genotype", "RunFinished", "RunStarted", "SearchConfig", "SearchControl",
    "SearchResult", "StepRecord", "build_search", "derive_genotype", "parse_genotype", "search",
]
