"""sprintsim: ReRAM crossbars that prune transformer attention in memory
(SPRINT, MICRO 2022), simulated by the C library libsprintsim.

    import sprintsim
    r = sprintsim.run({"workload.preset": "bert-base", "workload.layers": 1}, threads=2)
    print(r.schemes["sprint"]["energy_J"], r.schemes["dense"]["energy_J"])
    a = sprintsim.attend(Q, K, V, {"threshold.keep_rate": 0.2})
    a.mask, a.output, a.ledger

Configurations are dicts of "section.key": value over the defaults, or an
INI path plus overrides (sprintsim.Config); the C key table checks them.
Errors of the library raise sprintsim.Error subclasses carrying the C
message (ConfigError is a ValueError, UnknownKeyError a KeyError,
FileError an OSError).  sprintsim.torch runs a PyTorch model with SPRINT's
decisions in the loop.  docs/python.md has the whole API.
"""
from ._lib import (VERSION as __version__, Error, ConfigError, UnknownKeyError, FileError,
                   OutOfMemoryError, CancelledError, SimulationError, SCHEMES)
from ._lib import path as library_path
from ._paths import data_path
from .config import Config, key_doc
from .api import (STATS, HEAD_STATS, SCHEME_STATS, Table, Layers, AttendResult, RunResult,
                  ModelResult, Model, attend, run, sweep)
from .trace import Trace, read_trace

__all__ = ["__version__", "Error", "ConfigError", "UnknownKeyError", "FileError",
           "OutOfMemoryError", "CancelledError", "SimulationError", "SCHEMES", "library_path",
           "data_path", "Config", "key_doc", "STATS", "HEAD_STATS", "SCHEME_STATS", "Table",
           "Layers", "AttendResult", "RunResult", "ModelResult", "Model", "attend", "run",
           "sweep", "Trace", "read_trace"]
