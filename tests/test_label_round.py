"""One round of active labelling by hand (src/label_round.py), without training: a tiny prepared
folder, two development videos, the trust files src.analyze would write, a round exported, its
frames labelled as napari-deeplabcut saves them (a script writes DeepLabCut's file), and brought
back; every bad folder is refused in one line with the annotations left byte for byte."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from src.data.collected_data import read_collected_data
from src.label_round import main

BODYPARTS = ["head", "hand"]
N_FRAMES = 40
VIDEOS = {"p1_walk": 37, "p2_walk": 3}  # video: the frame its model is least sure of
# (outside conf/frames/active.yaml's min_gap_frames, 15, of the labelled frame 20)


def write_video(path: Path, seed: int) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 24))
    rng = np.random.default_rng(seed)
    for f in range(N_FRAMES):
        image = np.full((24, 32, 3), 40, np.uint8)
        image[:, (f * 3) % 32 : (f * 3) % 32 + 4] = 200  # a bar moving across
        writer.write(image + rng.integers(0, 10, image.shape, dtype=np.uint8))
    writer.release()


def selection_rows(video: str, participant: str, set_name: str) -> list[dict]:
    roles = (
        [("test", 1, 12), ("train", 1, 20), ("train", 2, 2)]
        if set_name == "development"
        else [("generalisation", 1, 5)]
    )
    return [
        dict(participant=participant, video=video, session="s", set=set_name, role=role)
        | dict(rank=rank, frame=frame, image=f"labeled-data/{video}/img{frame:02d}.png")
        for role, rank, frame in roles
    ]


def trust_file(folder: Path, worst: int) -> None:
    """trust.h5 as src.analysis.trust writes it: x, y, likelihood, trust, flagged per point."""
    trust = np.full(N_FRAMES, 0.95)
    trust[worst] = 0.05
    trust[worst + 1] = 0.1  # its neighbour is nearly as bad: diversity passes it over
    columns = pd.MultiIndex.from_product(
        [["DLC_model"], BODYPARTS, ["x", "y", "likelihood", "trust", "flagged"]],
        names=["scorer", "bodyparts", "coords"],
    )
    values = np.zeros((N_FRAMES, len(columns)))
    for j in range(len(BODYPARTS)):
        values[:, j * 5 + 3] = trust
    folder.mkdir(parents=True)
    pd.DataFrame(values, columns=columns).to_hdf(
        folder / "trust.h5", key="df_with_missing", format="table", mode="w"
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A prepared folder, videos, trust files and round 2 exported (1 -> 2 frames per video)."""
    root = tmp_path_factory.mktemp("round")
    (root / "videos").mkdir()
    for seed, video in enumerate(VIDEOS):
        write_video(root / "videos" / f"{video}.mp4", seed)
        trust_file(root / "analysed" / video, VIDEOS[video])
    prepared = root / "prepared"
    prepared.mkdir()
    rows = selection_rows("p1_walk", "p1", "development")
    rows += selection_rows("p2_walk", "p2", "development")
    rows += selection_rows("p3_walk", "p3", "generalisation")
    selection = pd.DataFrame(rows)
    selection.to_csv(prepared / "selection.csv", index=False)
    split = selection.drop_duplicates("video")[["participant", "video", "session", "set"]]
    split.to_csv(prepared / "split.csv", index=False)
    labels = selection[["participant", "video", "frame"]].merge(
        pd.DataFrame({"bodypart": BODYPARTS}), how="cross"
    )
    labels.assign(x=10.0, y=11.0).to_csv(prepared / "labels.csv", index=False)
    facts = dict(
        name="tiny",
        scorer="ground_truth",
        bodyparts=BODYPARTS,
        skeleton=[BODYPARTS],
        config=dict(seed=3, max_frames_for_clustering=3000, features=dict(width_px=8, height_px=6)),
    )
    (prepared / "dataset.yaml").write_text(yaml.safe_dump(facts))
    main(
        ["export", "--prepared", str(prepared), "--analysed", str(root / "analysed")]
        + ["--videos", str(root / "videos"), "--labelled", "1", "--frames", "3"]
        + ["--round", str(root / "round_2"), "--scorer", "me"]
    )
    return root


def test_export_chooses_the_worst_frames_apart_and_keeps_the_fixed_frames(exported):
    manifest = yaml.safe_load((exported / "round_2" / "round.yaml").read_text())
    assert manifest["round"] == 2  # the first after k-means' round 1
    chosen = {v: [e["frame"] for e in rows] for v, rows in manifest["exported"].items()}
    assert chosen["p1_walk"][0] == 37 and 38 not in chosen["p1_walk"]
    assert chosen["p2_walk"][0] == 3 and 4 not in chosen["p2_walk"]
    assert all(len(frames) == 2 for frames in chosen.values())
    for frames in chosen.values():  # never the labelled (20), test (12) or generalisation frames
        assert not {20, 12} & set(frames)
    before = pd.read_csv(exported / "prepared" / "selection.csv")
    after = pd.read_csv(exported / "round_2" / "selection.csv")
    fixed = ["video", "role", "rank", "frame", "image"]
    pd.testing.assert_frame_equal(
        after[after.role != "train"][fixed].reset_index(drop=True),
        before[before.role != "train"][fixed].reset_index(drop=True),
    )
    p1 = after[(after.video == "p1_walk") & (after.role == "train")]
    assert p1["frame"].tolist() == [20, *chosen["p1_walk"]]  # nested: round 1 first
    project = exported / "round_2" / "labelling"
    config = yaml.safe_load((project / "config.yaml").read_text())
    assert config["scorer"] == "me" and config["bodyparts"] == BODYPARTS
    images = sorted(p.name for p in (project / "labeled-data" / "p1_walk").glob("*.png"))
    assert images == sorted(f"img{f:02d}.png" for f in chosen["p1_walk"])
    image = cv2.imread(str(project / "labeled-data" / "p1_walk" / "img37.png"))
    assert image.shape == (24, 32, 3) and image[:, 111 % 32 + 1].mean() > 150  # frame 37's bar
    assert image[:, 111 % 32 + 8].mean() < 100


def label(round_dir: Path, video: str, rows: list[tuple[str, float]], scorer="me", parts=None):
    """CollectedData_<scorer>.h5 as napari-deeplabcut saves it: rows of (image, x)."""
    parts = parts or BODYPARTS
    folder = round_dir / "labelling" / "labeled-data" / video
    columns = pd.MultiIndex.from_product(
        [[scorer], parts, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    index = pd.MultiIndex.from_tuples([("labeled-data", video, image) for image, _ in rows])
    values = [[x, x + 1] * len(parts) for _, x in rows]
    pd.DataFrame(values, index=index, columns=columns).to_hdf(
        folder / f"CollectedData_{scorer}.h5", key="df_with_missing", mode="w"
    )


@pytest.fixture
def labelled(exported, tmp_path) -> Path:
    """A copy of the round, every exported frame labelled."""
    round_dir = tmp_path / "round_2"
    shutil.copytree(exported / "round_2", round_dir)
    manifest = yaml.safe_load((round_dir / "round.yaml").read_text())
    for video, rows in manifest["exported"].items():
        label(round_dir, video, [(e["image"], 100.0 + e["frame"]) for e in rows])
    return round_dir


def bring_back(round_dir: Path, exported: Path, tmp_path: Path, capsys):
    annotations = exported / "prepared" / "labels.csv"
    out = tmp_path / "annotations" / "round_2.csv"
    before = annotations.read_bytes()
    try:
        main(
            ["import", "--round", str(round_dir), "--annotations", str(annotations)]
            + [
                "--out",
                str(out),
            ]
        )
        status = 0
    except SystemExit as stop:
        status = stop.code
    assert annotations.read_bytes() == before
    return status, capsys.readouterr(), out


def test_import_merges_the_labels_into_a_new_file(labelled, exported, tmp_path, capsys):
    status, printed, out = bring_back(labelled, exported, tmp_path, capsys)
    assert status == 0, printed.err
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    merged = pd.read_csv(out)
    old = pd.read_csv(exported / "prepared" / "labels.csv")
    assert len(merged) == len(old) + 2 * 2 * len(BODYPARTS)
    for video, rows in manifest["exported"].items():
        for entry in rows:
            got = merged[(merged.video == video) & (merged.frame == entry["frame"])]
            assert got["bodypart"].tolist() == BODYPARTS
            assert got["x"].tolist() == [100.0 + entry["frame"]] * 2
            assert got["y"].tolist() == [101.0 + entry["frame"]] * 2
            assert set(got["participant"]) == {video[:2]}
    pd.testing.assert_frame_equal(
        merged.merge(old, how="inner").sort_values(["video", "frame"]).reset_index(drop=True),
        old.sort_values(["video", "frame"], kind="stable").reset_index(drop=True),
        check_like=True,
    )
    assert f"dvc add {out}" in printed.out
    assert read_collected_data(
        labelled / "labelling" / "labeled-data" / "p1_walk" / "CollectedData_me.h5"
    ).shape == (2, 4)


def refused(round_dir, exported, tmp_path, capsys) -> str:
    status, printed, out = bring_back(round_dir, exported, tmp_path, capsys)
    assert status == 2 and not out.exists()
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "; " in lines[0], printed.err
    return lines[0]


def test_a_missing_label_file_is_refused(labelled, exported, tmp_path, capsys):
    path = labelled / "labelling" / "labeled-data" / "p2_walk" / "CollectedData_me.h5"
    path.unlink()
    line = refused(labelled, exported, tmp_path, capsys)
    assert line.startswith(f"error: {path}: missing; label the frames in napari-deeplabcut")


def test_another_scorer_is_refused(labelled, exported, tmp_path, capsys):
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    rows = [(e["image"], 1.0) for e in manifest["exported"]["p1_walk"]]
    label(labelled, "p1_walk", rows, scorer="someone")
    path = labelled / "labelling" / "labeled-data" / "p1_walk" / "CollectedData_me.h5"
    path.unlink()
    assert "(found CollectedData_someone.h5: another scorer)" in refused(
        labelled, exported, tmp_path, capsys
    )
    (path.parent / "CollectedData_someone.h5").rename(path)  # the right name, the wrong header
    line = refused(labelled, exported, tmp_path, capsys)
    assert line.startswith(f"error: {path}: scorer someone, the export's 'me'; label as 'me'")


def test_other_bodyparts_are_refused(labelled, exported, tmp_path, capsys):
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    rows = [(e["image"], 1.0) for e in manifest["exported"]["p1_walk"]]
    label(labelled, "p1_walk", rows, parts=["head", "foot"])
    line = refused(labelled, exported, tmp_path, capsys)
    assert "bodyparts ['head', 'foot'], the export's ['head', 'hand']" in line


def test_a_frame_outside_the_export_is_refused(labelled, exported, tmp_path, capsys):
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    rows = [(e["image"], 1.0) for e in manifest["exported"]["p1_walk"]] + [("img05.png", 3.0)]
    label(labelled, "p1_walk", rows)
    line = refused(labelled, exported, tmp_path, capsys)
    assert "frame img05.png was not exported in this round" in line


def test_a_frame_labelled_twice_is_refused(labelled, exported, tmp_path, capsys):
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    image = manifest["exported"]["p2_walk"][0]["image"]
    label(labelled, "p2_walk", [(image, 1.0), (image, 2.0)])
    assert f"frame {image} is labelled twice; keep one row per frame" in refused(
        labelled, exported, tmp_path, capsys
    )


def test_a_frame_already_in_the_annotations_is_refused(labelled, exported, tmp_path, capsys):
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    frame = manifest["exported"]["p1_walk"][0]["frame"]
    annotations = pd.read_csv(exported / "prepared" / "labels.csv")
    extra = pd.DataFrame(
        [
            dict(participant="p1", video="p1_walk", frame=frame, bodypart=b, x=1.0, y=1.0)
            for b in BODYPARTS
        ]
    )
    other = tmp_path / "labels_with_frame.csv"
    pd.concat([annotations, extra]).to_csv(other, index=False)
    before = other.read_bytes()
    with pytest.raises(SystemExit) as stop:
        main(
            ["import", "--round", str(labelled), "--annotations", str(other)]
            + [
                "--out",
                str(tmp_path / "new.csv"),
            ]
        )
    assert stop.value.code == 2 and other.read_bytes() == before
    assert not (tmp_path / "new.csv").exists()
    assert f"frame {frame} is labelled twice (it is already in the annotations)" in (
        capsys.readouterr().err
    )


def test_an_existing_output_is_never_overwritten(labelled, exported, tmp_path, capsys):
    out = tmp_path / "annotations" / "round_2.csv"
    out.parent.mkdir()
    out.write_text("mine")
    status, printed, _ = bring_back(labelled, exported, tmp_path, capsys)
    assert status == 2 and out.read_text() == "mine"
    assert printed.err.startswith(f"error: {out}: exists; give a new file")


def test_a_selected_frame_not_yet_labelled_gets_its_labels_once(labelled, exported, tmp_path):
    """Prepared labels of new recordings hold NaN rows for frames not labelled yet: a round that
    labels one replaces them, and an empty row is not "labelled twice"."""
    manifest = yaml.safe_load((labelled / "round.yaml").read_text())
    frame = manifest["exported"]["p1_walk"][0]["frame"]
    annotations = pd.read_csv(exported / "prepared" / "labels.csv")
    empty = pd.DataFrame(
        [dict(participant="p1", video="p1_walk", frame=frame, bodypart=b) for b in BODYPARTS]
    )
    given = tmp_path / "labels_with_empty_rows.csv"
    pd.concat([annotations, empty]).to_csv(given, index=False)
    out = tmp_path / "merged.csv"
    main(["import", "--round", str(labelled), "--annotations", str(given), "--out", str(out)])
    rows = pd.read_csv(out).query("video == 'p1_walk' and frame == @frame")
    assert rows["bodypart"].tolist() == BODYPARTS
    assert rows["x"].tolist() == [100.0 + frame] * 2


def test_export_takes_the_selection_settings_the_data_were_prepared_with(exported, tmp_path):
    prepared = tmp_path / "prepared"
    shutil.copytree(exported / "prepared", prepared)
    facts = yaml.safe_load((prepared / "dataset.yaml").read_text())
    facts["config"] |= {"min_gap_frames": 0, "feature_radius_quantile": 0.0}  # no diversity
    (prepared / "dataset.yaml").write_text(yaml.safe_dump(facts))
    main(
        ["export", "--prepared", str(prepared), "--analysed", str(exported / "analysed")]
        + ["--videos", str(exported / "videos"), "--labelled", "1", "--frames", "3"]
        + ["--round", str(tmp_path / "round_2")]
    )
    manifest = yaml.safe_load((tmp_path / "round_2" / "round.yaml").read_text())
    assert [e["frame"] for e in manifest["exported"]["p1_walk"]] == [37, 38]  # the neighbour too
    assert manifest["settings"]["min_gap_frames"] == 0


def test_a_chosen_frame_labelled_already_joins_the_round_without_export(exported, tmp_path):
    """Labels of a frame the round chooses (e.g. a later k-means rank, labelled before) are used
    as they are: only frames without labels are exported."""
    annotations = pd.read_csv(exported / "prepared" / "labels.csv")
    extra = pd.DataFrame(
        [dict(participant="p1", video="p1_walk", frame=37, bodypart=b) for b in BODYPARTS]
    ).assign(x=5.0, y=6.0)
    given = tmp_path / "labels.csv"
    pd.concat([annotations, extra]).to_csv(given, index=False)
    main(
        ["export", "--prepared", str(exported / "prepared"), "--analysed"]
        + [str(exported / "analysed"), "--videos", str(exported / "videos"), "--labelled", "1"]
        + ["--frames", "3", "--round", str(tmp_path / "round_2"), "--annotations", str(given)]
    )
    manifest = yaml.safe_load((tmp_path / "round_2" / "round.yaml").read_text())
    assert manifest["labelled_already"]["p1_walk"] == [37]
    exported_p1 = [e["frame"] for e in manifest["exported"]["p1_walk"]]
    assert len(exported_p1) == 1 and 37 not in exported_p1
    images = (tmp_path / "round_2" / "labelling" / "labeled-data" / "p1_walk").glob("*.png")
    assert [p.name for p in images] == [f"img{exported_p1[0]:02d}.png"]
    selection = pd.read_csv(tmp_path / "round_2" / "selection.csv")
    train = selection.query("video == 'p1_walk' and role == 'train'")["frame"].tolist()
    assert train[:2] == [20, 37] and len(train) == 3


def test_round_3_extends_round_2(labelled, exported, tmp_path, capsys):
    status, printed, merged = bring_back(labelled, exported, tmp_path, capsys)
    assert status == 0, printed.err
    main(
        ["export", "--prepared", str(exported / "prepared"), "--analysed"]
        + [str(exported / "analysed"), "--videos", str(exported / "videos"), "--labelled", "3"]
        + ["--frames", "4", "--round", str(tmp_path / "round_3"), "--annotations", str(merged)]
        + ["--selection", str(labelled / "selection.csv")]
    )
    before = pd.read_csv(labelled / "selection.csv").query("role == 'train'")
    after = pd.read_csv(tmp_path / "round_3" / "selection.csv").query("role == 'train'")
    for video in VIDEOS:
        frames = after[after["video"] == video]["frame"].tolist()
        assert frames[:3] == before[before["video"] == video]["frame"].tolist()  # nested
        assert len(frames) == 4
    manifest = yaml.safe_load((tmp_path / "round_3" / "round.yaml").read_text())
    assert all(len(rows) == 1 for rows in manifest["exported"].values())  # 1 new frame each
    assert manifest["round"] == 3  # the round before's number + 1, beside its selection.csv
