"""The MLflow parent run of a Hydra multirun (``+sweep=frames``, ``+sweep=cutoff``).

A Hydra callback: it opens one parent run before the first job, passes its id to the jobs (which
nest their runs under it), prints one line per finished job, and at the end closes the parent run
with a summary table, FAILED if any condition failed.

Jobs may run in other processes (``hydra/launcher=parallel``: joblib workers; ``slurm``, ``slurm_local``:
submitit jobs) with a pickled copy of this callback: the copy sets the parent run id in the job's own
environment, and each job leaves its line of the summary as a file in the sweep folder (shared with the
cluster's nodes), which the launching process reads back at the end.
"""

from __future__ import annotations

import atexit
import itertools
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from src.tracking import store

log = logging.getLogger(__name__)


class MLflowSweepCallback(Callback):
    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.records: Path | None = (
            None  # <sweep dir>/.sweep_jobs/<parent run id>/: one JSON per finished job
        )

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        experiment_id = store.configure(config.mlflow)
        for run_id in store.end_orphaned_runs(experiment_id):
            print(
                f"[sweep] marked KILLED: run {run_id}, left RUNNING by a process that is gone",
                flush=True,
            )
        sweep = ", ".join(f"{k}={v}" for k, v in config.hydra.sweeper.params.items())
        run = MlflowClient().create_run(
            experiment_id,
            run_name=f"sweep {sweep}",
            tags=store.process_tags()
            | {
                "git_commit": store.git_commit(),
                "sweep": sweep,
                "sweep_overrides": " ".join(config.hydra.overrides.task),
            },
        )
        self.parent_run_id = run.info.run_id
        os.environ[store.PARENT_RUN_ENV] = self.parent_run_id
        self.records = (
            Path(str(config.hydra.sweep.dir)).resolve() / ".sweep_jobs" / self.parent_run_id
        )
        self.records.mkdir(parents=True, exist_ok=True)
        atexit.register(self.close)  # a failed job makes Hydra raise before on_multirun_end

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        """In the job's process (maybe another one, or another machine): nest its run under the parent;
        say which cell of the sweep it is and about how long the sweep has left."""
        if self.parent_run_id:
            os.environ[store.PARENT_RUN_ENV] = self.parent_run_id
        self.job_started = time.monotonic()
        try:
            print(self._cell_line(config), flush=True)
        except Exception as error:  # progress only: never fail a job for it
            log.debug("no sweep progress line: %s", error)

    def _cell_line(self, config: DictConfig) -> str:
        """'[sweep] cell k of n ..., about M min left' (src.study.estimate.sweep_cell_line)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        from src.study.estimate import sweep_cell_line

        swept = {str(key): str(value) for key, value in (config.hydra.sweeper.params or {}).items()}
        parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in swept.items()])
        values = {
            o.key_or_group: list(o.sweep_iterator()) if o.is_sweep_override() else [o.value()]
            for o in parsed
        }
        jobs = [
            dict(zip(values, combo, strict=True)) for combo in itertools.product(*values.values())
        ]
        num = int(OmegaConf.select(config, "hydra.job.num", default=0) or 0)
        frames = int(config.labelled_frames)
        left = [int(job.get("labelled_frames", frames)) for job in jobs[num:]] or [frames]
        done = []
        if self.records is not None:
            for record in self.records.glob("*.json"):
                seconds = json.loads(record.read_text(encoding="utf-8")).get("seconds")
                if seconds is not None:
                    done.append(float(seconds))
        return sweep_cell_line(config, num + 1, len(jobs) or None, done, left)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        swept = config.hydra.sweeper.params or {}
        overrides = " ".join(f"{key}={OmegaConf.select(config, key)}" for key in swept) or " ".join(
            job_return.overrides or []
        )
        seconds = time.monotonic() - getattr(self, "job_started", time.monotonic())
        if job_return.status == JobStatus.COMPLETED:
            record = {"job": overrides, "status": "finished", **(job_return.return_value or {})}
            print(f"[sweep] {overrides}: finished", flush=True)
        else:
            error = job_return._return_value
            record = {
                "job": overrides,
                "status": "FAILED",
                "error": f"{type(error).__name__}: {error}",
            }
            print(f"[sweep] {overrides}: FAILED ({type(error).__name__}: {error})", flush=True)
        if self.records is not None:
            num = int(OmegaConf.select(config, "hydra.job.num", default=0) or 0)
            (self.records / f"{num:05d}.json").write_text(
                json.dumps({"num": num, "seconds": round(seconds, 1), **record}, default=float),
                encoding="utf-8",
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self.close()

    def close(self) -> None:
        """Log the summary to the parent run and end it (once)."""
        if self.parent_run_id is None:
            return
        run_id, self.parent_run_id = self.parent_run_id, None
        os.environ.pop(store.PARENT_RUN_ENV, None)
        files = sorted(self.records.glob("*.json")) if self.records is not None else []
        summary = pd.DataFrame([json.loads(f.read_text(encoding="utf-8")) for f in files]).drop(
            columns=["num", "seconds"], errors="ignore"
        )
        if self.records is not None:
            shutil.rmtree(self.records, ignore_errors=True)
        failed = summary[summary["status"] == "FAILED"] if len(summary) else summary
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sweep_summary.csv"
            summary.to_csv(path, index=False, float_format="%.4f")
            MlflowClient().log_artifact(run_id, str(path))
        store.finish(run_id, failed=len(failed) > 0 or len(summary) == 0)
        print(
            f"[sweep] {len(summary) - len(failed)} of {len(summary)} jobs finished; MLflow parent run {run_id}",
            flush=True,
        )
        for row in failed.itertuples():
            print(f"[sweep] FAILED {row.job}: {row.error}", flush=True)
