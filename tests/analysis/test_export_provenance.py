"""What an exported trust calibrator's provenance keeps (src.analysis.export.shareable_provenance):
no video names, participants only as pseudonyms."""

from __future__ import annotations

from src.analysis.export import shareable_provenance


def test_video_names_and_unknown_fields_are_left_out_pseudonyms_kept():
    provenance = {
        "fitted_by": "python -m benchmarks.trust",
        "condition": 6,
        "folds": [1, 2],
        "participants": ["participant-0a1b2c3d", "participant-99ff00aa"],
        "model_runs": {"1": "abc", "2": "def"},
        "pose_pca_fold": 1,
        "videos": ["/data/Jane_Doe_2024.mp4"],
    }
    kept = shareable_provenance(provenance)
    assert kept == {key: value for key, value in provenance.items() if key != "videos"}


def test_participants_that_are_not_pseudonyms_become_their_number():
    kept = shareable_provenance(
        {"condition": 2, "participants": ["Jane Doe", "participant-0a1b2c3d"]}
    )
    assert kept == {"condition": 2, "n_participants": 2}
    assert shareable_provenance(None) is None
