"""A trained model as a DeepLabCut 3 project folder to take home (``python -m src.export``).

The folder holds what DeepLabCut's own ``analyze_videos``, ``create_labeled_video`` and
napari-deeplabcut read: ``config.yaml`` (bodyparts, skeleton, the batch size ``src.analyze`` uses),
``dlc-models-pytorch/iteration-0/<Task>-trainset<pct>shuffle1/train/`` with ``pytorch_config.yaml``
and one snapshot, ``test/pose_cfg.yaml`` beside it, and empty ``videos/`` and ``labeled-data/``.
No labelled frames, no videos and no video names (``video_sets`` is empty): only the model and its
configuration. ``EXPORT.md`` in the folder says where it came from.

When the model carries a trust calibrator (a registered version's artifact ``trust_model``,
src/tracking/registry.py; for a run id, that of the newest version registered from the run at the
same snapshot), ``trust_model.json`` beside ``config.yaml`` is a copy of it that ``src.analyze``
reads (``analysis.trust.model``). Its provenance keeps ``PROVENANCE_KEPT`` only, participants only as
pseudonyms (their number otherwise): anything else, such as video names, is left out.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from src import engine
from src.analysis.model_choice import (
    ModelRun,
    download_model_and_skeleton,
    registered_calibrator,
    resolve_model,
)
from src.analysis.trust import fitted_on, load_trust_model
from src.errors import ConfigError, DataError
from src.tracking.queries import open_experiment
from src.tracking.registry import CALIBRATOR_ARTIFACT, CALIBRATOR_TAG

CALIBRATOR_FILE = f"{CALIBRATOR_ARTIFACT}.json"  # beside config.yaml
# What the copy's provenance keeps: none of these names a video or a person (participants aside,
# kept only as pseudonyms).
PROVENANCE_KEPT = ("fitted_by", "condition", "folds", "participants", "model_runs", "pose_pca_fold")
PSEUDONYM = re.compile(r"participant-[0-9a-f]{8}")  # src/privacy.py's form


@dataclass
class Exported:
    """What ``export`` wrote: the project's config.yaml and, when the model carries one, its trust
    calibrator (the copy, what it was copied from and what it was fitted on)."""

    config: Path
    calibrator: Path | None = None
    calibrator_source: str = ""
    fitted_on: str = ""


def export(cfg: DictConfig) -> Exported:
    """Write the project ``export.dir`` for ``export.model``; returns what it wrote."""
    settings = cfg.export
    if not settings.get("dir"):
        raise ConfigError(
            "export.dir is not set; give the folder to write, e.g. export.dir=exported/my_model "
            "(a new or empty folder)."
        )
    target = Path(str(settings.dir)).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(
            f"export.dir={settings.dir} exists and is not empty; choose a new folder (nothing is "
            "overwritten)."
        )
    open_experiment(cfg.mlflow)  # the store exists (one-line message otherwise)
    model_run = resolve_model(str(settings.model), "export.model")
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        model, _ = download_model_and_skeleton(model_run, Path(tmp))
        project_config = model.pose_config.parent / "project_config.yaml"
        if not project_config.is_file():
            raise DataError(
                f"export.model={settings.model} stores no project_config.yaml beside its weights "
                "(trained before it was kept); train the condition again (`python -m src.train "
                "labelled_frames=<n> retrain=true`) and export that run."
            )
        snapshot = "best" if model_run.model_uri else str(settings.snapshot)
        staging = target.with_name(f".{target.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        try:  # the engine writes its DeepLabCut project (src/engine/contract.py)
            config = engine.for_model(model).write_dlc_project(
                staging, target, model, project_config, snapshot, int(cfg.analysis.batch_size)
            )
        except DataError as error:
            raise DataError(f"export.model={settings.model}: {error}") from None
        done = copy_calibrator(model_run, snapshot, Path(tmp) / "calibrator", staging)
        (staging / "EXPORT.md").write_text(
            provenance(settings, model_run, snapshot, config) + calibrator_note(done)
        )
    if target.exists():
        target.rmdir()
    staging.rename(target)  # whole or not at all
    done.config = target / "config.yaml"
    if done.calibrator is not None:
        done.calibrator = target / CALIBRATOR_FILE
    return done


def copy_calibrator(model_run: ModelRun, snapshot: str, download: Path, folder: Path) -> Exported:
    """Copy the trust calibrator the exported model carries into ``folder`` (``CALIBRATOR_FILE``);
    an Exported without one when it carries none."""
    uri = model_run.model_uri or version_with_calibrator(model_run.run_id, snapshot)
    if uri is None:
        return Exported(folder / "config.yaml")
    path, _ = registered_calibrator(uri, download)
    if path is None:
        return Exported(folder / "config.yaml")
    target = folder / CALIBRATOR_FILE
    data = json.loads(path.read_text(encoding="utf-8"))
    data["provenance"] = shareable_provenance(data.get("provenance"))
    target.write_text(json.dumps(data, indent=1), encoding="utf-8")
    model = load_trust_model(target, f"{uri} (its artifact {path.name})")  # the copy still scores
    return Exported(folder / "config.yaml", target, uri, fitted_on(model.provenance))


def version_with_calibrator(run_id: str, snapshot: str) -> str | None:
    """``models:/<name>/<version>`` of the newest version registered from run ``run_id`` at
    ``snapshot`` that carries a trust calibrator; None when none does."""
    carrying = [
        found
        for found in MlflowClient().search_model_versions(f"run_id = '{run_id}'")
        if found.tags.get("snapshot") == snapshot and CALIBRATOR_TAG in found.tags
    ]
    if not carrying:
        return None
    newest = max(carrying, key=lambda found: int(found.version))
    return f"models:/{newest.name}/{newest.version}"


def shareable_provenance(provenance: dict | None) -> dict | None:
    """The provenance the exported copy keeps: ``PROVENANCE_KEPT``, participants only when each is
    a pseudonym (else their number, ``n_participants``)."""
    if not provenance:
        return provenance
    kept = {key: value for key, value in provenance.items() if key in PROVENANCE_KEPT}
    participants = [str(p) for p in kept.get("participants", [])]
    if not all(PSEUDONYM.fullmatch(p) for p in participants):  # privacy.pseudonymise: false
        del kept["participants"]
        kept["n_participants"] = len(participants)
    return kept


def calibrator_note(done: Exported) -> str:
    """EXPORT.md's lines on the trust calibrator: which, or how to get one."""
    if done.calibrator is None:
        return """
No trust calibrator: the model carries none. A version registered with `report.trust_model`
(`python -m src.report`, docs/trust.md in the project's repository) carries one; export that.
"""
    return f"""
`{CALIBRATOR_FILE}`: the trust calibrator the model carries (`{done.calibrator_source}`){done.fitted_on}.
The project's `src.analyze` scores each tracked point with it:
`analysis.trust.score=combined analysis.trust.model=<this folder>/{CALIBRATOR_FILE}`.
"""


def provenance(settings: DictConfig, model_run: ModelRun, snapshot: str, config: dict) -> str:
    """EXPORT.md: where the model came from, what the folder holds and how to use it."""
    run = model_run.run
    return f"""# DeepLabCut project exported from the MLflow store

- Model: `{settings.model}`; training run `{run.info.run_id}` ({run.info.run_name}), weights of
  run `{model_run.model_run_id}`, snapshot `{snapshot}`;
  labelled frames per video: {run.data.tags.get("labelled_frames", "?")}.
- Bodyparts: {", ".join(config["bodyparts"])}.
- Network: see `model.backbone` in `pytorch_config.yaml`; DeepLabCut names its scorer after
  `net_type`, which keeps the name of the network the project was made with.
- Contents: the model and its configuration only. No labelled frames, no videos, no video names
  (`video_sets` is empty); `labeled-data/` and `videos/` are empty.

Use it with DeepLabCut 3 (PyTorch engine):

```python
import deeplabcut
deeplabcut.analyze_videos("config.yaml", ["my_video.mp4"])
deeplabcut.create_labeled_video("config.yaml", ["my_video.mp4"])
```

or open `config.yaml` and the predictions in napari-deeplabcut. To train it further, add labelled
frames and videos as in any DeepLabCut project.
"""
