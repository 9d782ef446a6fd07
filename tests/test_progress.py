"""Progress and time: the study's time estimate, training progress bars, a study's cells.

Fast: no training, no probe (costs are written into the cache as a probe would leave them).
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time

import pytest
from omegaconf import OmegaConf

from src.engine import progress
from src.study import estimate
from src.study.plan import pipeline_cells, resolve_auto
from tests.conftest import REPO, compose_config

PROBED = {"per_update_s": 0.5, "start_s": 8.0, "per_image_s": 0.02}


def study(tmp_path, *overrides):
    """The tiny synthetic study (not generated: planned from conf/synthetic), conditions resolved."""
    cfg = compose_config(tmp_path, *overrides)
    OmegaConf.set_struct(cfg, False)
    return resolve_auto(cfg)


def cache_probe(cfg, **values):
    shape = estimate.study_shape(cfg)
    estimate.write_entry(
        estimate.cache_path(cfg), estimate.cache_key(cfg, shape.input_wh), probe=PROBED | values
    )


def test_the_estimate_is_updates_times_cost_plus_fixed_costs_and_grows_cell_by_cell(tmp_path):
    cfg = study(tmp_path, "pipeline.conditions=[0,1,2]", "weights=random")
    shape = estimate.study_shape(cfg)
    cache_probe(cfg)
    base = estimate.estimate_study(cfg, probe_now=False)
    assert base.costs.per_update_s == PROBED["per_update_s"]  # the cached cost, not a timing
    assert (base.cells, base.trained_cells, base.pretraining_updates) == (3, 2, 0)

    # linear in the cost per update: the slope is the number of updates the study runs
    updates = sum(estimate.updates_per_cell(cfg, n, shape.dev_videos) for n in (1, 2))
    slower = estimate.estimate_study(cfg, costs=base.costs.__class__(1.5, "probe", 8.0, 0.02))
    assert slower.seconds - base.seconds == pytest.approx(updates * 1.0)

    # linear in the cells: one more condition adds exactly its own cell
    more = estimate.estimate_study(
        study(tmp_path, "pipeline.conditions=[0,1,2,3]", "weights=random"), probe_now=False
    )
    assert more.cells == 4
    assert more.seconds - base.seconds == pytest.approx(
        estimate.cell_seconds(cfg, 3, shape, base.costs)
    )

    # and in the updates: twice the iterations, twice the updates (whole epochs here)
    double = study(
        tmp_path, "pipeline.conditions=[0,1,2]", "weights=random", "training.iterations=480"
    )
    for n in (1, 2):
        assert estimate.updates_per_cell(double, n, shape.dev_videos) == 2 * (
            estimate.updates_per_cell(cfg, n, shape.dev_videos)
        )
    twice = estimate.estimate_study(double, probe_now=False)
    assert twice.seconds - base.seconds == pytest.approx(updates * PROBED["per_update_s"])


def test_a_pretraining_still_to_run_is_counted(tmp_path):
    cfg = study(tmp_path, "pipeline.conditions=[0,1]", "weights=healthy_adults")
    cache_probe(cfg)
    with_pretraining = estimate.estimate_study(cfg, probe_now=False)
    assert with_pretraining.pretraining_updates == int(cfg.pretraining.iterations)
    assert "pre-training (400 updates)" in with_pretraining.line()
    done = tmp_path / "data" / "models" / "pretrained"
    (done / f"{cfg.pretraining.data.name}-{cfg.model.name}-abc").mkdir(parents=True)
    (done / f"{cfg.pretraining.data.name}-{cfg.model.name}-abc" / "pretrained.yaml").write_text("")
    without = estimate.estimate_study(cfg, probe_now=False)
    assert without.pretraining_updates == 0
    assert with_pretraining.seconds - without.seconds >= 400 * PROBED["per_update_s"]


def test_the_cache_key_changes_with_threads_model_and_batch_size(tmp_path):
    cfg = study(tmp_path, "pipeline.conditions=[0,1]", "weights=random")
    wh = estimate.study_shape(cfg).input_wh
    key = estimate.key_id(estimate.cache_key(cfg, wh))
    assert key == estimate.key_id(estimate.cache_key(study(tmp_path, "weights=random"), wh))
    others = [
        study(tmp_path, "weights=random", "training.threads=1"),
        study(tmp_path, "weights=random", "model=resnet_50"),
        study(tmp_path, "weights=random", "training.batch_size=4"),
    ]
    for other in others:
        assert estimate.key_id(estimate.cache_key(other, wh)) != key
    assert estimate.key_id(estimate.cache_key(cfg, (wh[0] + 1, wh[1]))) != key

    cache_probe(cfg)  # a cost cached for 2 threads is not one for 1 thread
    assert estimate.estimate_study(cfg, probe_now=False).seconds is not None
    one_thread = estimate.estimate_study(others[0], probe_now=False)
    assert one_thread.seconds is None and "unknown until probed" in one_thread.line()


def test_a_measured_training_replaces_the_probe(tmp_path):
    cfg = study(tmp_path, "pipeline.conditions=[0,1]", "weights=random")
    cache_probe(cfg)
    shape = estimate.study_shape(cfg)
    updates = {
        "data.train.crop_sampling": {"width": shape.input_wh[0], "height": shape.input_wh[1]}
    }
    estimate.record_training(cfg, updates, 0.8)
    found = estimate.estimate_study(cfg, probe_now=False)
    assert (found.costs.per_update_s, found.costs.source) == (0.8, "training")
    assert "the last training of this setting" in found.line()


def plain_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line]


def test_off_a_terminal_progress_is_plain_lines_at_intervals(tmp_path):
    stream = io.StringIO()  # not a TTY, as a log file or CI
    bar = progress.bar(400, "train frames6", stream=stream, every_s=0.05)
    for _ in range(400):  # about 0.2 s or more: a few intervals of 0.05 s
        bar.update(1)
        time.sleep(0.0005)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text
    lines = plain_lines(text)
    counts = [re.search(r"train frames6: (\d+)/400 updates \[", line) for line in lines]
    assert all(counts), lines
    assert 3 <= len(lines) < 100  # lines at intervals, not one per update
    assert counts[0][1] == "0" and counts[-1][1] == "400"
    assert "update/s" in lines[-1] or "s/update" in lines[-1]  # the rate


def test_on_a_terminal_progress_is_one_redrawn_bar():
    main, side = os.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    with os.fdopen(side, "w") as terminal:
        bar = progress.bar(50, "train frames2", stream=terminal)
        for _ in range(50):
            bar.update(1)
        bar.close()
        terminal.flush()
        chunks = []
        while select.select([main], [], [], 0.2)[0]:
            chunks.append(os.read(main, 100_000))
        text = b"".join(chunks).decode()
    os.close(main)
    assert "\r" in text and "50/50" in text


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.parametrize(
    "pattern, message",
    [
        # the records of DeepLabCut 3.0.2: runners/train.py (PyTorch), core/train.py (TensorFlow)
        (progress.PYTORCH_UPDATE, "Number of iterations: {i}, loss: 0.01234, lr: 0.0005"),
        (progress.TENSORFLOW_UPDATE, "iteration: {i} loss: 0.0123 lr: 0.005"),
    ],
)
def test_deeplabcut_update_records_drive_the_bar_and_leave_the_log(pattern, message):
    root, collect = logging.getLogger(), Collect()
    level = root.level
    root.addHandler(collect)
    root.setLevel(logging.INFO)
    stream = io.StringIO()
    try:
        with progress.counting_records(
            progress.bar(6, "train frames1", stream=stream), pattern
        ) as bar:
            for i in range(1, 7):
                logging.info(message.format(i=i))
            logging.info("Epoch 1/1 (lr=0.0005), train loss 0.01234")
            assert bar.n == 6
    finally:
        root.removeHandler(collect)
        root.setLevel(level)
    assert collect.messages == ["Epoch 1/1 (lr=0.0005), train loss 0.01234"]
    assert plain_lines(stream.getvalue())[-1].startswith("train frames1: 6/6 updates")
    assert "loss 0.0123" in stream.getvalue()
    assert progress.last_seconds_per_update() is not None
    logging.info(message.format(i=7))  # the filter is gone with the block


def test_counting_survives_a_reload_of_the_logging_module():
    """DeepLabCut's TensorFlow train_network reloads ``logging`` (a new root logger) before it logs
    its updates; count_on_new_root puts the counting on the new root. In a child: a reload would
    take pytest's own log capture with it."""
    script = textwrap.dedent(
        """
        import importlib, io, logging, sys
        from src.engine import progress
        stream = io.StringIO()
        with progress.counting_records(progress.bar(2, "t", stream=stream), progress.TENSORFLOW_UPDATE) as bar:
            importlib.reload(logging)
            logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
            logging.info("iteration: 1 loss: 0.5 lr: 0.001")  # not counted: the new root has no filter
            progress.count_on_new_root()
            logging.info("iteration: 2 loss: 0.4 lr: 0.001")
            print("counted", bar.n)
        logging.info("iteration: 3 loss: 0.3 lr: 0.001")  # the block is closed: logged again
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines() == [
        "iteration: 1 loss: 0.5 lr: 0.001",
        "counted 1",
        "iteration: 3 loss: 0.3 lr: 0.001",
    ]


def test_dvc_train_stage_says_which_cell_and_how_long_is_left(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = study(tmp_path, "pipeline.conditions=[0,1,2]", "weights=random")
    cfg.pipeline.dir = str(tmp_path / "pipeline")
    cfg.pipeline.cells = pipeline_cells([0, 1, 2], [])
    (tmp_path / "params.yaml").write_text("")
    old = os.stat(tmp_path / "params.yaml").st_mtime
    (tmp_path / "pipeline" / "evaluation" / "frames_0").mkdir(parents=True)
    os.utime(tmp_path / "pipeline" / "evaluation" / "frames_0", (old + 5, old + 5))  # done
    (tmp_path / "pipeline" / "evaluation" / "frames_2").mkdir()
    os.utime(tmp_path / "pipeline" / "evaluation" / "frames_2", (old - 5, old - 5))  # stale

    assert estimate.pipeline_cell_line(cfg, stage="") is None  # not under dvc repro
    assert estimate.pipeline_cell_line(cfg, stage="evaluate") is None
    line = estimate.pipeline_cell_line(cfg, stage="train@1")
    assert line == "[study] cell 2 of 3 (train@1), time left unknown until probed"

    cache_probe(cfg)
    line = estimate.pipeline_cell_line(cfg, stage="train@1")
    assert re.fullmatch(r"\[study\] cell 2 of 3 \(train@1\), about \d+ min left", line), line

    # dvc repro runs every train stage before the evaluate stage: a trained cell counts as done
    (tmp_path / "pipeline" / "models" / "frames_1").mkdir(parents=True)
    os.utime(tmp_path / "pipeline" / "models" / "frames_1", (old + 5, old + 5))
    line = estimate.pipeline_cell_line(cfg, stage="train@2")
    assert re.fullmatch(r"\[study\] cell 3 of 3 \(train@2\), about \d+ min left", line), line


def test_sweep_cells_time_left_from_the_jobs_done(tmp_path):
    cfg = study(tmp_path, "weights=random", "labelled_frames=2")
    line = estimate.sweep_cell_line(cfg, 3, 5, [120.0, 180.0], [2, 6, 10])
    assert line == "[sweep] cell 3 of 5 (labelled_frames=2), about 8 min left"  # 150 s x 3
    first = estimate.sweep_cell_line(cfg, 1, 5, [], [0, 1, 2, 6, 10])
    assert first == "[sweep] cell 1 of 5 (labelled_frames=2), time left unknown until probed"


def test_the_sweep_callback_counts_the_jobs_of_the_frames_sweep(tmp_path):
    import json

    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from src.tracking.sweep_callback import MLflowSweepCallback
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[
                f"paths.data_dir={tmp_path / 'data'}",
                "synthetic=tiny",
                "weights=random",
                "+sweep=frames",
                "pipeline.conditions=[0,1,2]",
                "labelled_frames=1",
            ],
            return_hydra_config=True,
        )
    with open_dict(cfg):
        cfg.hydra.job.num = 1  # the second job
    callback = MLflowSweepCallback()
    callback.records = tmp_path / "records"
    callback.records.mkdir()
    (callback.records / "00000.json").write_text(json.dumps({"num": 0, "seconds": 150.0}))
    assert callback._cell_line(cfg) == "[sweep] cell 2 of 3 (labelled_frames=1), about 5 min left"
