"""A DeepLabCut 3 pose configuration is read as DeepLabCut reads it, without importing DeepLabCut."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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


def test_the_pose_config_equals_deeplabcuts_reading_and_deeplabcut_is_not_imported(tmp_path):
    from deeplabcut.core.config.utils import read_config_as_dict

    path = tmp_path / "pytorch_config.yaml"
    path.write_text(POSE_CONFIG, encoding="utf-8")
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys; from src.engine import pytorch; "
            f"config = pytorch.read_pose_config({str(path)!r}); "
            "print(json.dumps([config, 'deeplabcut' in sys.modules]))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    config, imported = json.loads(ours.stdout.splitlines()[-1])
    assert config == json.loads(json.dumps(read_config_as_dict(path)))
    assert config["runner"]["optimizer"]["params"]["lr"] == 1e-4  # a number, as DeepLabCut has it
    assert imported is False
