"""Participant-level cross-validation (split=kfold): the folds, their checks, the prepared folds, how
src.params, the Hydra sweep, MLflow and the report read them, and (slow) the DVC pipeline of two folds,
then a third, on the tiny synthetic cohort."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.data.dataset import load_dataset
from src.data.frames import select_frames
from src.data.split import DEVELOPMENT, GENERALISATION, assign_folds, split_fold
from src.errors import ConfigError, DataError
from src.evaluation.report import _measured, dataset_facts, pipeline_records, pipeline_runs
from src.params import composed
from src.study.check import check_study
from src.study.plan import _CACHE
from src.tracking.queries import collect_runs
from tests.conftest import (
    REPO,
    compose_config,
    empty_mlflow_store,
    python_env,
    tiny_overrides,
    tiny_project,
)


def _videos(n_participants: int, sessions: int = 3) -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(participant=f"P{p:02d}", video=f"P{p:02d}_S{s}", session=f"S{s}")
            for p in range(1, n_participants + 1)
            for s in range(1, sessions + 1)
        ]
    )


def _held_out(videos: pd.DataFrame, folds: int, seed: int) -> list[set[str]]:
    """The participants each fold holds out for generalisation."""
    held = []
    for fold in range(1, folds + 1):
        split = split_fold(videos, folds, fold, seed)
        held.append(set(split.loc[split["set"] == GENERALISATION, "participant"]))
    return held


@pytest.mark.parametrize("n_participants, folds", [(10, 5), (11, 5), (7, 7), (33, 5), (3, 2)])
def test_every_participant_is_held_out_by_exactly_one_fold(n_participants, folds):
    videos = _videos(n_participants)
    held = _held_out(videos, folds, seed=42)
    everyone = set(videos["participant"])
    assert sorted(p for fold in held for p in fold) == sorted(everyone)  # once each, nobody twice
    assert all(fold for fold in held)  # every fold holds someone out
    sizes = [len(fold) for fold in held]
    assert max(sizes) - min(sizes) <= 1  # folds of about equal size
    for fold in range(1, folds + 1):
        split = split_fold(videos, folds, fold, seed=42)
        development = set(split.loc[split["set"] == DEVELOPMENT, "participant"])
        assert development == everyone - held[fold - 1]  # disjoint, and together everyone
        assert (split.groupby("participant")["set"].nunique() == 1).all()  # whole participants
        assert len(split) == len(videos)  # every video in one set


def test_folds_are_the_same_for_a_seed_and_change_with_it():
    videos = _videos(10)
    first = assign_folds(videos, 5, seed=42)
    pd.testing.assert_frame_equal(first, assign_folds(videos.sample(frac=1, random_state=1), 5, 42))
    others = [assign_folds(videos, 5, seed) for seed in (43, 44, 45)]
    assert any(not other["fold"].equals(first["fold"]) for other in others)
    assert _held_out(videos, 5, 42) == _held_out(videos, 5, 42)


@pytest.mark.parametrize(
    "overrides, error, words, fixed",
    [
        (["split.folds=4"], DataError, "split.folds=4", ["split.folds=3"]),
        (["split.folds=1"], ConfigError, "split.folds=1", ["split.folds=2"]),
        (["split.fold=4"], DataError, "split.fold=4", ["split.fold=1"]),
        (["split.fold=0"], ConfigError, "split.fold=0", ["split.fold=1"]),
        (["pipeline.folds=[1,4]"], DataError, "pipeline.folds=[1, 4]", ["pipeline.folds=auto"]),
        (["pipeline.folds=[]"], DataError, "pipeline.folds=[]", ["pipeline.folds=auto"]),
    ],
)
def test_bad_cross_validation_settings_stop_the_study_check_in_one_line(
    tmp_path, overrides, error, words, fixed
):
    """The tiny cohort has 3 participants; the check fails before anything is prepared or trained,
    with one line naming the key, and the fix it names works."""
    _CACHE.clear()
    base = ["split=kfold", "split.folds=3", "frames.max_train_frames_per_video=4"]
    with pytest.raises(error) as raised:
        check_study(compose_config(tmp_path, *base, *overrides), say=lambda line: None)
    message = str(raised.value)
    assert words in message and "\n" not in message, message
    _CACHE.clear()
    check_study(compose_config(tmp_path, *base, *overrides, *fixed), say=lambda line: None)


def test_a_run_of_a_fold_that_does_not_exist_stops_before_training(tmp_path):
    cfg = compose_config(tmp_path, "split=kfold", "split.folds=3", "split.fold=4")
    with pytest.raises(DataError, match=r"^split.fold=4 is not a fold of split.folds=3: choose"):
        check_study(cfg, cheap=True)  # what src.train checks first


def test_folds_without_a_cross_validation_are_refused():
    with pytest.raises(
        DataError, match=r"pipeline.folds=\[1\] needs a cross-validation.*split=kfold"
    ):
        composed(["pipeline.folds=[1]"])


def test_params_resolves_the_folds_and_the_dvc_cells():
    single = composed(["pipeline.conditions=[0,2]"])["pipeline"]
    assert single["folds"] == []
    assert single["cells"] == {  # the single split's stage names and folders as before: train@2
        "0": {"overrides": "labelled_frames=0", "dir": "frames_0"},
        "2": {"overrides": "labelled_frames=2", "dir": "frames_2"},
    }
    kfold = composed(["split=kfold", "split.folds=3", "pipeline.conditions=[0,2]"])["pipeline"]
    assert kfold["folds"] == [1, 2, 3]
    assert list(kfold["cells"]) == [f"fold{k}-{n}" for k in (1, 2, 3) for n in (0, 2)]
    assert kfold["cells"]["fold3-2"] == {
        "overrides": "labelled_frames=2 split.fold=3",
        "dir": "fold_3/frames_2",
    }
    some = composed(["split=kfold", "pipeline.folds=[2,1]", "pipeline.conditions=[0]"])
    assert some["pipeline"]["folds"] == [1, 2]


def test_the_frames_sweep_crosses_conditions_and_folds():
    import src.study.plan  # noqa: F401  (the resolvers, as src.train registers them)

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=["+sweep=frames", "split=kfold", "pipeline.conditions=[0,2]"],
            return_hydra_config=True,
        )
        single = compose(
            config_name="config",
            overrides=["+sweep=frames", "pipeline.conditions=[0,2]"],
            return_hydra_config=True,
        )
    swept = OmegaConf.to_container(cfg.hydra.sweeper.params, resolve=True)
    assert swept == {"split.fold": "1,2,3,4,5", "labelled_frames": "0,2"}
    assert OmegaConf.to_container(single.hydra.sweeper.params, resolve=True) == {
        "labelled_frames": "0,2"
    }


def test_prepared_folds_share_each_videos_selection(tmp_path):
    """prepare writes every fold; sharing features and rankings between folds gives each fold
    exactly the frames a fold prepared alone gets, and a video keeps its frames in every fold where
    it is in the same set."""
    cfg = tiny_project(tmp_path, "split=kfold", "split.folds=3")
    root = tmp_path / "data" / "prepared" / cfg.data.name
    assert sorted(p.name for p in root.iterdir()) == ["fold_1", "fold_2", "fold_3", "folds.csv"]
    folds = pd.read_csv(root / "folds.csv")
    assert folds.groupby("participant")["fold"].nunique().eq(1).all()
    assert sorted(folds["fold"].unique()) == [1, 2, 3]
    dataset = load_dataset(cfg.data)
    selections = {}
    for fold in (1, 2, 3):
        selection = pd.read_csv(root / f"fold_{fold}" / "selection.csv")
        facts = yaml.safe_load((root / f"fold_{fold}" / "dataset.yaml").read_text())
        assert facts["split_kind"] == "kfold" and facts["config"]["split"]["fold"] == fold
        assert facts["participants"] == {"development": 2, "generalisation": 1}
        alone = select_frames(dataset, split_fold(dataset.videos, 3, fold, 42), cfg.frames)
        pd.testing.assert_frame_equal(selection.drop(columns="image"), alone)
        selections[fold] = selection.set_index(["video", "set"])
    sets = {f: selections[f].loc["P01_S1"].index.unique().tolist() for f in selections}
    developed = [f for f, held in sets.items() if held == [DEVELOPMENT]]
    assert len(developed) == 2 and sorted(sets.values()) == [[DEVELOPMENT]] * 2 + [[GENERALISATION]]
    first, second = (
        selections[f].loc[("P01_S1", DEVELOPMENT), ["role", "rank", "frame"]].reset_index(drop=True)
        for f in developed
    )
    pd.testing.assert_frame_equal(first, second)  # the same ranked frames and test frames
    # the report reads the folds' dataset.yaml files together (the folder has none of its own)
    facts = dataset_facts(root / "dataset.yaml")
    assert facts["split_kind"] == "kfold" and facts["folds"] == 3
    assert facts["participants"] == {"generalisation": 3}
    assert facts["train_frames"][3] == len(dataset.videos)  # every video develops in some fold


def test_the_report_says_how_a_cross_validation_split_the_data(tmp_path):
    """Not "Split and frames per video: unknown": the folds' dataset.yaml files, read together."""
    root = tmp_path / "prepared" / "mine"
    for fold, used in ((1, {"a": 4, "b": 2}), (2, {"a": 4, "c": 3}), (3, {"b": 2, "c": 3})):
        per_video = {v: {"train": {"asked": 4, "used": n}} for v, n in used.items()}
        facts = {
            "split_kind": "kfold",
            "generalisation_meaning": "unseen participants",
            "participants": {"development": 2, "generalisation": 1},
            "frames_per_video": per_video,
        }
        (root / f"fold_{fold}").mkdir(parents=True)
        (root / f"fold_{fold}" / "dataset.yaml").write_text(yaml.safe_dump(facts))
    facts = dataset_facts(root / "dataset.yaml")
    assert facts["train_frames"] == (2, 3.0, 4, 3)
    tags = pd.DataFrame({"skipped_reason": [""], "evaluation.snapshot": ["last"]})
    lines = "\n".join(_measured(type("Data", (), {"dataset": facts}), tags))
    assert "unknown" not in lines and "Split by participant" not in lines
    assert "**Cross-validation by participant** (split.kind=kfold, 3 folds)" in lines
    assert "every participant is held out by exactly one fold (3 participants)." in lines
    assert "min 2, median 3, max 4 over 3 videos" in lines
    assert f"From `{root}/fold_<k>/dataset.yaml` (3 folds)." in lines
    assert dataset_facts(tmp_path / "none" / "dataset.yaml") is None


def test_prepare_decodes_each_video_once_for_all_folds(tmp_path, monkeypatch):
    from src.data import frames

    decoded = []
    pool = frames._pool
    monkeypatch.setattr(
        frames,
        "_pool",
        lambda dataset, video, *a: decoded.append(video) or pool(dataset, video, *a),
    )
    cfg = tiny_project(tmp_path, "split=kfold", "split.folds=3")
    assert sorted(decoded) == sorted(load_dataset(cfg.data).videos["video"])  # 6, not 3 x 6


def _run(client: MlflowClient, experiment: str, parent: str, n: int, fold: int | None) -> str:
    tags = {"labelled_frames": str(n), "mlflow.parentRunId": parent}
    if fold is not None:
        tags |= {"fold": str(fold), "folds": "2"}
    run = client.create_run(experiment, run_name=f"frames={n}", tags=tags)
    client.log_metric(run.info.run_id, "mae_generalisation_px", 10.0 * n + (fold or 0))
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_collect_runs_keeps_every_fold_with_a_fold_column(tmp_path):
    empty_mlflow_store(tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("kfold")
    parent = client.create_run(experiment).info.run_id
    for fold in (1, 2):
        for n in (0, 2):
            _run(client, experiment, parent, n, fold)
    _run(client, experiment, parent, 2, 1)  # a newer run of the same cell replaces the older
    runs = collect_runs(client, experiment, parent)
    assert runs[["fold", "labelled_frames"]].values.tolist() == [[1, 0], [1, 2], [2, 0], [2, 2]]
    assert runs.set_index(["fold", "labelled_frames"])["mae_generalisation_px"].to_dict() == {
        (1, 0): 1.0,
        (1, 2): 21.0,
        (2, 0): 2.0,
        (2, 2): 22.0,
    }
    single_parent = client.create_run(experiment).info.run_id
    for n in (0, 2):
        _run(client, experiment, single_parent, n, None)
    assert "fold" not in collect_runs(client, experiment, single_parent)


def test_the_report_reads_every_folds_evaluation(tmp_path):
    cfg = OmegaConf.create(
        {
            "split": {"kind": "kfold", "folds": 2, "fold": 1},
            "pipeline": {"dir": str(tmp_path), "conditions": [0, 2], "folds": [1, 2]},
            "labelled_frames": 0,
        }
    )
    for fold in (1, 2):
        for n in (0, 2):
            folder = tmp_path / "evaluation" / f"fold_{fold}" / f"frames_{n}"
            folder.mkdir(parents=True)
            record = {"labelled_frames": n, "run_id": f"run-{fold}-{n}", "metrics": {}}
            (folder / "metrics.json").write_text(json.dumps(record))
    records = pipeline_records(cfg)
    assert list(records) == [(1, 0), (1, 2), (2, 0), (2, 2)]
    assert records[(2, 2)]["fold"] == 2 and records[(2, 2)]["run_id"] == "run-2-2"
    assert pipeline_runs(cfg) == ["run-1-0", "run-1-2", "run-2-0", "run-2-2"]
    (tmp_path / "evaluation" / "fold_2" / "frames_2" / "metrics.json").unlink()
    with pytest.raises(DataError, match="fold_2/frames_2/metrics.json does not exist"):
        pipeline_records(cfg)


# ----------------------------------------------------------------------------- the DVC pipeline

TINY_KFOLD = [
    "synthetic=tiny",
    "frames.max_train_frames_per_video=4",
    "training.iterations=6",
    "training.evaluations=2",
    "pretraining.iterations=4",
    "pretraining.frames_per_video=4",
    "pipeline.conditions=[0,2]",
    "split=kfold",
    "split.folds=3",
    # a cutoff the tiny models' predictions pass: at 0.8 no fold keeps a point, and the pooled
    # table then lacks the cutoff's column (report: "not evaluated at p-cutoff 0.8")
    "evaluation.pcutoffs=[0.01]",
    "report.pcutoff=0.01",
    # no pre-training (its stages write placeholders): what is tested is which fold's cells run;
    # condition 0 is then skipped, and its cells still run, each with its MLflow run and record
    "weights=random",
]


@pytest.mark.slow
def test_one_fold_through_dvc_then_a_second_trains_only_its_own(tmp_path, two_fold_sweep):
    """The pipeline of fold 1, then fold 2 added (the sweep test's sweep runs beside it)."""
    from src.params import write_params
    from tests.conftest import copy_repository, ran_stages, run

    repo = copy_repository(tmp_path / "repo")
    write_params(repo / "params.yaml", [*TINY_KFOLD, "pipeline.folds=[1]"])
    first = ran_stages(run(repo, "dvc", "repro"))
    assert {"train@fold1-0", "train@fold1-2", "evaluate", "report"} <= first
    assert not any(name.startswith("train@fold2") for name in first)
    assert ran_stages(run(repo, "dvc", "repro")) == set()  # nothing changed: a no-op
    assert "Data and pipelines are up to date" in run(repo, "dvc", "status")

    client = MlflowClient(f"sqlite:///{repo / 'mlruns' / 'mlflow.db'}")

    def records(folds):
        return {
            (k, n): json.loads(
                (repo / f"models/pipeline/evaluation/fold_{k}/frames_{n}/metrics.json").read_text()
            )
            for k in folds
            for n in (0, 2)
        }

    first_records = records([1])
    held = {
        k: set(
            pd.read_csv(repo / f"data/prepared/synthetic_clinical/fold_{k}/split.csv").query(
                "set == 'generalisation'"
            )["participant"]
        )
        for k in (1, 2, 3)
    }
    assert sorted(p for k in held for p in held[k]) == ["P01", "P02", "P03"]

    write_params(repo / "params.yaml", [*TINY_KFOLD, "pipeline.folds=[1,2]"])
    status = run(repo, "dvc", "status")
    assert "train@fold2-2" in status and "train@fold1-2" not in status
    grown = ran_stages(run(repo, "dvc", "repro"))
    assert grown == {"train@fold2-0", "train@fold2-2", "evaluate", "report"}
    assert records([1]) == first_records  # the first fold evaluated again: same runs, same numbers
    runs = {cell: client.get_run(r["run_id"]) for cell, r in records([1, 2]).items()}
    for (fold, n), logged in runs.items():
        assert logged.data.tags["fold"] == str(fold) and logged.data.tags["folds"] == "3"
        assert logged.data.tags["labelled_frames"] == str(n)
        assert logged.info.run_name == f"frames={n} fold={fold}"
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs.values()}) == 1  # one study
    assert ran_stages(run(repo, "dvc", "repro")) == set()


@pytest.fixture(scope="module")
def two_fold_sweep(tmp_path_factory):
    """`python -m src.train +sweep=frames split=kfold pipeline.folds=[1,2]` on the tiny cohort,
    started here and left running (its process spends most of its time importing, on one core):
    the DVC pipeline test asks for it to run beside it. Yields (config, a function that waits for
    the sweep and asserts that it exited 0)."""
    root = tmp_path_factory.mktemp("kfold-sweep")
    study = ["split=kfold", "split.folds=3", "pipeline.conditions=[0,2]"]
    cfg = tiny_project(root, *study)
    overrides = [
        f"paths.data_dir={root / 'data'}",
        "synthetic=tiny",
        *tiny_overrides(root),
        *study,
        "pipeline.folds=[1,2]",
    ]
    out, err = root / "sweep.out", root / "sweep.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        job = subprocess.Popen(
            [sys.executable, "-m", "src.train", "+sweep=frames", *overrides],
            cwd=REPO,
            env=python_env(),
            stdout=stdout,
            stderr=stderr,
        )

    def finished() -> None:
        job.wait(timeout=900)
        assert job.returncode == 0, out.read_text()[-3000:] + err.read_text()[-3000:]

    yield cfg, finished
    job.kill()  # when it has not ended (a test before failed), and then a no-op
    job.wait()


@pytest.mark.slow
def test_the_sweep_runs_conditions_by_folds_under_one_parent(two_fold_sweep):
    """`python -m src.train +sweep=frames split=kfold`: every fold x condition, one MLflow parent."""
    cfg, finished = two_fold_sweep
    finished()
    client = MlflowClient(cfg.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id
    runs = client.search_runs([experiment], "tags.labelled_frames LIKE '%'")
    cells = sorted((r.data.tags["fold"], r.data.tags["labelled_frames"]) for r in runs)
    assert cells == [("1", "0"), ("1", "2"), ("2", "0"), ("2", "2")]
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs}) == 1
    assert {r.data.tags["folds"] for r in runs} == {"3"}
