"""benchmarks.trust's frame rules: a frame's error is its MAE; a 0/1 DeepLabCut flag flags the
frame when any point has it, other scores are averaged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.trust import per_frame


def test_frames_take_the_mean_score_and_any_flag():
    rows = pd.DataFrame(
        {
            "video": ["V1"] * 4 + ["V2"] * 2,
            "frame": [0, 0, 1, 1, 0, 0],
            "participant": ["P1"] * 4 + ["P2"] * 2,
            "error_px": [2.0, 10.0, 1.0, 1.0, 30.0, 10.0],
            "threshold_px": [5.0] * 6,
        }
    )
    scores = pd.DataFrame(
        {
            "combined": [0.2, 0.8, 0.1, 0.1, 0.9, 0.5],
            "dlc_jump": [0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
            "dlc_uncertain": [0.0, 0.0, 0.0, 0.0, 1.0, 1.0],
        }
    )
    frames = per_frame(rows, scores)
    np.testing.assert_allclose(frames["mae_px"], [6.0, 1.0, 20.0])
    np.testing.assert_allclose(frames["combined"], [0.5, 0.1, 0.7])
    np.testing.assert_allclose(frames["dlc_jump"], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(frames["dlc_uncertain"], [0.0, 0.0, 1.0])
    assert list(frames["participant"]) == ["P1", "P1", "P2"]
