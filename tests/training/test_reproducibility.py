"""Reproducible CPU numerics (src/__init__.py): the pins, and a condition trained twice to the same bits."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from mlflow.tracking import MlflowClient

import src
from src import LEGACY_SWITCH, PINNED, SETTING
from tests.conftest import REPO, python_env, tiny_overrides, tiny_project

PINS = (*PINNED, SETTING, LEGACY_SWITCH, "DNNL_MAX_CPU_ISA")

# What a child process of the project computes with: oneDNN's ISA, MKL's CNR branch, ATen's kernels.
PROBE = """
import src, torch
torch.nn.functional.conv2d(torch.ones(2, 3, 16, 16), torch.ones(4, 3, 3, 3))
torch.ones(64, 300) @ torch.ones(300, 50)
print("aten:", torch.backends.cpu.get_cpu_capability())
print("class:", src.numerics_class())
"""
# What oneDNN's verbose output and torch say for each class's pins.
SHOWN = {
    "avx2": ("isa:Intel AVX2", "aten: AVX2"),
    "avx512_core": ("isa:Intel AVX-512", "aten: AVX512"),
}


def project_env(**variables: str) -> dict[str, str]:
    """This virtualenv's environment without any pin of the caller's, plus ``variables``."""
    return {k: v for k, v in python_env().items() if k not in PINS} | variables


def test_pins_follow_the_setting_and_the_users_values_win(monkeypatch):
    # A plain copy of the environment without the pins: nothing set here reaches the process's own.
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items() if k not in PINS})
    native = src.cpu_class()
    src.pin_cpu_numerics()
    assert {k: os.environ.get(k) for k in PINNED} == (
        src.CLASSES[native] if native else dict.fromkeys(PINNED)
    )
    assert src.numerics_class() == (native or src.numerics_class())
    assert src.cpu_numerics()["class"] == src.numerics_class()

    for name in PINS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(SETTING, "portable")
    src.pin_cpu_numerics()
    if native:
        assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and src.numerics_class() == "avx2"

    for setting in ({SETTING: "off"}, {LEGACY_SWITCH: "0"}):
        for name in PINS:
            monkeypatch.delenv(name, raising=False)
        for name, value in setting.items():
            monkeypatch.setenv(name, value)
        src.pin_cpu_numerics()
        assert not any(name in os.environ for name in PINNED)
        assert src.numerics_class().startswith("unpinned-")

    for name in PINS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "ALL")
    src.pin_cpu_numerics()
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "ALL"
    if native:
        assert os.environ["MKL_CBWR"] == "COMPATIBLE"
    assert src.numerics_class().startswith("unpinned-")  # the user's cap is no class of ours

    # oneDNN's older name counts as the user's choice too (ONEDNN_MAX_CPU_ISA would take precedence).
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "ALL")
    src.pin_cpu_numerics()
    assert "ONEDNN_MAX_CPU_ISA" not in os.environ

    monkeypatch.setenv(SETTING, "fastest")
    with pytest.raises(SystemExit, match="CPU_NUMERICS"):
        src.setting()


@pytest.mark.skipif(src.cpu_class() is None, reason="the pins are x86-64 instruction sets; no AVX2")
@pytest.mark.parametrize("setting", ["native", "portable"])
def test_a_process_of_the_project_computes_with_the_pinned_kernels(setting):
    expected = src.cpu_class() if setting == "native" else "avx2"
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO,
        env=project_env(ONEDNN_VERBOSE="1", MKL_VERBOSE="1", CPU_NUMERICS=setting),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    shown = result.stdout[-2000:]
    isa, aten = SHOWN[expected]
    assert isa in result.stdout and aten in result.stdout, shown
    assert "CNR:COMPATIBLE" in result.stdout and f"class: {expected}" in result.stdout, shown


def train_tiny(root: Path, data: Path) -> subprocess.CompletedProcess:
    """One tiny condition (pre-training included) in a fresh process, into its own store under ``root``."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            *tiny_overrides(root),
            f"paths.data_dir={data}",
            "synthetic=tiny",
            f"pipeline.dir={root / 'pipeline'}",
            "labelled_frames=2",
        ],
        cwd=REPO,
        env=project_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


def outcome(root: Path) -> dict:
    """What a training left: the weights (pre-trained and trained), the loss curve, the logged MAE."""
    (pretrained,) = (root / "models" / "pretrained").glob("*/snapshot.pt")
    (model,) = (root / "models" / "synthetic_clinical").glob("frames2-*/model")
    client = MlflowClient(f"sqlite:///{root / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("synthetic_clinical").experiment_id
    (run,) = client.search_runs([experiment], filter_string="attributes.run_name = 'frames=2'")
    return {
        "pretrained": pretrained,
        "trained": model / "snapshot-last.pt",
        "learning_stats": pd.read_csv(model / "learning_stats.csv"),
        "metrics": {k: v for k, v in run.data.metrics.items() if k.startswith(("mae_", "kept_"))},
    }


def weights(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)
    return {k: v for k, v in state.get("model", state).items() if torch.is_tensor(v)}


def largest_difference(a: Path, b: Path) -> float:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa if wa[k].numel())


@pytest.mark.slow
def test_a_condition_trains_to_the_same_bits_twice_even_beside_a_cpu_hog(tmp_path):
    """Two processes train the same tiny condition from scratch, the second beside a busy loop that
    competes for the cores: the weights, the loss curve and the logged MAE must agree to the last bit."""
    tiny_project(tmp_path)
    data = tmp_path / "data"
    quiet = train_tiny(tmp_path / "quiet", data)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = train_tiny(tmp_path / "busy", data)
        hogging = hog.poll() is None  # still spinning when the training ended
    finally:
        hog.kill()
        hog.wait()
    assert busy.returncode == 0, busy.stderr[-3000:]
    assert hogging

    a, b = outcome(tmp_path / "quiet"), outcome(tmp_path / "busy")
    for which in ("pretrained", "trained"):
        assert largest_difference(a[which], b[which]) == 0.0, which
        assert a[which].read_bytes() == b[which].read_bytes(), which
    pd.testing.assert_frame_equal(a["learning_stats"], b["learning_stats"], check_exact=True)
    assert {"mae_train_px", "mae_test_px", "mae_generalisation_px"} <= a["metrics"].keys()
    assert a["metrics"].keys() == b["metrics"].keys()
    differing = {
        k: (v, b["metrics"][k])
        for k, v in a["metrics"].items()
        if not (v == b["metrics"][k] or math.isnan(v) and math.isnan(b["metrics"][k]))
    }
    assert not differing
