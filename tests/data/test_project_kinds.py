"""Every kind of labelled project a user brings loads correctly: small fixtures written here.

DeepLabCut single-animal projects as DeepLabCut 2.x and 3.x write them (one or many videos; one
path column with Windows ``\\`` or DLC 2.2+'s 3-level index; CSV only, H5 only; folder names with
spaces; several videos per participant; frames of different sizes; unlabelled points), multi-animal
files (refused), and Lightning Pose data sets (one CollectedData.csv, session folders or flat).
Each fixture is loaded through :func:`src.data.dataset.load_dataset`; the DeepLabCut 2.x Windows
project and the Lightning Pose data set also go through the real ``python -m src.prepare``. Raw
fixture files are byte-identical after every run.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf

from src.data.collected_data import read_collected_data
from src.data.dataset import load_dataset
from src.data.prepared import largest_image_size
from src.errors import DataError
from tests.conftest import REACHING, REPO, tree_checksums

SCORER = "Me"
BODYPARTS = ["head", "left_wrist", "right_wrist"]
FRAMES = [3, 10, 17, 24]  # img003.png ...; the first is unlabelled in every video (all NaN)
SESSIONS = ["Patient 01 session 1", "Patient 01 session 2", "Patient 02 session 1"]
SESSIONS += ["Patient 03 session 1"]
PATTERN = r"^(?P<participant>Patient \d+) session (?P<session>\d+)$"
SIZES = {0: (64, 48), 1: (80, 60)}  # (width, height): videos alternate between two frame sizes


def label(video: int, frame: int, point: int) -> tuple[float, float]:
    """The fixture's label of a point: NaN for every point of the first frame and for one point of
    the third; otherwise a number that tells video, frame and point apart."""
    if frame == FRAMES[0] or (frame == FRAMES[2] and point == 1):
        return math.nan, math.nan
    return 5.25 + 10 * point + frame / 4 + video, 4.5 + 8 * point + frame / 8 + video


def write_png(path: Path, size: tuple[int, int], seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    cv2.imwrite(str(path), pixels)


def wide_table(index: list, video: int, frames=FRAMES) -> pd.DataFrame:
    """The fixture's labels of one video, wide, as DeepLabCut holds them."""
    columns = pd.MultiIndex.from_product(
        [[SCORER], BODYPARTS, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
    )
    values = [[c for p in range(len(BODYPARTS)) for c in label(video, f, p)] for f in frames]
    index = pd.MultiIndex.from_tuples(index) if isinstance(index[0], tuple) else pd.Index(index)
    return pd.DataFrame(values, index=index, columns=columns)


def csv_text(table: pd.DataFrame) -> str:
    """A wide table as DeepLabCut's CSV (what ``DataFrame.to_csv`` writes, NaN as empty cells)."""
    n_index = table.index.nlevels
    lines = [
        ",".join(
            [name] + [""] * (n_index - 1) + [str(c) for c in table.columns.get_level_values(i)]
        )
        for i, name in enumerate(["scorer", "bodyparts", "coords"])
    ]
    for index, row in table.iterrows():
        cells = list(index) if isinstance(index, tuple) else [index]
        lines.append(",".join(cells + ["" if math.isnan(v) else repr(v) for v in row]))
    return "\n".join(lines) + "\n"


def write_dlc_project(root: Path, videos: list[str], layout: str, files=("csv",)) -> Path:
    """A single-animal DeepLabCut project: config.yaml, labeled-data/<video>/img<NNN>.png and
    CollectedData_Me.<csv|h5>. ``layout``: windows | posix (one path column, DLC < 2.2) or
    multiindex (3 index columns, DLC >= 2.2)."""
    root.mkdir(parents=True)
    config = dict(
        Task="Study",
        scorer=SCORER,
        date="Jan1",
        project_path="C:\\Users\\me\\Study-Me-2020-01-01",
        video_sets={f"C:\\Users\\me\\videos\\{v}.avi": {"crop": "0, 64, 0, 48"} for v in videos},
        bodyparts=BODYPARTS,
        skeleton=[["left_wrist", "right_wrist"]],
    )
    (root / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    for v, video in enumerate(videos):
        folder = root / "labeled-data" / video
        names = [f"img{f:03d}.png" for f in FRAMES]
        for f, name in zip(FRAMES, names):
            write_png(folder / name, SIZES[v % 2], seed=1000 * v + f)
        index = {
            "windows": [f"labeled-data\\{video}\\{n}" for n in names],
            "posix": [f"labeled-data/{video}/{n}" for n in names],
            "multiindex": [("labeled-data", video, n) for n in names],
        }[layout]
        table = wide_table(index, v)
        if "csv" in files:
            (folder / f"CollectedData_{SCORER}.csv").write_text(csv_text(table), encoding="utf-8")
        if "h5" in files:
            table.to_hdf(folder / f"CollectedData_{SCORER}.h5", key="df_with_missing", mode="w")
    return root


def write_lightning_pose(root: Path, sessions: list[str], flat: bool = False) -> Path:
    """A Lightning Pose data folder: CollectedData.csv (one path column) and the images it names,
    under labeled-data/<session>/ or, ``flat``, all in labeled-data/ as <session>_img<NNNN>.png."""
    tables = []
    for v, session in enumerate(sessions):
        names = [
            f"labeled-data/{session}_img{f:04d}.png"
            if flat
            else f"labeled-data/{session}/img{f:04d}.png"
            for f in FRAMES
        ]
        for f, name in zip(FRAMES, names):
            write_png(root / name, SIZES[0], seed=1000 * v + f)
        tables.append(wide_table(names, v))
    table = pd.concat(tables)
    (root / "CollectedData.csv").write_text(csv_text(table), encoding="utf-8")
    return root


def data_config(**data) -> OmegaConf:
    """A ``data:`` section as conf/data/<kind>.yaml composes it, with ``data`` overriding."""
    base = OmegaConf.load(REPO / "conf" / "data" / f"{data['kind']}.yaml")
    return OmegaConf.merge(base, OmegaConf.create(data))


def expected_labels(videos: list[str]) -> pd.DataFrame:
    """The fixture's labels, long: video, frame, bodypart, x, y."""
    rows = [
        (video, f, b, *label(v, f, p))
        for v, video in enumerate(videos)
        for f in FRAMES
        for p, b in enumerate(BODYPARTS)
    ]
    return pd.DataFrame(rows, columns=["video", "frame", "bodypart", "x", "y"])


def assert_labels(annotations: pd.DataFrame, videos: list[str]) -> None:
    """The loaded annotations are the fixture's labels, NaN for NaN, one row per point."""
    got = annotations[["video", "frame", "bodypart", "x", "y"]]
    got = got.sort_values(["video", "frame", "bodypart"]).reset_index(drop=True)
    want = expected_labels(videos).sort_values(["video", "frame", "bodypart"])
    pd.testing.assert_frame_equal(got, want.reset_index(drop=True), check_dtype=False)


def run_prepare(*overrides: str) -> subprocess.CompletedProcess:
    """``python -m src.prepare`` as a user runs it (values with spaces or regex characters quoted
    for Hydra, as docs/data.md says)."""
    quoted = [
        f"{k}='{v}'" if re.search(r"[^\w./:-]", v) else f"{k}={v}"
        for k, _, v in (o.partition("=") for o in overrides)
    ]
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run(
        [sys.executable, "-m", "src.prepare", *quoted],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- DeepLabCut 2.x files


@pytest.fixture
def windows_project(tmp_path) -> Path:
    """DLC 2.x from Windows: one path column with \\, CSV only, folder names with spaces, 3
    participants with 4 videos, frames of two sizes, unlabelled points and frames."""
    return write_dlc_project(tmp_path / "Study-Me-2020-01-01", SESSIONS, "windows")


def test_dlc2x_windows_project_loads(windows_project):
    before = tree_checksums(windows_project)
    dataset = load_dataset(
        data_config(
            kind="dlc_project", root=str(windows_project), participants={"pattern": PATTERN}
        )
    )
    assert tree_checksums(windows_project) == before
    assert dataset.kind == "dlc_project" and dataset.has_labelled_images
    assert dataset.bodyparts == BODYPARTS and dataset.scorer == SCORER
    assert_labels(dataset.annotations, SESSIONS)
    videos = dataset.videos.set_index("video")
    assert videos.loc[SESSIONS, "participant"].tolist() == [
        "Patient 01",
        "Patient 01",
        "Patient 02",
        "Patient 03",
    ]
    assert videos.loc[SESSIONS, "session"].tolist() == ["1", "2", "1", "1"]
    assert videos["path"].isna().all()  # no video files: the labelled frames are used as they are
    # image paths are the real files, with / whatever the CSV used
    images = dataset.annotations.drop_duplicates("image")["image"]
    assert images.iloc[0] == "labeled-data/Patient 01 session 1/img003.png"
    assert all((windows_project / i).is_file() for i in images)


def test_dlc2x_windows_project_prepares_end_to_end(windows_project, tmp_path):
    before = tree_checksums(windows_project)
    out = tmp_path / "out"
    result = run_prepare(
        "data=dlc_project",
        f"data.root={windows_project}",
        "data.name=windows",
        f"data.participants.pattern={PATTERN}",
        f"paths.data_dir={out}",
        "frames.max_train_frames_per_video=4",
    )
    assert result.returncode == 0, result.stderr
    assert tree_checksums(windows_project) == before
    prepared = out / "prepared" / "windows"
    check_prepared(prepared, windows_project, SESSIONS, "dlc_project")
    # frames of both sizes reach the prepared folder; training must allow for the largest
    assert largest_image_size(
        prepared / i for i in pd.read_csv(prepared / "selection.csv")["image"]
    ) == (
        80,
        60,
    )


def check_prepared(prepared: Path, raw: Path, videos: list[str], kind: str) -> None:
    """What a prepared folder of a fixture must hold: every video, no unlabelled frame, the labels
    with their NaN, the images copied unchanged, DeepLabCut's label files; NaN ignored by MAE."""
    facts = yaml.safe_load((prepared / "dataset.yaml").read_text(encoding="utf-8"))
    assert facts["kind"] == kind and facts["bodyparts"] == BODYPARTS and facts["scorer"] == SCORER
    selection = pd.read_csv(prepared / "selection.csv")
    assert sorted(selection["video"].unique()) == sorted(videos)
    assert FRAMES[0] not in set(selection["frame"])  # all-NaN frames are not labelled frames
    labels = pd.read_csv(prepared / "labels.csv")
    want = expected_labels(videos).merge(selection[["video", "frame"]])
    got = labels.merge(selection[["video", "frame"]])[want.columns]
    pd.testing.assert_frame_equal(
        got.sort_values(["video", "frame", "bodypart"]).reset_index(drop=True),
        want.sort_values(["video", "frame", "bodypart"]).reset_index(drop=True),
        check_dtype=False,
        atol=1e-3,
    )
    assert labels["x"].isna().any(), "the unlabelled point of a selected frame was lost"
    for image in selection[
        "image"
    ]:  # copied byte for byte, same folder and name as in the raw data
        assert sha256(prepared / image) == sha256(raw / image), image
    for video in videos:
        collected = read_collected_data(
            prepared / "labeled-data" / video / f"CollectedData_{SCORER}.h5"
        )
        assert collected.shape[1] == 2 * len(BODYPARTS)

    from src.evaluation.metrics import mae_metrics, prediction_table

    # predictions 3 px right and 4 px down of every label: 5 px error for labelled points only
    frames = selection.drop_duplicates(["video", "frame"]).reset_index(drop=True)
    frames["set"] = frames["role"]
    by_point = labels.set_index(["video", "frame", "bodypart"])
    poses = np.array(
        [
            [
                [*(by_point.loc[(r.video, r.frame, b), ["x", "y"]].fillna(0) + [3, 4]), 1.0]
                for b in BODYPARTS
            ]
            for r in frames.itertuples()
        ]
    )
    predictions = prediction_table(frames, labels, poses, BODYPARTS)
    metrics = mae_metrics(predictions, [0.8], None)
    labelled = labels.merge(frames[["video", "frame", "set"]]).dropna(subset=["x"])
    for set_name, rows in labelled.groupby("set"):
        assert metrics[f"n_{set_name}_points"] == len(rows)
        assert metrics[f"mae_{set_name}_px"] == pytest.approx(5.0)


@pytest.mark.parametrize(
    "layout, files",
    [
        ("windows", ("csv",)),
        ("posix", ("csv",)),
        ("multiindex", ("csv",)),
        ("windows", ("h5",)),
        ("multiindex", ("h5",)),
        ("multiindex", ("h5", "csv")),
    ],
    ids=["windows-csv", "posix-csv", "dlc22-csv", "windows-h5-only", "dlc22-h5-only", "both"],
)
def test_one_video_project_in_every_dlc2x_layout(layout, files, tmp_path):
    """The same labels, whatever layout and file type DeepLabCut wrote them in; the first frame
    of each file has no labelled point (a CSV row pandas would take for the index's name)."""
    project = write_dlc_project(tmp_path / "One-Me-2021-02-02", ["mouse1"], layout, files)
    before = tree_checksums(project)
    dataset = load_dataset(data_config(kind="dlc_project", root=str(project)))
    assert tree_checksums(project) == before
    assert_labels(dataset.annotations, ["mouse1"])
    assert dataset.videos[["participant", "video"]].values.tolist() == [["mouse1", "mouse1"]]
    assert dataset.annotations["frame"].nunique() == len(FRAMES)


def test_participants_table_with_sessions(windows_project, tmp_path):
    table = tmp_path / "participants.csv"
    table.write_text(
        "video,participant,session\n"
        + "".join(f"{v},child{i // 2},visit{i % 2}\n" for i, v in enumerate(SESSIONS)),
        encoding="utf-8",
    )
    dataset = load_dataset(
        data_config(
            kind="dlc_project", root=str(windows_project), participants={"table": str(table)}
        )
    )
    videos = dataset.videos.set_index("video").loc[SESSIONS]
    assert videos["participant"].tolist() == ["child0", "child0", "child1", "child1"]
    assert videos["session"].tolist() == ["visit0", "visit1", "visit0", "visit1"]
    per_participant = dataset.annotations.groupby("participant")["video"].nunique()
    assert per_participant.to_dict() == {"child0": 2, "child1": 2}


def test_participants_table_listing_a_video_twice_is_refused(windows_project, tmp_path):
    table = tmp_path / "participants.csv"
    rows = [f"{v},P{i}\n" for i, v in enumerate(SESSIONS)] + [f"{SESSIONS[1]},P9\n"]
    table.write_text("video,participant\n" + "".join(rows), encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_dataset(
            data_config(
                kind="dlc_project", root=str(windows_project), participants={"table": str(table)}
            )
        )
    message = str(error.value)
    assert str(table) in message and repr(SESSIONS[1]) in message and "lines [3, 6]" in message
    assert "keep one row per video" in message and "\n" not in message


def test_scorer_in_header_differs_from_config(windows_project):
    csv = windows_project / "labeled-data" / SESSIONS[0] / f"CollectedData_{SCORER}.csv"
    csv.write_text(csv.read_text().replace(f",{SCORER}", ",Someone"), encoding="utf-8")
    with pytest.raises(
        DataError,
        match=r"labelled by scorer\(s\) \['Someone'\] in its header but its name says 'Me'",
    ):
        load_dataset(data_config(kind="dlc_project", root=str(windows_project)))


def test_a_coordinate_that_is_not_a_number_is_refused(tmp_path):
    project = write_dlc_project(tmp_path / "Typo-Me-2021-01-01", ["mouse1"], "windows")
    csv = project / "labeled-data" / "mouse1" / f"CollectedData_{SCORER}.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    cells = lines[5].split(",")
    cells[3] = "12.5px"  # left_wrist x of img010.png (line 6 of the file)
    lines[5] = ",".join(cells)
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as error:
        load_dataset(data_config(kind="dlc_project", root=str(project)))
    assert str(error.value).endswith(
        f"CollectedData_{SCORER}.csv: line 6 holds '12.5px' where a coordinate "
        f"({SCORER} left_wrist x) belongs; correct it (an empty cell = not labelled) in "
        "DeepLabCut's labelling GUI, or restore the file."
    )


def test_two_images_with_one_frame_number_are_refused(tmp_path):
    project = write_dlc_project(tmp_path / "Clash-Me-2021-01-01", ["mouse1"], "posix")
    folder = project / "labeled-data" / "mouse1"
    (folder / "img010.png").rename(folder / "frame10.png")
    csv = folder / f"CollectedData_{SCORER}.csv"
    csv.write_text(csv.read_text().replace("img010.png", "frame10.png"), encoding="utf-8")
    (folder / "img017.png").rename(folder / "img010.png")
    csv.write_text(csv.read_text().replace("img017.png", "img010.png"), encoding="utf-8")
    with pytest.raises(DataError, match=r"have the same frame number 10; give each frame"):
        load_dataset(data_config(kind="dlc_project", root=str(project)))


# ----------------------------------------------------------------------------- multi-animal


def test_multi_animal_config_is_refused(windows_project):
    config = yaml.safe_load((windows_project / "config.yaml").read_text())
    (windows_project / "config.yaml").write_text(
        yaml.safe_dump(config | {"multianimalproject": True})
    )
    with pytest.raises(DataError) as error:
        load_dataset(data_config(kind="dlc_project", root=str(windows_project)))
    assert "multi-animal project (multianimalproject: true)" in str(error.value)
    assert "only single-animal projects are supported" in str(error.value)


@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_multi_animal_file_is_refused(suffix, tmp_path):
    """A single-animal config whose labels have DLC's 4-level multi-animal header (individuals)."""
    project = write_dlc_project(tmp_path / "Ma-Me-2022-01-01", ["mouse1"], "multiindex", ())
    folder = project / "labeled-data" / "mouse1"
    columns = pd.MultiIndex.from_product(
        [[SCORER], ["mouse_a", "mouse_b"], BODYPARTS, ["x", "y"]],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    index = pd.MultiIndex.from_tuples(
        [("labeled-data", "mouse1", f"img{f:03d}.png") for f in FRAMES]
    )
    table = pd.DataFrame(np.full((len(FRAMES), len(columns)), 10.0), index=index, columns=columns)
    path = folder / f"CollectedData_{SCORER}{suffix}"
    if suffix == ".h5":
        table.to_hdf(path, key="df_with_missing", mode="w")
    else:
        table.to_csv(path)
    with pytest.raises(DataError) as error:
        load_dataset(data_config(kind="dlc_project", root=str(project)))
    message = str(error.value)
    assert f"CollectedData_{SCORER}{suffix} is a multi-animal file" in message
    assert "only single-animal data is supported" in message and "\n" not in message


# ----------------------------------------------------------------------------- Lightning Pose


@pytest.fixture
def lp_data(tmp_path) -> Path:
    return write_lightning_pose(
        tmp_path / "lp data", ["mouseA_day1", "mouseA_day2", "mouseB_day1", "mouseC_day1"]
    )


LP_SESSIONS = ["mouseA_day1", "mouseA_day2", "mouseB_day1", "mouseC_day1"]
LP_PATTERN = r"^(?P<participant>[^_]+)_(?P<session>.+)$"


def lp_config_file(path: Path, **data) -> Path:
    """A Lightning Pose config (scripts/configs/config_default.yaml's data: keys)."""
    content = {
        "data": {
            "image_orig_dims": {"height": 48, "width": 64},
            "image_resize_dims": {"height": 64, "width": 64},
            "data_dir": "/home/someone/lp data",
            "video_dir": "videos",
            "csv_file": "CollectedData.csv",
            "downsample_factor": 2,
            "num_keypoints": len(BODYPARTS),
            "keypoint_names": BODYPARTS,
        }
        | data,
        "training": {"train_batch_size": 16},
    }
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def test_lightning_pose_data_set_loads(lp_data, tmp_path):
    before = tree_checksums(lp_data)
    config = lp_config_file(tmp_path / "config_mouse.yaml")
    dataset = load_dataset(
        data_config(
            kind="lightning_pose",
            root=str(lp_data),
            config=str(config),
            participants={"pattern": LP_PATTERN},
        )
    )
    assert tree_checksums(lp_data) == before
    assert dataset.kind == "lightning_pose" and dataset.has_labelled_images
    assert dataset.bodyparts == BODYPARTS and dataset.scorer == SCORER
    assert_labels(dataset.annotations, LP_SESSIONS)  # the all-NaN first CSV row included
    videos = dataset.videos.set_index("video").loc[LP_SESSIONS]
    assert videos["participant"].tolist() == ["mouseA", "mouseA", "mouseB", "mouseC"]
    assert videos["session"].tolist() == ["day1", "day2", "day1", "day1"]
    assert dataset.annotations["image"].iloc[0] == "labeled-data/mouseA_day1/img0003.png"


def test_lightning_pose_without_config_takes_the_csv_keypoints(lp_data):
    dataset = load_dataset(data_config(kind="lightning_pose", root=str(lp_data)))
    assert dataset.bodyparts == BODYPARTS
    # the default participant pattern ^(?P<participant>[^_]+): one participant per mouse
    assert dataset.videos.groupby("participant").size().to_dict() == {
        "mouseA": 2,
        "mouseB": 1,
        "mouseC": 1,
    }


def test_lightning_pose_keypoints_differing_from_its_config(lp_data, tmp_path):
    config = lp_config_file(tmp_path / "lp.yaml", keypoint_names=["head", "left_wrist", "tail"])
    with pytest.raises(DataError) as error:
        load_dataset(data_config(kind="lightning_pose", root=str(lp_data), config=str(config)))
    message = str(error.value)
    assert "CollectedData.csv has bodyparts that differ from the keypoint names" in message
    assert "['tail']" in message and "['right_wrist']" in message


def test_flat_lightning_pose_folder_is_one_video_or_grouped_by_pattern(tmp_path):
    root = write_lightning_pose(tmp_path / "flat", ["mouseA", "mouseB"], flat=True)
    csv_before = sha256(root / "CollectedData.csv")
    with pytest.raises(DataError, match=r"images .* of video 'labeled-data' have the same frame"):
        load_dataset(data_config(kind="lightning_pose", root=str(root)))  # both mice in one video
    dataset = load_dataset(
        data_config(
            kind="lightning_pose", root=str(root), video_pattern=r"^labeled-data/(?P<video>[^_/]+)_"
        )
    )
    assert_labels(dataset.annotations, ["mouseA", "mouseB"])
    assert sorted(dataset.videos["video"]) == ["mouseA", "mouseB"]
    one = write_lightning_pose(tmp_path / "flat one", ["mouseA"], flat=True)
    assert load_dataset(data_config(kind="lightning_pose", root=str(one))).videos[
        "video"
    ].tolist() == ["labeled-data"]
    assert sha256(root / "CollectedData.csv") == csv_before


def test_lightning_pose_config_and_video_pattern_mistakes(lp_data, tmp_path):
    def load(**data):
        with pytest.raises(DataError) as error:
            load_dataset(data_config(kind="lightning_pose", root=str(lp_data), **data))
        assert "\n" not in str(error.value)
        return str(error.value)

    missing = tmp_path / "nowhere.yaml"
    assert f"data.config={missing} does not exist" in load(config=str(missing))
    not_lp = tmp_path / "other.yaml"
    not_lp.write_text("model:\n  backbone: resnet50\n", encoding="utf-8")
    assert "has no `data:` section; it is not a Lightning Pose config" in load(config=str(not_lp))
    multiview = lp_config_file(tmp_path / "mv.yaml", csv_file=["top.csv", "bottom.csv"])
    assert "is a multi-view config (data.csv_file is a list)" in load(config=str(multiview))
    assert "has no (?P<video>...) group" in load(video_pattern="^labeled-data/(.+)/")
    message = load(video_pattern="^labeled-data/(?P<video>mouseA_[^/]+)/")
    assert "image labeled-data/mouseB_day1/img0003.png" in message
    assert "does not match data.video_pattern" in message
    assert "does not exist; set data.root" in load(csv_file="Labels.csv")


def test_lightning_pose_data_set_prepares_end_to_end(lp_data, tmp_path):
    before = tree_checksums(lp_data)
    config = lp_config_file(tmp_path / "config_mouse.yaml")
    out = tmp_path / "out"
    result = run_prepare(
        "data=lightning_pose",
        f"data.root={lp_data}",
        f"data.config={config}",
        "data.name=lp",
        f"data.participants.pattern={LP_PATTERN}",
        f"paths.data_dir={out}",
        "frames.max_train_frames_per_video=4",
    )
    assert tree_checksums(lp_data) == before
    assert result.returncode == 0, result.stderr
    check_prepared(out / "prepared" / "lp", lp_data, LP_SESSIONS, "lightning_pose")


# ----------------------------------------------------------------------------- the wrong kind


def test_lightning_pose_folder_given_as_a_dlc_project(lp_data):
    with pytest.raises(DataError) as error:
        load_dataset(data_config(kind="dlc_project", root=str(lp_data)))
    message = str(error.value)
    assert "this looks like a Lightning Pose data set" in message
    assert f"load it with `data=lightning_pose 'data.root={lp_data}'`" in message  # quoted: a space


def test_real_project_rearranged_as_lightning_pose_gives_the_same_labels(tmp_path):
    """shared/fixtures/dlc-reaching as a Lightning Pose data set: DeepLabCut's CSV (its rows name
    labeled-data/reachingvideo1/img<N>.png) as the top-level CollectedData.csv."""
    lp = tmp_path / "reaching lp"
    shutil.copytree(REACHING / "labeled-data", lp / "labeled-data")
    for path in (lp / "labeled-data" / "reachingvideo1").glob("CollectedData_*"):
        path.unlink()
    shutil.copyfile(
        REACHING / "labeled-data/reachingvideo1/CollectedData_Mackenzie.csv",
        lp / "CollectedData.csv",
    )
    before = tree_checksums(lp)
    from_lp = load_dataset(data_config(kind="lightning_pose", root=str(lp)))
    from_dlc = load_dataset(data_config(kind="dlc_project", root=str(REACHING)))
    assert tree_checksums(lp) == before
    assert from_lp.kind == "lightning_pose" and from_lp.scorer == "Mackenzie"
    assert from_lp.bodyparts == from_dlc.bodyparts
    pd.testing.assert_frame_equal(from_lp.annotations, from_dlc.annotations)
    # its frames come in two sizes (832 x 747 and 640 x 470): training must use the largest
    images = from_lp.annotations.drop_duplicates("image")["image"]
    assert largest_image_size(lp / i for i in images) == (832, 747)


def test_dlc_project_given_as_lightning_pose(windows_project):
    with pytest.raises(
        DataError,
        match=r"this looks like a DeepLabCut project; load it with `data=dlc_project data.root=/",
    ):
        load_dataset(data_config(kind="lightning_pose", root=str(windows_project)))
