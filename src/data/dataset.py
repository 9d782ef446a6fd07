"""Data sets loaded as one table, by kind (``data.kind`` in ``conf/data/``): the registry of kinds.

Each kind is loaded by its own module, src/data/<kind>.py:

* ``synthetic`` (:mod:`src.data.synthetic`): a cohort written by ``src.cohort`` (videos,
  ``ground_truth.csv``, ``participants.csv``, ``dataset.yaml``); every frame has exact ground truth.
* ``dlc_project`` (:mod:`src.data.dlc_project`): an existing DeepLabCut project (``config.yaml``,
  ``videos/``, ``labeled-data/<video>/CollectedData_<scorer>.h5`` or ``.csv``); its labelled
  frames are the pool.
* ``lightning_pose`` (:mod:`src.data.lightning_pose`): a Lightning Pose data set (one
  ``CollectedData.csv`` for all frames, images under ``labeled-data/``); loaded like a DeepLabCut
  project, each ``labeled-data/<session>`` folder a video.
* ``videos`` (:mod:`src.data.videos`): a folder of new recordings with no labels yet; frames are
  selected from every video frame and exported for labelling (``src.labelling``).

All give a :class:`~src.data.table.Dataset` whose ``annotations`` table has one row per
(participant, video, frame, bodypart) with pixel coordinates x, y (NaN where not labelled).
Raw data is only ever read: nothing under a data set's root is written, moved or deleted.

A fifth kind, ``data.kind=<name>``:

1. ``src/data/<name>.py``: a module providing every member of :class:`src.data.contract.Loader`
   (``KIND = "<name>"``; ``LABELLED_IMAGES``; ``load(data_cfg)`` returning a Dataset built with
   ``kind=KIND, has_labelled_images=LABELLED_IMAGES``), importing :mod:`src.data.table`, never
   this module (which imports the kinds).
2. ``<name>`` added to :data:`KINDS`, here.
3. ``conf/data/<name>.yaml``: ``kind: <name>``, ``name``, ``root`` and the keys its ``load``
   reads, each commented.

tests/data/test_kinds.py then checks it against the contract like the others. DVC: the stages
that load data depend on the folder src/data, so the new file is a dependency as it is.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from src.data.table import ANNOTATION_COLUMNS, Dataset
from src.errors import DataError

__all__ = ["ANNOTATION_COLUMNS", "KINDS", "Dataset", "kind_module", "load_dataset"]

KINDS = ("synthetic", "dlc_project", "lightning_pose", "videos")  # src/data/<kind>.py


def kind_module(kind: str) -> ModuleType:
    """The loader module of ``data.kind`` (src/data/<kind>.py), imported when first asked for."""
    if kind not in KINDS:
        raise DataError(
            f"data.kind={kind!r} is unknown; choose {', '.join(KINDS[:-1])} or {KINDS[-1]} "
            "(conf/data/)."
        )
    return importlib.import_module(f"src.data.{kind}")


def load_dataset(data_cfg) -> Dataset:
    """Load the data set described by a ``conf/data/*.yaml`` config."""
    return kind_module(data_cfg.kind).load(data_cfg)
