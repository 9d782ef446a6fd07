"""An active labelling round trained by the pipeline (src/train_round.py, dvc.yaml's round stage),
tried as a person runs it: on a tiny synthetic study in a private copy of the repository, export
round 2, label its frames in DeepLabCut's file (a script writes the generator's truth, as a person
saves napari-deeplabcut's), bring a bad folder back (refused, nothing changed), then the good one
with --train, and `dvc repro` trains round 2 and nothing else; a second `dvc repro` does nothing.
The round's MLflow run carries its tags, and the report draws both strategies on one picture.

The trust files of the development videos are written by the test (what src.analyze writes with
round 1's model; tests/analysis cover src.analyze), so the loop needs no video inference.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.data.dataset import load_dataset
from src.data.frames import label_frames
from src.errors import DataError
from src.evaluation.strategies import round_run_ids, strategy_table, write_strategies
from src.evaluation.tables import ReportData, paper_table
from src.label_round import main as label_round
from src.study.config import write_study
from src.train_round import round_facts, round_labels
from tests.conftest import (
    REPO,
    TINY_PIPELINE,
    copy_repository,
    python_env,
    ran_stages,
    run,
    tree_checksums,
)
from tests.pipeline.test_dvc_dependencies import covers, executed_files, load_stages

NAME = "synthetic_clinical"
PREPARED = f"data/prepared/{NAME}"
ROUND = f"data/labelling/{NAME}/round_2"
MERGED = "raw/annotations/round_2.csv"
STUDY = [o for o in TINY_PIPELINE if not o.startswith("pipeline.conditions")] + [
    "pipeline.conditions=[1,2]"  # k-means' round 1 (condition 1) and budget 2, active's round 2
]


# ----------------------------------------------------------------------------- fast


def test_the_round_stage_depends_on_the_code_it_runs(tmp_path):
    """With a round recorded, its stage (round@round_2) covers every file of src/ it runs."""
    (tmp_path / "src").symlink_to(REPO / "src")
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["pipeline"]["rounds"] = {"round_2": {"round": ROUND, "annotations": MERGED}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    stage = load_stages(tmp_path)["round@round_2"]
    assert stage["cmd"].endswith("--config-dir . --config-name params +round=round_2")
    files = executed_files(tmp_path, "src.train_round")
    assert "src/training/condition.py" in files
    assert not [f for f in files if not any(covers(d, f) for d in stage["deps"])]
    assert {f"{ROUND}/selection.csv", f"{ROUND}/round.yaml", f"{ROUND}/frames", MERGED} <= set(
        stage["deps"]
    )
    assert stage["outs"] == ["models/pipeline/rounds/round_2"]


def test_no_round_no_stage_and_no_strategies_picture(tmp_path):
    """The demo's params.yaml: no round stage, and the report writes no strategies files."""
    assert not [s for s in load_stages(REPO) if s.startswith("round")]
    cfg = OmegaConf.create({"pipeline": {"rounds": {}, "dir": str(tmp_path)}})
    assert round_run_ids(cfg) == []
    assert write_strategies(cfg, None, "0", None, tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_the_strategies_table_takes_round_1_from_kmeans():
    columns = ["labelled_frames", "mae_generalisation_px", "mae_generalisation_px_ci_low"]
    kmeans = pd.DataFrame([[1, 9.0, 8.0], [2, 7.0, 6.0], [6, 5.0, 4.0]], columns=columns)
    rounds = pd.DataFrame([[2, 6.0, 5.5], [6, 3.0, 2.0]], columns=columns)
    for runs in (kmeans, rounds):
        runs["mae_generalisation_px_ci_high"] = runs["mae_generalisation_px"] + 1
        runs["mae_test_pcutoff0.8_px"] = 1.0
    data = ReportData(kmeans, paper_table(kmeans, 0.8), pcutoff=0.8)
    table = strategy_table(data, rounds)
    assert table["strategy"].tolist() == ["kmeans"] * 3 + ["active"] * 3
    active = table[table["strategy"] == "active"].set_index("labelled_frames")
    assert active["mae_px"].to_dict() == {1: 9.0, 2: 6.0, 6: 3.0}
    assert active["ci_low"].to_dict() == {1: 8.0, 2: 5.5, 6: 2.0}
    assert active["ci_high"].to_dict() == {1: 10.0, 2: 7.0, 6: 4.0}


@pytest.mark.parametrize(
    "out, expected",
    [
        ("/tmp/elsewhere/round_2.csv", "outside the repository"),
        ("data/annotations/round_2.csv", "in a git-ignored folder, where dvc add cannot"),
    ],
)
def test_train_refuses_a_file_dvc_cannot_version_before_writing(tmp_path, capsys, out, expected):
    """--train checks where the round and the merged file go before anything is written."""
    round_dir = REPO / "data" / "labelling" / "nowhere" / "round_2"
    with pytest.raises(SystemExit) as stop:
        label_round(
            ["import", "--round", str(round_dir), "--annotations", str(tmp_path / "labels.csv")]
            + ["--out", str(out if out.startswith("/") else REPO / out), "--train"]
        )
    line = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and len(line.splitlines()) == 1, line
    assert line.startswith("error: ") and expected in line
    assert not (REPO / out).exists() and not Path(out).exists()


# ----------------------------------------------------------------------------- the loop


def write_trust(analysed: Path, video: str, n_frames: int, bodyparts: list[str]) -> None:
    """trust.h5 as src.analysis.trust writes it: x, y, likelihood, trust, flagged per point; the
    model least sure of the video's last frames."""
    trust = np.linspace(0.95, 0.2, n_frames)
    columns = pd.MultiIndex.from_product(
        [["DLC_model"], bodyparts, ["x", "y", "likelihood", "trust", "flagged"]],
        names=["scorer", "bodyparts", "coords"],
    )
    values = np.zeros((n_frames, len(columns)))
    for j in range(len(bodyparts)):
        values[:, j * 5 + 3] = trust
    (analysed / video).mkdir(parents=True)
    pd.DataFrame(values, columns=columns).to_hdf(
        analysed / video / "trust.h5", key="df_with_missing", format="table", mode="w"
    )


def label_as_a_person(repo: Path, truth: pd.DataFrame, bodyparts: list[str]) -> None:
    """CollectedData_me.h5 of every exported video, as napari-deeplabcut saves it."""
    manifest = yaml.safe_load((repo / ROUND / "round.yaml").read_text())
    for video, exported in manifest["exported"].items():
        rows = []
        for entry in exported:
            points = truth[(truth["video"] == video) & (truth["frame"] == entry["frame"])]
            points = points.set_index("bodypart").reindex(bodyparts)
            rows.append(points[["x", "y"]].to_numpy().ravel())
        columns = pd.MultiIndex.from_product(
            [["me"], bodyparts, ["x", "y"]], names=["scorer", "bodyparts", "coords"]
        )
        index = pd.MultiIndex.from_tuples([("labeled-data", video, e["image"]) for e in exported])
        folder = repo / ROUND / "labelling" / "labeled-data" / video
        pd.DataFrame(rows, index=index, columns=columns).to_hdf(
            folder / "CollectedData_me.h5", key="df_with_missing", mode="w"
        )


def import_round(repo: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "src.label_round", "import", "--round", ROUND]
        + ["--annotations", f"{PREPARED}/labels.csv", "--out", MERGED, "--train"],
        cwd=repo,
        env=python_env(),
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """The tiny study reproduced, round 2 exported, labelled, refused once, imported, trained."""
    repo = copy_repository(tmp_path_factory.mktemp("rounds") / "repo")
    write_study(STUDY, repo / "conf" / "study" / "current.yaml")
    run(repo, "python", "-m", "src.params", "--no-probe")
    study = run(repo, "dvc", "repro")
    raw = tree_checksums(repo / "data" / "synthetic" / "clinical")
    labels_before = (repo / PREPARED / "labels.csv").read_bytes()
    report_before = sorted(p.name for p in (repo / "reports").iterdir())

    facts = yaml.safe_load((repo / PREPARED / "dataset.yaml").read_text())
    bodyparts = list(facts["bodyparts"])
    selection = pd.read_csv(repo / PREPARED / "selection.csv")
    development = selection.loc[selection["set"] == "development", "video"].unique()
    for video in development:
        write_trust(repo / "data" / "analysis" / "round_1", video, 12, bodyparts)
    run(
        repo,
        *("python", "-m", "src.label_round", "export", "--prepared", PREPARED),
        *("--analysed", "data/analysis/round_1", "--videos", "data/synthetic/clinical/videos"),
        *("--labelled", "1", "--frames", "2", "--round", ROUND, "--scorer", "me"),
    )
    with initialize_config_dir(config_dir=str(repo / "conf"), version_base="1.3"):
        cfg = compose("config", [f"paths.data_dir={repo / 'data'}", "synthetic=tiny"])
    round_selection = pd.read_csv(repo / ROUND / "selection.csv")
    truth = label_frames(load_dataset(cfg.data), round_selection, 0.0, 0)

    # a bad folder first: other bodyparts in one video's file
    label_as_a_person(repo, truth, bodyparts)
    manifest = yaml.safe_load((repo / ROUND / "round.yaml").read_text())
    video = next(iter(manifest["exported"]))
    good = repo / ROUND / "labelling" / "labeled-data" / video / "CollectedData_me.h5"
    table = pd.read_hdf(good)
    study_file, params = (repo / "conf/study/current.yaml").read_bytes(), (repo / "params.yaml")
    params_before = params.read_bytes()
    table.columns = table.columns.set_levels(
        [f"{b}_other" for b in table.columns.levels[1]], level=1
    )
    table.to_hdf(good, key="df_with_missing", mode="w")
    refused = import_round(repo)
    unchanged = (
        (repo / "conf/study/current.yaml").read_bytes() == study_file
        and params.read_bytes() == params_before
        and not (repo / MERGED).exists()
    )

    label_as_a_person(repo, truth, bodyparts)
    imported = import_round(repo)
    assert imported.returncode == 0, imported.stderr
    trained = run(repo, "dvc", "repro")
    again = run(repo, "dvc", "repro")
    report = run(
        repo,
        *("python", "-m", "src.report", "--config-dir", ".", "--config-name", "params"),
        "report.sweep=pipeline",
    )
    return dict(
        repo=repo,
        study=study,
        raw=raw,
        labels_before=labels_before,
        report_before=report_before,
        refused=refused,
        unchanged=unchanged,
        imported=imported,
        trained=trained,
        again=again,
        report=report,
        truth=truth,
    )


@pytest.mark.slow
def test_a_bad_folder_is_refused_in_one_line_and_nothing_changes(loop):
    refused = loop["refused"]
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert lines[0].startswith("error: ") and "the export's bodyparts" in lines[0]
    assert loop["unchanged"]


@pytest.mark.slow
def test_import_versions_the_labels_and_records_the_round(loop):
    repo, out = loop["repo"], loop["imported"].stdout
    assert f"$ dvc add {MERGED}" in out and "stage round@round_2" in out
    assert (repo / f"{MERGED}.dvc").is_file()
    rounds = yaml.safe_load((repo / "params.yaml").read_text())["pipeline"]["rounds"]
    assert rounds == {"round_2": {"round": ROUND, "annotations": MERGED}}
    assert (repo / PREPARED / "labels.csv").read_bytes() == loop["labels_before"]
    assert tree_checksums(repo / "data" / "synthetic" / "clinical") == loop["raw"]


@pytest.mark.slow
def test_dvc_repro_trains_the_new_round_only_and_then_nothing(loop):
    assert "round@round_2" not in ran_stages(loop["study"])
    assert ran_stages(loop["trained"]) == {"round@round_2"}
    assert "training labelling round 2 (frame_selection=active)" in loop["trained"]
    assert ran_stages(loop["again"]) == set()


@pytest.mark.slow
def test_the_round_run_carries_its_round_strategy_and_frames(loop):
    repo = loop["repo"]
    record = yaml.safe_load((repo / "models/pipeline/rounds/round_2/run.yaml").read_text())
    client = MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    run_ = client.get_run(record["run_id"])
    manifest = yaml.safe_load((repo / ROUND / "round.yaml").read_text())
    exported = {(v, e["frame"]) for v, rows in manifest["exported"].items() for e in rows}
    tags = run_.data.tags
    assert tags["labelling_round"] == "2" and tags["frame_selection"] == "active"
    assert tags["labelled_frames"] == "2" and tags["frames_added"] == str(len(exported))
    added = pd.read_csv(client.download_artifacts(run_.info.run_id, "labelling/frames_added.csv"))
    assert set(zip(added["video"], added["frame"])) == exported
    assert run_.data.metrics["mae_generalisation_px"] > 0
    # trained on the round's frames and labels; judged on the study's test and generalisation frames
    prepared = repo / "models/pipeline/rounds/round_2/prepared" / NAME
    study = pd.read_csv(repo / PREPARED / "selection.csv")
    used = pd.read_csv(prepared / "selection.csv")
    fixed = ["video", "role", "frame", "image"]
    pd.testing.assert_frame_equal(
        used[used.role != "train"][fixed].reset_index(drop=True),
        study[study.role != "train"][fixed].reset_index(drop=True),
    )
    labels = pd.read_csv(prepared / "labels.csv")
    truth = loop["truth"]
    for video, frame in exported:
        row = used[(used["video"] == video) & (used["frame"] == frame)]
        assert (prepared / row["image"].iloc[0]).is_file()
        got = labels[(labels["video"] == video) & (labels["frame"] == frame)]
        want = truth[(truth["video"] == video) & (truth["frame"] == frame)]
        got, want = got.set_index("bodypart"), want.set_index("bodypart")
        np.testing.assert_allclose(got.loc[want.index, ["x", "y"]], want[["x", "y"]], atol=1e-3)


@pytest.mark.slow
def test_the_report_draws_both_strategies_on_one_picture(loop):
    repo = loop["repo"]
    assert not {"strategies.png", "strategies.csv"} & set(loop["report_before"])
    assert (repo / "reports" / "strategies.png").is_file()
    table = pd.read_csv(repo / "reports" / "strategies.csv")
    assert table.groupby("strategy")["labelled_frames"].apply(list).to_dict() == {
        "active": [1, 2],
        "kmeans": [1, 2],
    }
    record = yaml.safe_load((repo / "models/pipeline/rounds/round_2/run.yaml").read_text())
    client = MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")
    logged = client.get_run(record["run_id"]).data.metrics["mae_generalisation_px"]
    cell = table.set_index(["strategy", "labelled_frames"])["mae_px"]
    assert cell[("active", 2)] == pytest.approx(logged, rel=1e-5)
    assert cell[("active", 1)] == cell[("kmeans", 1)]
    results = pd.read_csv(repo / "reports" / "results.csv", index_col=0)
    assert cell[("kmeans", 2)] == pytest.approx(results.loc[2, "generalisation"], rel=1e-5)


def test_a_train_frame_without_labels_is_refused_naming_it(tmp_path):
    selection = pd.DataFrame(
        {"video": ["v1", "v1", "v1"], "role": ["train", "train", "test"], "frame": [3, 8, 5]}
    )
    labels = pd.DataFrame(
        {"video": ["v1"] * 3, "frame": [3, 8, 5], "bodypart": "head", "x": [1.0, None, 2.0]}
    ).assign(y=1.0)
    path = tmp_path / "round_2.csv"
    labels.to_csv(path, index=False)
    with pytest.raises(DataError, match=rf"^{path}: no labels of v1 frame 8, a train frame"):
        round_labels(path, selection)
    labels.fillna(4.0).to_csv(path, index=False)
    assert round_labels(path, selection)["frame"].tolist() == [3, 8, 5]
    with pytest.raises(DataError, match="missing, the round's merged labels"):
        round_labels(tmp_path / "none.csv", selection)


def test_the_round_folder_says_its_budget():
    """dataset.yaml of the round's prepared folder: the train frames its selection holds."""
    facts = {
        "frames_per_video": {"v1": {"train": {"asked": 2, "used": 2}, "test": {"used": 1}}},
        "min_train_frames_per_development_video": 2,
        "config": {"max_train_frames_per_video": 2},
    }
    selection = pd.DataFrame({"video": ["v1"] * 4, "role": ["train"] * 3 + ["test"]})
    facts = round_facts(facts, selection)
    assert facts["frames_per_video"]["v1"]["train"] == {"asked": 2, "used": 3}
    assert facts["min_train_frames_per_development_video"] == 3
    assert facts["config"]["max_train_frames_per_video"] == 3
