"""What a study needs besides its own data: the synthetic cohorts and the pre-trained initial model.

The pipeline's stages are fixed (dvc.yaml), but not every study needs every one of them: a study of
your own DeepLabCut project needs no synthetic clinical cohort, and one starting from
``weights=random``, ``snapshot`` or ``hub`` needs no pre-training on the healthy-adult cohort. A
stage whose work is not needed writes a placeholder, a folder holding ``NOT_NEEDED.txt`` with one
line saying why (DVC requires the stage's outputs), says so in one line, and is done in seconds.

Decided from the configuration alone (no data is read), so the cohort stage can decide before
anything is generated.
"""

from __future__ import annotations

from pathlib import Path

# placeholders are written and read by src/files.py (the cohort stage writes them below src/study)
from src.files import (  # noqa: F401  (their names here as before)
    NOT_NEEDED,
    is_placeholder,
    placeholder_reason,
    write_placeholder,
)

COHORTS = ("clinical", "healthy_adults")


def _same(a, b) -> bool:
    return Path(str(a)).resolve() == Path(str(b)).resolve()


def cohorts_not_needed(cfg) -> dict[str, str]:
    """{cohort: why it is not needed} for the synthetic cohorts the study does not read.

    A cohort is needed when the data set is that cohort (``data=synthetic``), or when the initial
    model is pre-trained here (``weights.kind=pretrained``) on it (``pretraining.data``).
    """
    synthetic = cfg.synthetic
    readers = {"data": cfg.data}
    if cfg.weights.kind == "pretrained":
        readers["pretraining.data"] = cfg.pretraining.data
    reasons = {}
    for cohort in COHORTS:
        folder = Path(str(synthetic.output_dir)) / str(synthetic[cohort].name)
        used_by = [
            key
            for key, data in readers.items()
            if data.kind == "synthetic" and _same(data.root, folder)
        ]
        if used_by:
            continue
        pretraining = (
            f"weights.kind={cfg.weights.kind} pre-trains nothing"
            if cfg.weights.kind != "pretrained"
            else f"pre-training reads {cfg.pretraining.data.root}"
        )
        reasons[cohort] = (
            f"the synthetic {cohort} cohort is read by nothing in this study: the data set is "
            f"{cfg.data.name} (data.kind={cfg.data.kind}, {cfg.data.root}) and {pretraining}"
        )
    return reasons


def pretraining_not_needed(cfg) -> str | None:
    """Why no initial model is pre-trained here (None: ``weights.kind=pretrained`` needs one)."""
    kind = cfg.weights.kind
    if kind == "pretrained":
        return None
    return (
        f"weights.kind={kind}: the conditions start from "
        + {
            "snapshot": f"the snapshot {cfg.weights.get('path')}",
            "random": "random weights",
            "hub": "DeepLabCut's ImageNet backbone",
        }.get(kind, f"weights.kind={kind}")
        + ", not from a model pre-trained on the healthy-adult cohort (weights=healthy_adults)"
    )
