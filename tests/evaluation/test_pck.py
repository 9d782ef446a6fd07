"""PCK and the error as % of a reference length on hand-computed geometry (src/evaluation/pck.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.evaluation.pck import (
    SYNTHETIC_REFERENCE,
    Reference,
    pck_by_bodypart,
    pck_metrics,
    reference_lengths,
    reference_of,
    with_reference,
)
from src.synthetic.body import BODYPARTS

TORSO = Reference(("left_shoulder", "right_hip"))

# Labels of three frames: a 3-4-5 torso of 50 px, a vertical one of 20 px, one without right_hip.
LABELS = pd.DataFrame(
    [
        ("v", 0, "left_shoulder", 0.0, 0.0),
        ("v", 0, "right_hip", 30.0, 40.0),
        ("v", 0, "knee", 10.0, 60.0),
        ("v", 0, "wrist", 50.0, 5.0),
        ("v", 1, "left_shoulder", 0.0, 0.0),
        ("v", 1, "right_hip", 0.0, 20.0),
        ("v", 1, "knee", 3.0, 30.0),
        ("v", 1, "wrist", 9.0, 1.0),
        ("v", 2, "left_shoulder", 0.0, 0.0),
        ("v", 2, "knee", 5.0, 5.0),
    ],
    columns=["video", "frame", "bodypart", "x", "y"],
)
# Each prediction's error in px, placed along x (frame, bodypart -> error).
ERRORS = {
    (0, "knee"): 5.0,  # 0.1 of 50 px
    (0, "wrist"): 10.0,  # 0.2
    (0, "left_shoulder"): 25.0,  # 0.5
    (0, "right_hip"): 0.0,  # 0
    (1, "knee"): 1.0,  # 0.05 of 20 px
    (1, "wrist"): 8.0,  # 0.4
    (1, "left_shoulder"): 0.0,  # 0
    (1, "right_hip"): 3.0,  # 0.15
    (2, "knee"): 3.0,  # no reference length: left out
    (2, "left_shoulder"): 1.0,
}


def predictions() -> pd.DataFrame:
    rows = LABELS.rename(columns={"x": "x_label", "y": "y_label"}).assign(set="test")
    rows["error_px"] = [ERRORS[(f, b)] for f, b in zip(rows["frame"], rows["bodypart"])]
    rows["x_pred"] = rows["x_label"] + rows["error_px"]
    rows["y_pred"] = rows["y_label"]
    rows["error_px"] = np.hypot(rows["x_pred"] - rows["x_label"], rows["y_pred"] - rows["y_label"])
    return rows


def test_reference_length_per_frame_from_two_labelled_bodyparts():
    lengths = reference_lengths(LABELS, TORSO).set_index("frame")["ref_length_px"]
    assert lengths[0] == pytest.approx(50.0) and lengths[1] == pytest.approx(20.0)
    assert np.isnan(lengths[2])  # right_hip not labelled in frame 2


def test_pck_and_percent_error_on_hand_computed_geometry():
    scored = with_reference(predictions(), reference_lengths(LABELS, TORSO))
    metrics = pck_metrics(scored, [0.1, 0.2, 0.5])
    # normalised errors: 0.1, 0.2, 0.5, 0 (frame 0); 0.05, 0.4, 0, 0.15 (frame 1); frame 2 left out
    assert metrics["n_test_points_ref"] == 8
    assert metrics["mae_test_pct_ref"] == pytest.approx(100 * 1.4 / 8)
    assert metrics["pck0.1_test"] == pytest.approx(4 / 8)
    assert metrics["pck0.2_test"] == pytest.approx(6 / 8)
    assert metrics["pck0.5_test"] == pytest.approx(1.0)

    per_bodypart = pck_by_bodypart(scored, [0.1]).set_index("bodypart")
    assert per_bodypart.loc["knee", "pct_ref"] == pytest.approx(100 * (0.1 + 0.05) / 2)
    assert per_bodypart.loc["wrist", "pct_ref"] == pytest.approx(100 * (0.2 + 0.4) / 2)
    assert per_bodypart.loc["knee", "pck0.1"] == 1.0 and per_bodypart.loc["wrist", "pck0.1"] == 0.0


def test_a_fixed_length_in_cm_scores_every_frame():
    reference = reference_of(
        OmegaConf.create({"reference_bodyparts": "auto", "reference_length_cm": 10}),
        "dlc_project",
        ["knee"],
        0.5,
    )
    assert reference.length_px == 20.0  # 10 cm at 0.5 cm per px
    scored = with_reference(predictions(), reference_lengths(LABELS, reference))
    metrics = pck_metrics(scored, [0.1])
    assert metrics["n_test_points_ref"] == 10
    errors = np.array(list(ERRORS.values()))
    assert metrics["mae_test_pct_ref"] == pytest.approx(100 * errors.mean() / 20)
    assert metrics["pck0.1_test"] == pytest.approx((errors <= 2).mean())


def test_defaults_torso_for_the_embedded_cohort_and_off_for_user_data():
    pck = OmegaConf.create({"reference_bodyparts": "auto", "reference_length_cm": None})
    assert set(SYNTHETIC_REFERENCE) <= set(BODYPARTS)
    assert reference_of(pck, "synthetic", BODYPARTS, 1.5).bodyparts == SYNTHETIC_REFERENCE
    assert reference_of(pck, "dlc_project", ["knee", "hip"], None) is None


@pytest.mark.parametrize(
    "setting, cm_per_px, message",
    [
        ({"reference_bodyparts": ["knee", "nose"]}, None, "reference_bodyparts"),
        ({"reference_bodyparts": ["knee", "knee"]}, None, "two different"),
        ({"reference_bodyparts": ["knee", "hip"], "reference_length_cm": 5}, 1.0, "both"),
        ({"reference_length_cm": 5}, None, "data.cm_per_px"),
    ],
)
def test_bad_reference_settings_name_the_key_and_the_fix(setting, cm_per_px, message):
    pck = OmegaConf.create({"reference_bodyparts": "auto", "reference_length_cm": None} | setting)
    with pytest.raises(ConfigError, match=message):
        reference_of(pck, "dlc_project", ["knee", "hip"], cm_per_px)
