"""The data layer's two contracts: a kind of data set (:class:`Loader`) and a frame-selection
strategy (:class:`FrameSelection`; :class:`RoundSelection` for one whose later rounds use the
previous round's model).

A kind is a module of src/data named after it (``data.kind``), a strategy a module of
src/data/selection/ (``frames.strategy``); each module's top-level names satisfy its Protocol (a
module is a structural implementation of a Protocol). The stages reach them through the
registries, :func:`src.data.dataset.load_dataset` and :func:`src.data.selection.strategy`, and
tests/data/test_kinds.py and tests/data/test_selection.py check every registered module against
these classes. A leaf: it imports no loader and no strategy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # for the annotations only
    from collections.abc import Mapping, Sequence

    import numpy as np

    from src.data.table import Dataset


@runtime_checkable
class Loader(Protocol):
    """A kind of data set: reads one into a :class:`~src.data.table.Dataset`, never writing under
    its root."""

    KIND: str  # data.kind=<KIND>: conf/data/<KIND>.yaml, src/data/<KIND>.py
    # Its frames are labelled image files (Dataset.has_labelled_images), not frames of videos:
    # the candidate frames are its labelled images, copied rather than decoded.
    LABELLED_IMAGES: bool

    def load(self, data_cfg) -> Dataset:
        """The data set a ``conf/data/<KIND>.yaml`` config describes; a DataError naming the file
        or key at fault otherwise."""


@runtime_checkable
class FrameSelection(Protocol):
    """A frame-selection strategy: picks and ranks one video's candidate frames of one set.

    The fixed test frames are not its business: src.data.frames draws them afterwards from the
    development picks, the same way for every strategy."""

    NAME: str  # frames.strategy=<NAME>: src/data/selection/<NAME>.py

    def rank(self, features: np.ndarray, n_picks: int, seed: int) -> np.ndarray:
        """Row indices of up to ``n_picks`` rows of ``features`` (one row per candidate frame, in
        frame order), most informative first, so that the first N are the frames of the condition
        with N labelled frames; the same ``seed`` gives the same rows."""


@dataclass(frozen=True)
class Candidates:
    """One video's candidate frames for a round, a row each: their image ``features``
    (src.data.frames), ``frame_numbers``, and the previous round's model's ``expected_error``
    (larger = worse; NaN: unknown)."""

    features: np.ndarray
    frame_numbers: np.ndarray
    expected_error: np.ndarray


@runtime_checkable
class RoundSelection(FrameSelection, Protocol):
    """A strategy whose later rounds need the previous round's model, which ``rank(features,
    n_picks, seed)`` cannot be given: ``rank`` ranks what no model has chosen (round 1, and the
    picks the fixed test frames are drawn from), ``next_round`` extends a video's labelled frames
    from the previous model's per-frame expected error. Optional: only such strategies provide it
    (src/data/selection/active.py)."""

    def next_round(
        self,
        candidates: Candidates,
        labelled: Sequence[int],
        excluded: Sequence[int],
        n_frames: int,
        seed: int,
        settings: Mapping,
    ) -> np.ndarray:
        """Frame numbers of one video's labelled frames after the round: ``labelled`` first, in
        its order (rounds are nested), then new ``candidates``, never an ``excluded`` one, up to
        ``n_frames`` in all; ``settings``: the frames config (the strategy's own keys); the same
        ``seed`` gives the same frames."""


def members(protocol: type) -> dict[str, Any]:
    """A contract's members: {name: the Protocol's function, or None for a data member}."""
    names = list(protocol.__annotations__) + [
        n for n, v in vars(protocol).items() if callable(v) and not n.startswith("_")
    ]
    return {n: (vars(protocol).get(n) if callable(vars(protocol).get(n)) else None) for n in names}
