"""Pipeline stage: data set -> participant split -> ranked frame selection -> labelled frames.

Run as ``python -m src.prepare`` (Hydra overrides welcome, e.g. ``data=dlc_project data.root=...``).
Writes ``<paths.prepared_dir>/<data.name>/``:

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

import hydra
from omegaconf import DictConfig

from src.data.preparation import prepare
from src.errors import exit_on_data_error
from src.study.check import check_study

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        check_study(cfg)  # the whole study, in seconds, before frames are decoded and clustered
        print(f"prepared frames: {prepare(cfg)}")


if __name__ == "__main__":
    main()
