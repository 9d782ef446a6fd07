"""Prepare the data set: participant split, ranked frame selection and the labelled frames every
condition trains and is evaluated on. Reads the data set (data.root) and the study; writes
<paths.prepared_dir>/<data.name>/ (split.csv, selection.csv, labels.csv, labeled-data/, dataset.yaml).
A DVC pipeline stage; it checks the whole study first.

Examples:
    python -m src.prepare                                           # the current study's data set
    python -m src.prepare data=dlc_project data.root=raw/MyProject  # another data set, this once
    python -m src.prepare split=frames frames.max_train_frames_per_video=10

What it writes, in ``<paths.prepared_dir>/<data.name>/``:

* ``split.csv``      participant, video, session, set (development | generalisation)
* ``selection.csv``  the ranked selection: participant, video, session, set, role (train | test |
  generalisation), rank, frame, image. Condition N uses the train rows with rank <= N.
* ``labels.csv``     labels of every selected frame (participant, video, frame, bodypart, x, y)
* ``labeled-data/<video>/`` the selected frames as PNGs with ``CollectedData_<scorer>.h5/.csv``,
  DeepLabCut's own layout
* ``dataset.yaml``   facts downstream stages need (bodyparts, skeleton, scale, scorer) and the
  frame counts asked for and used per video.

It first checks the whole study (:func:`src.study.check.check_study`: data, split, conditions,
condition 0, image sizes, disk), so a study the data cannot run stops here, in seconds.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from src.cli import stage
from src.data.preparation import prepare
from src.errors import exit_on_data_error
from src.study.check import check_study

log = logging.getLogger(__name__)


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        check_study(cfg)  # the whole study, in seconds, before frames are decoded and clustered
        print(f"prepared frames: {prepare(cfg)}")


if __name__ == "__main__":
    main()
