"""Generating a cohort folder: videos rendered in parallel, ground_truth.csv, participants.csv and
dataset.yaml, written atomically and skipped when up to date."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd
import yaml

from src.files import atomic_directory, write_placeholder
from src.synthetic.body import BODYPARTS, SKELETON, make_participant
from src.synthetic.render import render_video
from src.synthetic.settings import settings

log = logging.getLogger(__name__)


def _video_job(args):
    """Render one video; args: (cohort config, participant, session, path), picklable for a pool."""
    cfg, p, s, path = args
    cfg = settings(cfg)
    return render_video(cfg, p, s, Path(path), make_participant(cfg, p))


def generate_cohort(cohort_cfg, out_dir, workers: int = 1) -> Path:
    """Write one cohort to <out_dir>/<name>/ atomically; skip when it exists with the same
    config."""
    config = dict(settings(cohort_cfg))
    cfg = settings(config)
    target = Path(out_dir) / cfg.name
    if (target / "dataset.yaml").exists():
        if yaml.safe_load((target / "dataset.yaml").read_text()).get("generator_config") == config:
            log.info("cohort %s is up to date in %s, not regenerated", cfg.name, target)
            return target
        log.info("cohort %s in %s was made with another config: regenerating", cfg.name, target)
    with atomic_directory(target, key="synthetic.output_dir") as tmp:
        _write_cohort(cfg, config, tmp, workers)
    log.info("wrote cohort %s to %s", cfg.name, target)
    return target


def _write_cohort(cfg, config: dict, tmp: Path, workers: int) -> None:
    """Render the videos and write the tables of one cohort into the (staging) folder ``tmp``."""
    (tmp / "videos").mkdir()
    digits = max(2, len(str(cfg.n_participants)))
    jobs, rows = [], []
    for p in range(cfg.n_participants):
        for s in range(cfg.videos_per_participant):
            jobs.append((config, p, s, str(tmp / "videos" / f"P{p + 1:0{digits}d}_S{s + 1}.mp4")))
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            results = list(pool.map(_video_job, jobs))
    else:
        results = [_video_job(job) for job in jobs]
    for (_, p, s, path), (_, facts) in zip(jobs, results):
        b = make_participant(cfg, p)
        rows.append(
            {
                "participant": f"P{p + 1:0{digits}d}",
                "video": Path(path).stem,
                "session": f"S{s + 1}",
                "height_cm": round(b["height_cm"], 1),
                "dystonia_severity": round(b["dystonia_severity"], 3),
                "choreoathetosis_severity": round(b["choreoathetosis_severity"], 3),
                **facts,
            }
        )
    pd.concat([gt for gt, _ in results]).to_csv(
        tmp / "ground_truth.csv", index=False, float_format="%.3f"
    )
    pd.DataFrame(rows).to_csv(tmp / "participants.csv", index=False)
    meta = {
        "name": cfg.name,
        "bodyparts": BODYPARTS,
        "skeleton": SKELETON,
        "fps": cfg.fps,
        "width_px": cfg.width_px,
        "height_px": cfg.height_px,
        "frames_per_video": cfg.frames_per_video,
        "cm_per_px": cfg.cm_per_px,
        "seed": cfg.seed,
        "generator_config": config,
    }
    (tmp / "dataset.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def generate_all(synthetic_cfg, not_needed: dict[str, str] | None = None) -> dict[str, Path]:
    """Write both cohorts (clinical, healthy_adults) under synthetic_cfg.output_dir.

    ``not_needed`` ({cohort: why}, :func:`src.study.needs.cohorts_not_needed`): those get a
    placeholder folder instead, holding only ``NOT_NEEDED.txt`` with the reason (a cohort generated
    before is left as it is).
    """
    out = Path(synthetic_cfg.output_dir)
    workers = int(synthetic_cfg.get("workers", 1)) or os.cpu_count()
    not_needed = not_needed or {}
    return {
        key: (
            write_placeholder(
                out / synthetic_cfg[key].name, not_needed[key], "synthetic.output_dir"
            )
            if key in not_needed
            else generate_cohort(synthetic_cfg[key], out, workers)
        )
        for key in ("clinical", "healthy_adults")
    }
