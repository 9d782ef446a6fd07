"""Take a trained model home as a DeepLabCut 3 project (``python -m src.export``).

    python -m src.export export.dir=exported/champion                       # models:/<data set>@champion
    python -m src.export export.model=models:/my_data@frames-6 export.dir=exported/six
    python -m src.export export.model=<MLflow run id> export.snapshot=last export.dir=exported/run

DeepLabCut's ``analyze_videos``, ``create_labeled_video`` and napari-deeplabcut open the folder
unchanged; it holds the model and its configuration only (src/analysis/export.py).
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from src.analysis.export import export
from src.errors import exit_on_data_error


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        config = export(cfg)
        print(
            f"DeepLabCut project: {config.parent} (model and configuration only: no labelled "
            f"frames, videos or video names); use it: deeplabcut.analyze_videos('{config}', "
            "[<video>])"
        )


if __name__ == "__main__":
    main()
