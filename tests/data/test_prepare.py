"""The prepare stage on the tiny synthetic cohort, and the round trip through DeepLabCut's labelling layout."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from src.data.collected_data import read_collected_data, write_labels
from src.data.dlc_project import load_dlc_project
from src.data.frames import TEST, TRAIN
from src.data.preparation import prepare
from src.data.split import DEVELOPMENT, GENERALISATION
from src.data.synthetic import load_synthetic
from src.errors import DataError
from src.labelling import export_for_labelling, import_labels
from src.synthetic.cohort import generate_all
from tests.conftest import compose_config, tree_checksums


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Tiny cohort generated once, then prepared; returns (config, prepared folder, raw checksums before)."""
    tmp_path = tmp_path_factory.mktemp("prepare")
    cfg = compose_config(tmp_path)
    generate_all(cfg.synthetic)
    raw = tmp_path / "data" / "synthetic" / "clinical"
    before = tree_checksums(raw)
    return cfg, prepare(cfg), before


def test_raw_data_is_read_only_to_the_stage(prepared):
    cfg, _, before = prepared
    assert tree_checksums(f"{cfg.paths.synthetic_dir}/clinical") == before


def test_split_and_selection(prepared):
    cfg, out, _ = prepared
    split = pd.read_csv(out / "split.csv")
    assert (split.groupby("participant")["set"].nunique() == 1).all()
    assert set(split["set"]) == {DEVELOPMENT, GENERALISATION}

    selection = pd.read_csv(out / "selection.csv")
    assert not selection.duplicated(["video", "frame"]).any()
    frames_per_video = cfg.synthetic.clinical.frames_per_video
    for _video, rows in selection.groupby("video"):
        roles = rows["role"].value_counts().to_dict()
        if rows["set"].iloc[0] == DEVELOPMENT:
            wanted = cfg.frames.max_train_frames_per_video + 1
            assert roles[TEST] == 1
            assert roles[TRAIN] == min(wanted, frames_per_video) - 1
            assert sorted(rows.loc[rows["role"] == TRAIN, "rank"]) == list(
                range(1, roles[TRAIN] + 1)
            )
        else:
            assert roles == {GENERALISATION: cfg.frames.generalisation_frames_per_video}

    facts = yaml.safe_load((out / "dataset.yaml").read_text())
    used = facts["frames_per_video"]
    dev_video = split.loc[split["set"] == DEVELOPMENT, "video"].iloc[0]
    assert used[dev_video]["train"] == {
        "asked": cfg.frames.max_train_frames_per_video,
        "used": int(((selection["video"] == dev_video) & (selection["role"] == TRAIN)).sum()),
    }
    assert facts["cm_per_px"] == cfg.synthetic.clinical.cm_per_px and len(facts["bodyparts"]) == 14


def test_labels_are_ground_truth_plus_labelling_error(prepared):
    cfg, out, _ = prepared
    labels = pd.read_csv(out / "labels.csv")
    truth = pd.read_csv(f"{cfg.paths.synthetic_dir}/clinical/ground_truth.csv")
    both = labels.merge(truth, on=["video", "frame", "bodypart"], suffixes=("", "_true"))
    assert len(both) == len(labels) == len(pd.read_csv(out / "selection.csv")) * 14
    error = np.concatenate([both["x"] - both["x_true"], both["y"] - both["y_true"]])
    assert 0.6 * cfg.frames.label_noise_px < error.std() < 1.4 * cfg.frames.label_noise_px
    assert abs(error.mean()) < 0.3


def test_frames_are_the_video_frames_in_deeplabcuts_layout(prepared):
    cfg, out, _ = prepared
    selection = pd.read_csv(out / "selection.csv")
    row = selection.iloc[len(selection) // 2]
    image = cv2.imread(str(out / row["image"]))
    capture = cv2.VideoCapture(f"{cfg.paths.synthetic_dir}/clinical/videos/{row['video']}.mp4")
    for _ in range(row["frame"] + 1):
        ok, frame = capture.read()
    np.testing.assert_array_equal(image, frame)  # PNG is lossless: the exact decoded frame

    collected = read_collected_data(
        out / "labeled-data" / row["video"] / "CollectedData_ground_truth.h5"
    )
    labels = pd.read_csv(out / "labels.csv")
    mine = labels[(labels["video"] == row["video"]) & (labels["frame"] == row["frame"])].set_index(
        "bodypart"
    )
    image_name = row["image"].split("/")[-1]
    stored = collected.loc[("labeled-data", row["video"], image_name)]["ground_truth"]
    np.testing.assert_allclose(stored.xs("x", level="coords")[mine.index], mine["x"], atol=1e-3)


def test_same_seed_same_bytes_other_seed_other_selection(prepared, tmp_path):
    cfg, out, _ = prepared
    again = prepare(compose_config(tmp_path, f"paths.synthetic_dir={cfg.paths.synthetic_dir}"))
    for name in ("split.csv", "selection.csv", "labels.csv", "dataset.yaml"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    label_files = sorted(out.glob("labeled-data/*/CollectedData_*.h5"))
    assert label_files
    for h5 in label_files:
        pd.testing.assert_frame_equal(pd.read_hdf(again / h5.relative_to(out)), pd.read_hdf(h5))
        # no HDF5 write times: the same bytes, so the same DVC and MLflow digests
        assert (again / h5.relative_to(out)).read_bytes() == h5.read_bytes(), h5
        csv = h5.with_suffix(".csv")
        assert (again / csv.relative_to(out)).read_bytes() == csv.read_bytes(), csv
    assert tree_checksums(again) == tree_checksums(out)  # every file of the prepared folder
    other = prepare(
        compose_config(tmp_path, f"paths.synthetic_dir={cfg.paths.synthetic_dir}", "frames.seed=5")
    )
    assert (other / "labels.csv").read_bytes() != (out / "labels.csv").read_bytes()


def test_output_inside_raw_data_is_refused(prepared, tmp_path):
    cfg, _, _ = prepared
    inside = compose_config(
        tmp_path,
        f"paths.synthetic_dir={cfg.paths.synthetic_dir}",
        f"paths.prepared_dir={cfg.paths.synthetic_dir}/clinical/prepared",
    )
    with pytest.raises(DataError, match="inside the raw data folder"):
        prepare(inside)


def test_labelling_round_trip_through_deeplabcut(prepared, tmp_path):
    from deeplabcut.core.config import read_config
    from deeplabcut.generate_training_dataset.trainingsetmanipulation import (
        merge_annotateddatasets,
    )

    cfg, out, _ = prepared
    work = tmp_path / "prepared"
    shutil.copytree(out, work)
    project = tmp_path / "labelling project"  # a space in the path on purpose
    config_path = export_for_labelling(work, project, scorer="Ana", include_labels=False)
    selection = pd.read_csv(work / "selection.csv")
    assert sorted(p.name for p in project.glob("labeled-data/*/*.png")) == sorted(
        i.split("/")[-1] for i in selection["image"]
    )
    with pytest.raises(DataError, match="already holds a labelling project"):
        export_for_labelling(work, project, scorer="Ana", include_labels=False)

    # the labeller's work: every point 2 px to the right of the current labels
    labels = pd.read_csv(work / "labels.csv")
    relabelled = labels.assign(x=labels["x"] + 2.0)
    bodyparts = yaml.safe_load((work / "dataset.yaml").read_text())["bodyparts"]
    write_labels(relabelled, selection, "Ana", bodyparts, project / "labeled-data")

    # DeepLabCut's own readers accept the project and its labels
    dlc_cfg = read_config(config_path)
    merged = merge_annotateddatasets(dlc_cfg, tmp_path)
    assert merged.shape == (len(selection), 2 * len(bodyparts))

    imported = import_labels(project, work, scorer="Ana")
    np.testing.assert_allclose(imported["x"].to_numpy(), relabelled["x"].to_numpy(), atol=1e-3)
    reread = pd.read_csv(work / "labels.csv")
    np.testing.assert_allclose(reread["x"], relabelled["x"], atol=1e-3)
    assert load_dlc_project(project, scorer="Ana").annotations["x"].notna().all()


@pytest.fixture
def cohort_copy(prepared, tmp_path):
    cfg, _, _ = prepared
    copy = tmp_path / "cohort copy"
    shutil.copytree(f"{cfg.paths.synthetic_dir}/clinical", copy)
    return copy


def test_cohort_with_a_corrupt_video(cohort_copy):

    video = sorted((cohort_copy / "videos").glob("*.mp4"))[1]
    video.write_bytes(b"not a video" * 100)
    with pytest.raises(DataError, match=rf"{video.name} cannot be decoded by OpenCV"):
        load_synthetic(cohort_copy)
    video.unlink()
    with pytest.raises(DataError, match=rf"video .*{video.name} does not exist"):
        load_synthetic(cohort_copy)


def test_cohort_with_bad_ground_truth(cohort_copy):

    truth_path = cohort_copy / "ground_truth.csv"
    truth = pd.read_csv(truth_path)
    truth.loc[len(truth)] = [truth["video"].iloc[0], 999, "head", 10.0, 10.0, 0]
    truth.to_csv(truth_path, index=False)
    with pytest.raises(
        DataError,
        match=r"ground_truth.csv annotates frame 999 of video P01_S1, which has \d+ frames",
    ):
        load_synthetic(cohort_copy)
    truth_path.unlink()
    with pytest.raises(DataError, match=r"ground_truth.csv does not exist"):
        load_synthetic(cohort_copy)


def test_new_videos_are_selected_exported_labelled_and_imported(prepared, tmp_path):
    """The user's own unlabelled recordings, names with spaces and non-ASCII letters included."""
    cfg, _, _ = prepared
    recordings = tmp_path / "Aufnahmen März"
    recordings.mkdir()
    sources = sorted(Path(f"{cfg.paths.synthetic_dir}/clinical/videos").glob("*.mp4"))
    for source, target in zip(sources, ["Kind Ä_1", "Kind Ä_2", "Kind B_1", "Kind C_1"]):
        shutil.copyfile(source, recordings / f"{target}.mp4")
    before = tree_checksums(recordings)

    run_cfg = compose_config(
        tmp_path, "data=videos", f"data.root='{recordings}'", "data.name=new"
    )  # Hydra needs quotes around spaces
    out = prepare(run_cfg)
    split = pd.read_csv(out / "split.csv")
    assert split.groupby("participant").size().to_dict() == {"Kind Ä": 2, "Kind B": 1, "Kind C": 1}
    labels = pd.read_csv(out / "labels.csv")
    assert labels["x"].isna().all() and len(labels) == len(pd.read_csv(out / "selection.csv")) * 14

    project = tmp_path / "labelling"
    export_for_labelling(out, project, scorer="Ana", include_labels=False)
    labelled = labels.assign(x=10.0, y=20.0)
    selection = pd.read_csv(out / "selection.csv")
    write_labels(labelled, selection, "Ana", run_cfg.data.bodyparts, project / "labeled-data")
    import_labels(project, out, scorer="Ana")
    reread = pd.read_csv(out / "labels.csv")
    assert (reread["x"] == 10.0).all() and (reread["y"] == 20.0).all()
    assert tree_checksums(recordings) == before
