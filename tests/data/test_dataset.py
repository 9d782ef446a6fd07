"""The data layer on a real DeepLabCut project (shared/fixtures/dlc-reaching) and broken copies of it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from src.data.collected_data import read_collected_data, write_collected_data
from src.data.dlc_project import load_dlc_project
from src.data.videos import probe_video
from src.errors import DataError
from tests.conftest import REACHING, tree_checksums

BODYPARTS = ["Hand", "Finger1", "Tongue", "Joystick1", "Joystick2"]


def test_real_project_loads_with_its_quirks_and_stays_untouched():
    before = tree_checksums(REACHING)
    dataset = load_dlc_project(REACHING)
    assert tree_checksums(REACHING) == before

    assert dataset.bodyparts == BODYPARTS and dataset.scorer == "Mackenzie"
    table = dataset.annotations
    assert list(table.columns[:6]) == ["participant", "video", "frame", "bodypart", "x", "y"]
    assert table["frame"].nunique() == 55 and len(table) == 55 * 5
    labelled = table.dropna(subset=["x"]).groupby("bodypart").size()
    assert labelled["Tongue"] == 15 and labelled["Hand"] == 54 and labelled["Joystick1"] == 55
    # frame numbers come from DeepLabCut's img<number>.png names
    assert table.loc[table["image"].str.endswith("img005.png"), "frame"].unique().tolist() == [5]
    # same numbers as DeepLabCut's own file, read directly
    raw = pd.read_hdf(REACHING / "labeled-data/reachingvideo1/CollectedData_Mackenzie.h5")
    hand = table[table["bodypart"] == "Hand"].sort_values("frame")["x"].to_numpy()
    np.testing.assert_allclose(
        np.sort(hand[~np.isnan(hand)]), np.sort(raw["Mackenzie"]["Hand"]["x"].dropna())
    )


def test_csv_and_h5_give_the_same_table(reaching_copy):
    from_h5 = load_dlc_project(reaching_copy).annotations
    (reaching_copy / "labeled-data/reachingvideo1/CollectedData_Mackenzie.h5").unlink()
    from_csv = load_dlc_project(reaching_copy).annotations
    pd.testing.assert_frame_equal(from_h5, from_csv)


def test_participants_from_table_and_pattern(reaching_copy, tmp_path):
    table = tmp_path / "participants.csv"
    table.write_text("video,participant,session\nreachingvideo1,mouse7,day1\n")
    dataset = load_dlc_project(reaching_copy, participants_table=str(table))
    assert dataset.videos[["participant", "session"]].values.tolist() == [["mouse7", "day1"]]
    dataset = load_dlc_project(
        reaching_copy, participant_pattern=r"^(?P<participant>[a-z]+)video(?P<session>\d+)$"
    )
    assert dataset.videos[["participant", "session"]].values.tolist() == [["reaching", "1"]]
    with pytest.raises(DataError, match="does not match data.participants.pattern"):
        load_dlc_project(reaching_copy, participant_pattern=r"^(?P<participant>P\d+)_")
    table.write_text("video,participant\nothervideo,mouse7\n")
    with pytest.raises(
        DataError, match=r"participants.csv does not say whose videos \['reachingvideo1'\]"
    ):
        load_dlc_project(reaching_copy, participants_table=str(table))


def test_written_collected_data_reads_back_identically(tmp_path):
    labels = load_dlc_project(REACHING).annotations
    images = (
        labels.drop_duplicates("frame").set_index("frame")["image"].map(lambda i: i.split("/")[-1])
    )
    folder = tmp_path / "labeled-data" / "reachingvideo1"
    write_collected_data(labels, images, "Mackenzie", BODYPARTS, folder)
    for name in ("CollectedData_Mackenzie.h5", "CollectedData_Mackenzie.csv"):
        ours = read_collected_data(folder / name)
        assert ours.index.nlevels == 3 and ours.index[0][0] == "labeled-data"
        original = pd.read_hdf(REACHING / "labeled-data/reachingvideo1/CollectedData_Mackenzie.h5")
        np.testing.assert_allclose(ours.to_numpy(), original.sort_index().to_numpy())


# ----------------------------------------------------------------------------- bad input


def _edit_config(project, **changes):
    path = project / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg.update(changes)
    path.write_text(yaml.safe_dump(cfg))


def _csv_only(project):
    """Drop the .h5 so the (editable) .csv is what gets read; returns the csv path."""
    (project / "labeled-data/reachingvideo1/CollectedData_Mackenzie.h5").unlink()
    return project / "labeled-data/reachingvideo1/CollectedData_Mackenzie.csv"


def test_missing_config_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"config.yaml does not exist; set data.root"):
        load_dlc_project(tmp_path)


def test_bodyparts_differing_from_config(reaching_copy):
    _edit_config(reaching_copy, bodyparts=["Hand", "Finger1", "Nose", "Joystick1", "Joystick2"])
    with pytest.raises(
        DataError,
        match=r"CollectedData_Mackenzie.h5 has bodyparts that differ.*\['Nose'\].*\['Tongue'\]",
    ):
        load_dlc_project(reaching_copy)


def test_wrong_scorer_lists_the_scorers_found(reaching_copy):
    _edit_config(reaching_copy, scorer="Alex")
    with pytest.raises(
        DataError, match=r"labels by scorer\(s\) \['Mackenzie'\], not by 'Alex'; set data.scorer"
    ):
        load_dlc_project(reaching_copy)
    assert len(load_dlc_project(reaching_copy, scorer="Mackenzie").annotations) == 275


def test_label_outside_the_image(reaching_copy):
    csv = _csv_only(reaching_copy)
    lines = csv.read_text().splitlines()
    cells = lines[3].split(",")
    cells[1] = "5000"  # Hand x of img005.png, an 832 px wide frame
    lines[3] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"outside the image, first Hand at \(5000.0.*img005.png of size 832x747"
    ):
        load_dlc_project(reaching_copy)


def test_labelled_frame_missing(reaching_copy):
    (reaching_copy / "labeled-data/reachingvideo1/img020.png").unlink()
    with pytest.raises(
        DataError, match=r"labels labeled-data/reachingvideo1/img020.png, but .*does not exist"
    ):
        load_dlc_project(reaching_copy)


def test_duplicated_frame_rows(reaching_copy):
    csv = _csv_only(reaching_copy)
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines + [lines[3]]) + "\n")
    with pytest.raises(
        DataError,
        match=r"labels the same frame more than once: \['labeled-data/reachingvideo1/img005.png'\]",
    ):
        load_dlc_project(reaching_copy)


def test_corrupt_annotation_file(reaching_copy):
    h5 = reaching_copy / "labeled-data/reachingvideo1/CollectedData_Mackenzie.h5"
    h5.write_bytes(h5.read_bytes()[:200])
    with pytest.raises(DataError, match=r"CollectedData_Mackenzie.h5 cannot be read"):
        load_dlc_project(reaching_copy)


def test_unlabelled_project(reaching_copy):
    for f in (reaching_copy / "labeled-data/reachingvideo1").glob("CollectedData_*"):
        f.unlink()
    with pytest.raises(
        DataError, match=r"no folder under .*labeled-data holds CollectedData_Mackenzie"
    ):
        load_dlc_project(reaching_copy)


def test_multi_animal_project_is_refused(reaching_copy):
    _edit_config(reaching_copy, multianimalproject=True)
    with pytest.raises(DataError, match="multi-animal project"):
        load_dlc_project(reaching_copy)


def test_corrupt_and_empty_video(reaching_copy):

    video = reaching_copy / "videos" / "reachingvideoS.avi"
    assert probe_video(video) == (21, 832, 746)
    broken = reaching_copy / "videos" / "broken.avi"
    broken.write_bytes(b"\x00" * 4096)
    with pytest.raises(DataError, match=r"broken.avi cannot be decoded by OpenCV"):
        probe_video(broken)
    empty = reaching_copy / "videos" / "empty.mp4"
    empty.touch()
    with pytest.raises(DataError, match=r"empty.mp4 is empty \(0 bytes\)"):
        probe_video(empty)


def test_scorer_in_header_differs_from_file_name(reaching_copy):
    csv = _csv_only(reaching_copy)
    lines = csv.read_text().splitlines()
    lines[0] = lines[0].replace("Mackenzie", "Bob")
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError,
        match=r"labelled by scorer\(s\) \['Bob'\] in its header but its name says 'Mackenzie'",
    ):
        load_dlc_project(reaching_copy)
