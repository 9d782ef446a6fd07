"""Frame-selection strategies, chosen by ``frames.strategy``, and their registry.

- :mod:`src.data.selection.kmeans`: seeded k-means over downsampled grey frames, one pick per
  cluster, ranked by farthest-point order (``kmeans``, the default: conf/frames/kmeans.yaml sets
  no ``strategy`` key, so params.yaml is the same with it or without).

Each strategy module provides :class:`src.data.contract.FrameSelection`: it picks and ranks one
video's candidate frames of one set (development or generalisation). Everything around it stays
in :mod:`src.data.frames`, the same for every strategy: the candidate frames and their features,
the split's sets, and the fixed development test frames, drawn afterwards from the ranked picks.

A second strategy, ``frames.strategy=<name>``:

1. ``src/data/selection/<name>.py``: a module providing every member of
   :class:`~src.data.contract.FrameSelection` (``NAME = "<name>"``; ``rank(features, n_picks,
   seed)``), importing nothing of src/data but :mod:`src.data.contract` and :mod:`src.data.table`.
2. ``conf/frames/<name>.yaml``: ``strategy: <name>``, the keys of conf/frames/kmeans.yaml that
   src.data.frames reads, and the strategy's own, each commented.

The registry finds the module by its name (every module of this package);
tests/data/test_selection.py then checks it against the contract. DVC: the stages that select
frames depend on the folder src/data, so the new file is a dependency as it is.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from src.errors import DataError

DEFAULT = "kmeans"  # the strategy of a frames config without a `strategy` key
STRATEGIES = tuple(sorted(m.name for m in pkgutil.iter_modules(__path__)))  # kmeans


def strategy_name(frames_cfg) -> str:
    """``frames.strategy`` (kmeans when the config has none), checked."""
    name = str(frames_cfg.get("strategy", DEFAULT) or DEFAULT)
    if name not in STRATEGIES:
        raise DataError(
            f"frames.strategy={name!r} is unknown; choose {' | '.join(STRATEGIES)} (conf/frames/)."
        )
    return name


def module(name: str) -> ModuleType:
    """The strategy module ``name`` (src/data/selection/<name>.py), imported when first asked for."""
    if name not in STRATEGIES:
        raise ValueError(f"no frame-selection strategy {name!r}; the strategies: {STRATEGIES}")
    return importlib.import_module(f"{__name__}.{name}")


def strategy(frames_cfg) -> ModuleType:
    """The strategy module of a frames config (``conf/frames/``)."""
    return module(strategy_name(frames_cfg))
