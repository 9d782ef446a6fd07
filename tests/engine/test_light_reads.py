"""What an evaluation with cached predictions reads of a model (its pose configuration, its snapshot's
epoch) is read as DeepLabCut and torch read it, without importing them: each import costs seconds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from src.engine import pytorch

REPO = Path(__file__).resolve().parents[2]

# YAML 1.1 and 1.2 read these differently (PyYAML: '1e-4' is a string, 'on' a boolean): the reader
# must be DeepLabCut's (ruamel's safe loader, YAML 1.2)
POSE_CONFIG = textwrap.dedent(
    """\
    metadata:
      bodyparts: [nose, left_hip, 'on']
    runner:
      optimizer: {type: AdamW, params: {lr: 1e-4}}
      key_metric: test.rmse
    train_settings: {batch_size: 8, display_iters: on, weights: 0o17, epochs: 80}
    """
)


def read_without(imports: str, code: str):
    """The JSON that ``code`` prints in a fresh process, and which of ``imports`` it imported."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import json, sys; from src.engine import pytorch; result = {code}; "
            f"print(json.dumps([result, [m for m in {imports!r} if m in sys.modules]]))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def test_the_pose_config_equals_deeplabcuts_reading_and_deeplabcut_is_not_imported(tmp_path):
    from deeplabcut.core.config.utils import read_config_as_dict

    path = tmp_path / "pytorch_config.yaml"
    path.write_text(POSE_CONFIG, encoding="utf-8")
    config, imported = read_without(("deeplabcut",), f"pytorch.read_pose_config({str(path)!r})")
    assert config == json.loads(json.dumps(read_config_as_dict(path)))
    assert config["runner"]["optimizer"]["params"]["lr"] == 1e-4  # a number, as DeepLabCut has it
    assert imported == []


def test_a_saved_snapshots_epoch_is_read_without_torch_and_never_from_another_snapshot(tmp_path):
    import torch

    trained = tmp_path / "snapshot-080.pt"
    metadata = {
        "epoch": 80,
        "metrics": {"metrics/test.rmse": 5.4, "metrics/test.mAP": float("nan")},
    }
    torch.save(
        {"model": {"w": torch.ones(2)}, "optimizer": {"lr": 1}, "metadata": metadata}, trained
    )
    saved = pytorch.save_weights_only(trained, tmp_path / "snapshot-last.pt")
    read, imported = read_without(("torch",), f"pytorch.snapshot_metadata({str(saved)!r})")
    assert imported == []
    assert read["epoch"] == 80 and read["metrics"]["metrics/test.rmse"] == 5.4
    assert read["metrics"]["metrics/test.mAP"] != read["metrics"]["metrics/test.mAP"]  # NaN kept
    # another snapshot copied over it: the kept metadata no longer matches its bytes
    torch.save({"model": {"w": torch.zeros(2)}, "metadata": {"epoch": 3}}, saved)
    assert pytorch.snapshot_metadata(saved) == {"epoch": 3}
