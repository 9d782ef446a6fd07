"""Take a trained model home as a DeepLabCut 3 project: the model and its configuration only (no
labelled frames, videos or video names). Reads a registered model or an MLflow run; writes the
folder export.dir, which DeepLabCut's analyze_videos, create_labeled_video and napari-deeplabcut
open unchanged, and, when the model carries a trust calibrator, export.dir/trust_model.json
(src.analyze: analysis.trust.score=combined analysis.trust.model=<that file>).

Examples:
    python -m src.export export.dir=exported/champion                       # models:/<data set>@champion
    python -m src.export export.model=models:/my_data@frames-6 export.dir=exported/six
    python -m src.export export.model=<MLflow run id> export.snapshot=last export.dir=exported/run

The work is done in src/analysis/export.py.
"""

from __future__ import annotations

from omegaconf import DictConfig

from src.analysis.export import export
from src.cli import stage
from src.errors import exit_on_data_error


@stage
def main(cfg: DictConfig) -> None:
    with exit_on_data_error():
        done = export(cfg)
        print(
            f"DeepLabCut project: {done.config.parent} (model and configuration only: no labelled "
            f"frames, videos or video names); use it: deeplabcut.analyze_videos('{done.config}', "
            "[<video>])"
        )
        if done.calibrator is None:
            print(
                f"trust calibrator: none ({cfg.export.model} carries none); register the model "
                "with one (python -m src.report report.trust_model=<saved trust score>, "
                "docs/trust.md) and export that version"
            )
        else:
            print(
                f"trust calibrator: {done.calibrator} (the one {done.calibrator_source} carries"
                f"{done.fitted_on}); src.analyze uses it with analysis.trust.score=combined "
                f"analysis.trust.model={done.calibrator}"
            )


if __name__ == "__main__":
    main()
