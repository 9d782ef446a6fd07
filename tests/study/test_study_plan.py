"""What a study will run, decided before any training (src/study/): conditions the data can serve,
condition 0's bodyparts, the whole-study check, and only the work the study needs.

Fast tests work on made-up bodypart lists and frame counts, the configuration composed from conf/,
and small copies of the real DeepLabCut fixture project; the slow one runs a whole frames sweep on a
project whose bodyparts the initial model does not have.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from src.errors import ConfigError, DataError
from src.study import plan
from src.study.bodyparts import bodypart_mapping, normalise, plan_condition_zero
from src.study.check import check_study
from src.study.needs import NOT_NEEDED, cohorts_not_needed, pretraining_not_needed
from src.synthetic.body import BODYPARTS
from tests.conftest import REACHING, REPO, compose_config, python_env, tiny_overrides

REACHING_BODYPARTS = ["Hand", "Finger1", "Tongue", "Joystick1", "Joystick2"]
# A human project in DeepLabCut 2.x's OpenPose-like spelling.
HUMAN_DLC2 = ["RWrist", "LElbow", "RShoulder", "LKnee", "RAnkle", "Nose", "LeftHip", "neck"]


# ----------------------------------------------------------------------------- names and mapping


@pytest.mark.parametrize(
    "name, expected",
    [
        ("LeftWrist", "left_wrist"),
        ("wrist_l", "left_wrist"),
        ("L_Wrist", "left_wrist"),
        ("left wrist", "left_wrist"),
        ("LWrist", "left_wrist"),
        ("leftwrist", "left_wrist"),
        ("RShoulder", "right_shoulder"),
        ("knee-R", "right_knee"),
        ("Right Ankle", "right_ankle"),
        ("right_elbow", "right_elbow"),
        ("Finger1", "finger1"),
        ("Joystick2", "joystick2"),
        ("Hand", "hand"),
        ("MidHip", "mid_hip"),
        ("Leg", "leg"),
    ],
)
def test_names_are_normalised(name, expected):
    assert normalise(name) == expected


def test_a_dlc2_human_project_maps_onto_the_initial_model():
    mapping = bodypart_mapping(HUMAN_DLC2, BODYPARTS)
    assert mapping == {
        "RWrist": "right_wrist",
        "LElbow": "left_elbow",
        "RShoulder": "right_shoulder",
        "LKnee": "left_knee",
        "RAnkle": "right_ankle",
        "LeftHip": "left_hip",
        "neck": "neck",
    }
    zero = plan_condition_zero(HUMAN_DLC2, BODYPARTS)
    assert not zero.skipped and not zero.complete and zero.conversion() is None
    tags = zero.tags()
    assert tags["bodyparts_evaluated"] == (
        "7 of 8: RWrist, LElbow, RShoulder, LKnee, RAnkle, LeftHip, neck"
    )
    assert (
        "not: Nose" in tags["condition_note"] and "RWrist = right_wrist" in tags["condition_note"]
    )
    assert "skipped_reason" not in tags


def test_reaching_shares_nothing_with_the_initial_model_so_condition_0_is_skipped():
    zero = plan_condition_zero(REACHING_BODYPARTS, BODYPARTS, None, "the initial model")
    assert zero.skipped and zero.evaluated == [] and zero.conversion() is None
    assert "predicts none of the data set's bodyparts (Hand, Finger1" in zero.skipped
    assert "weights.bodypart_map" in zero.skipped
    assert zero.tags() == {"skipped_reason": zero.skipped}


def test_weights_without_heads_skip_condition_0_with_the_reason():
    zero = plan_condition_zero(REACHING_BODYPARTS, None, no_heads=plan.no_heads_reason("random"))
    assert zero.skipped.startswith("weights.kind=random starts from random weights")


def test_bodypart_map_wins_and_is_checked():
    mapping = bodypart_mapping(
        REACHING_BODYPARTS, BODYPARTS, {"Hand": "right_wrist", "Finger1": "left_wrist"}
    )
    assert mapping == {"Hand": "right_wrist", "Finger1": "left_wrist"}
    # null takes a name out; the map beats the name
    assert bodypart_mapping(["head", "neck"], BODYPARTS, {"head": None, "neck": "head"}) == {
        "neck": "head"
    }
    with pytest.raises(DataError, match=r"weights.bodypart_map names 'Nose', which is no bodypart"):
        bodypart_mapping(REACHING_BODYPARTS, BODYPARTS, {"Nose": "head"})
    with pytest.raises(DataError, match=r"maps 'Hand' to 'paw', which the initial model does not"):
        bodypart_mapping(REACHING_BODYPARTS, BODYPARTS, {"Hand": "paw"})


def test_every_data_bodypart_mapped_transfers_the_heads_in_the_data_order():
    data = ["LWrist", "head", "r_ankle"]
    zero = plan_condition_zero(data, BODYPARTS)
    assert zero.complete and zero.conversion() == [
        BODYPARTS.index("left_wrist"),
        BODYPARTS.index("head"),
        BODYPARTS.index("right_ankle"),
    ]
    same = plan_condition_zero(BODYPARTS, BODYPARTS)  # the demo: nothing to note
    assert same.tags() == {} and same.conversion() == list(range(len(BODYPARTS)))


def test_condition_zero_from_the_config_knows_the_initial_model_before_pre_training(tmp_path):
    cfg = compose_config(tmp_path)  # weights=healthy_adults; nothing generated or pre-trained
    zero = plan.condition_zero(cfg, HUMAN_DLC2)
    assert zero.model_bodyparts == BODYPARTS and len(zero.evaluated) == 7
    mapped = compose_config(tmp_path, "weights.bodypart_map={Hand: right_wrist}")
    assert plan.condition_zero(mapped, REACHING_BODYPARTS).evaluated == ["Hand"]


# ----------------------------------------------------------------------------- conditions


def _videos(frames_per_video: dict[str, int]) -> tuple[pd.DataFrame, dict]:
    videos = pd.DataFrame(
        [
            {"participant": v.split("_")[0], "video": v, "session": v.split("_")[1]}
            for v in frames_per_video
        ]
    )
    return videos, {v: np.arange(n) for v, n in frames_per_video.items()}


def _counts(frames_per_video: dict[str, int], tmp_path, *overrides) -> dict[str, int]:
    cfg = compose_config(tmp_path, *overrides)
    videos, candidates = _videos(frames_per_video)
    return plan.development_train_frames(videos, cfg.split, cfg.frames, candidates.__getitem__)


def test_auto_conditions_of_7_to_8_labelled_frames_per_video(tmp_path):
    # 5 participants x 2 videos of 7 and 8 labelled frames; 1 test frame per development video
    seven_eight = {f"P{p}_S{s}": 6 + s for p in range(1, 6) for s in (1, 2)}
    counts = _counts(seven_eight, tmp_path)
    assert len(counts) == 8 and set(counts.values()) == {6, 7}  # 4 development participants
    assert plan.auto_conditions(min(counts.values())) == [0, 1, 2, 6]
    eight = _counts({v: 8 for v in seven_eight}, tmp_path)
    assert plan.auto_conditions(min(eight.values())) == [0, 1, 2, 6, 7]  # the most it serves, too
    capped = _counts({v: 500 for v in seven_eight}, tmp_path)
    assert set(capped.values()) == {20}  # frames.max_train_frames_per_video
    assert plan.auto_conditions(20) == list(plan.PAPER_CONDITIONS)


def test_a_frames_split_holds_its_block_out_of_the_pool(tmp_path):
    counts = _counts({"mouse_S1": 10, "mouse_S2": 30}, tmp_path, "split=frames")
    # 10 frames: 2 held out, 1 test, 7 train; 30 frames: 6 held out, 1 test, 20 (capped) train
    assert counts == {"mouse_S1": 7, "mouse_S2": 20}


def test_auto_resolves_in_params_and_in_the_sweep(tmp_path):
    overrides = ["synthetic=tiny", "frames.max_train_frames_per_video=4"]
    from src.params import composed

    assert composed(overrides)["pipeline"]["conditions"] == [0, 1, 2, 4]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="config",
            overrides=[f"paths.data_dir={tmp_path}", *overrides, "+sweep=frames"],
            return_hydra_config=True,
        )
    assert cfg.hydra.sweeper.params.labelled_frames == "0,1,2,4"
    assert OmegaConf.to_container(cfg.pipeline)["conditions"] == "auto"


def test_an_explicit_list_the_data_cannot_serve_is_one_line_with_the_fix(tmp_path):
    # the tiny cohort, not generated: 12 frames per video, counted from conf/synthetic
    cfg = compose_config(tmp_path, "pipeline.conditions=[0,1,2,6,10,15,20]")
    with pytest.raises(DataError) as error:
        plan.resolve_conditions(cfg)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("pipeline.conditions=[0, 1, 2, 6, 10, 15, 20] asks for 20")
    assert "min 11, median 11, max 11 over 4 development video(s)" in message
    assert "fewest: P" in message
    assert (
        "set pipeline.conditions=auto (here [0, 1, 2, 6, 10, 11]), or a list of values <= 11"
        in (message)
    )
    assert plan.resolve_conditions(compose_config(tmp_path, "pipeline.conditions=[0,11]")) == [
        0,
        11,
    ]
    with pytest.raises(DataError, match="pipeline.conditions=.* is not allowed"):
        plan.resolve_conditions(compose_config(tmp_path, "pipeline.conditions=[0,-1]"))


# ----------------------------------------------------------------------------- the whole-study check


def two_participant_project(
    root: Path, rename: dict[str, str] | None = None, scale: int = 1
) -> Path:
    """The real Reaching project, its one video copied as a second (a second participant), its
    bodyparts renamed (CSV labels; the .h5 files removed so that the CSVs are read), its frames
    and labels ``scale`` times smaller (a training of seconds on a CPU)."""
    project = Path(shutil.copytree(REACHING, root / "Reaching-2-videos"))
    if scale > 1:
        folder = project / "labeled-data/reachingvideo1"
        table = pd.read_csv(folder / "CollectedData_Mackenzie.csv", header=[0, 1, 2], index_col=0)
        (table / scale).to_csv(folder / "CollectedData_Mackenzie.csv")
        (folder / "CollectedData_Mackenzie.h5").unlink()
        for image in folder.glob("*.png"):
            pixels = cv2.imread(str(image))
            height, width = pixels.shape[:2]
            size = (width // scale, height // scale)
            cv2.imwrite(str(image), cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))
    shutil.copytree(
        project / "labeled-data/reachingvideo1", project / "labeled-data/reachingvideo2"
    )
    if rename:
        config = yaml.safe_load((project / "config.yaml").read_text(encoding="utf-8"))
        config["bodyparts"] = [rename.get(b, b) for b in config["bodyparts"]]
        config["skeleton"] = []
        (project / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
        for csv in project.glob("labeled-data/*/CollectedData_Mackenzie.csv"):
            lines = csv.read_text(encoding="utf-8").splitlines()
            lines[1] = ",".join(rename.get(b, b) for b in lines[1].split(","))
            csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
            csv.with_suffix(".h5").unlink()
    return project


def project_overrides(project: Path, root: Path) -> list[str]:
    return [
        *tiny_overrides(root),
        "data=dlc_project",
        f"data.root={project}",
        "data.name=reaching2",
        "split.generalisation_fraction=0.5",
    ]


def test_check_study_fails_fast_on_the_disk_check(tmp_path):
    project = two_participant_project(tmp_path)
    overrides = project_overrides(project, tmp_path)
    said = []
    study = check_study(compose_config(tmp_path, *overrides), say=said.append)
    assert study.conditions == [0, 1, 2, 4] and study.condition_zero.skipped
    assert "condition 0 skipped: the initial model" in said[-1]

    start = time.perf_counter()
    with pytest.raises(DataError) as error:
        check_study(compose_config(tmp_path, *overrides, "pipeline.snapshot_mb=1e9"))
    assert time.perf_counter() - start < 10
    message = str(error.value)
    assert message.startswith(f"paths.models_dir={tmp_path / 'models'}: the 4 training(s)")
    assert "GB free" in message and "point paths.models_dir at a larger disk" in message


def test_check_study_refuses_a_pck_reference_the_data_does_not_label(tmp_path):
    project = two_participant_project(tmp_path)
    overrides = project_overrides(project, tmp_path)
    with pytest.raises(DataError, match=r"evaluation.pck.reference_bodyparts=\['Hand', 'Nose'\]"):
        check_study(
            compose_config(tmp_path, *overrides, "evaluation.pck.reference_bodyparts=[Hand,Nose]")
        )


@pytest.mark.parametrize(
    "override, allowed",
    [
        ("report.register=best", "best_generalisation | frames_to_label | none"),
        ("export.snapshot=newest", "best | last"),
        ("export.model=models:/mine", "models:/<name>@<alias>, models:/<name>/<version> or an"),
        ("export.dir=' '", "null or the folder to write"),
        ("report.trust_model=no/such/trust_model.json", "null or an existing trust score file"),
    ],
)
@pytest.mark.parametrize("cheap", [False, True], ids=["check", "train"])
def test_check_study_refuses_a_bad_report_or_export_value_before_training(
    tmp_path, override, allowed, cheap
):
    """The registry (report stage) and the export read them only after training: checked first,
    by the study check and by src.train's cheap one, in one line naming the key and the values."""
    key = override.split("=")[0]
    cfg = compose_config(tmp_path, *tiny_overrides(tmp_path), override)
    with pytest.raises(ConfigError) as raised:
        check_study(cfg, cheap=cheap, say=lambda line: None)
    message = str(raised.value)
    assert message.startswith(f"{key}=") and f"it must be {allowed}" in message, message
    assert "\n" not in message and "conf/" in message


def test_check_study_reuses_the_splits_message_for_one_participant(tmp_path):
    cfg = compose_config(
        tmp_path, *tiny_overrides(tmp_path), "data=dlc_project", f"data.root={REACHING}"
    )
    with pytest.raises(DataError, match="a participant split needs at least 2.*use split=frames"):
        check_study(cfg)


def test_params_refuses_a_study_its_data_cannot_run_before_writing_it(tmp_path):
    repo = tmp_path / "repo"
    for folder in ("src", "conf"):
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "conf/study/current.yaml").unlink(missing_ok=True)
    project = two_participant_project(tmp_path)
    bring_in = project_overrides(project, tmp_path)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "src.params", *bring_in, "pipeline.conditions=[0,6]"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=python_env(),
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: pipeline.conditions=[0, 6] asks for 6") and (
        done.stderr.count("\n") == 1
    ), done.stderr
    assert "pipeline.conditions=auto (here [0, 1, 2, 4])" in done.stderr
    assert not (repo / "conf/study/current.yaml").exists() and not (repo / "params.yaml").exists()
    assert elapsed < 30, elapsed

    done = subprocess.run(
        [sys.executable, "-m", "src.params", *bring_in],
        cwd=repo,
        capture_output=True,
        text=True,
        env=python_env(),
    )
    assert done.returncode == 0, done.stderr
    assert "condition 0 skipped" in done.stdout and "conditions [0, 1, 2, 4]" in done.stdout
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    assert params["pipeline"]["conditions"] == [0, 1, 2, 4]  # what DVC's matrix expands


def test_a_sweep_over_conditions_the_data_cannot_serve_stops_at_once_in_one_line(tmp_path):
    project = two_participant_project(tmp_path)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "+sweep=frames",
            *project_overrides(project, tmp_path),
            f"paths.data_dir={tmp_path / 'data'}",
            "pipeline.conditions=[0,6]",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=python_env(),
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # after MLflow's own lines on a new store
    assert last.startswith("error: pipeline.conditions=[0, 6] asks for 6"), done.stderr
    assert "pipeline.conditions=auto (here [0, 1, 2, 4])" in last
    assert not (tmp_path / "models").exists()  # no job started


# ----------------------------------------------------------------------------- only what is needed


def test_only_the_cohorts_and_pre_training_the_study_reads_are_made(tmp_path):
    demo = compose_config(tmp_path)
    assert cohorts_not_needed(demo) == {} and pretraining_not_needed(demo) is None
    own = compose_config(tmp_path, "data=dlc_project", f"data.root={REACHING}")
    assert list(cohorts_not_needed(own)) == ["clinical"]
    mine = compose_config(tmp_path, "data=dlc_project", f"data.root={REACHING}", "weights=random")
    reasons = cohorts_not_needed(mine)
    assert list(reasons) == ["clinical", "healthy_adults"]
    assert "weights.kind=random pre-trains nothing" in reasons["healthy_adults"]
    assert pretraining_not_needed(mine).startswith("weights.kind=random")

    from src.pretrain import not_needed
    from src.synthetic.cohort import generate_all

    folders = generate_all(mine.synthetic, reasons)  # nothing rendered
    for cohort, folder in folders.items():
        assert [p.name for p in folder.iterdir()] == [NOT_NEEDED]
        assert (folder / NOT_NEEDED).read_text() == f"not needed: {reasons[cohort]}\n"
    mine = compose_config(
        tmp_path,
        "data=dlc_project",
        f"data.root={REACHING}",
        "weights=random",
        f"pipeline.dir={tmp_path / 'pipeline'}",
    )
    not_needed(mine, "all", pretraining_not_needed(mine))
    for folder in (
        tmp_path / "data/prepared/synthetic_healthy_adults",
        tmp_path / "pipeline/pretrained",
    ):
        assert [p.name for p in folder.iterdir()] == [NOT_NEEDED]


# ----------------------------------------------------------------------------- condition 0, evaluated


def test_condition_0_is_evaluated_on_the_shared_bodyparts_only(tmp_path, monkeypatch):
    """evaluate_model with the initial model's 14 bodyparts on a project of which 2 are human
    (RWrist, L_Wrist): predictions of exactly the labels on those two channels (and nonsense on
    the others) give MAE 0, and the run says what it was evaluated on."""
    from src.data.preparation import prepare
    from src.data.prepared import load_condition
    from src.engine import pytorch as engine
    from src.evaluation import condition as evaluation

    rename = {"Hand": "RWrist", "Finger1": "L_Wrist"}
    project = two_participant_project(tmp_path, rename)
    cfg = compose_config(tmp_path, *project_overrides(project, tmp_path), "labelled_frames=0")
    prepare(cfg)
    condition = load_condition(cfg)
    labels = condition.labels.set_index(["video", "frame", "bodypart"])

    def predict(pose_config, snapshot, images, device=None):
        poses = np.full((len(images), len(BODYPARTS), 3), [5000.0, 5000.0, 0.9])
        for i, row in enumerate(condition.frames.itertuples()):
            for data_name, model_name in (("RWrist", "right_wrist"), ("L_Wrist", "left_wrist")):
                x, y = labels.loc[(row.video, row.frame, data_name), ["x", "y"]]
                poses[i, BODYPARTS.index(model_name)] = [x, y, 0.9]
        return poses

    monkeypatch.setattr(engine, "predict", predict)
    model = engine.Model(
        tmp_path / "none.yaml", {"last": tmp_path / "snapshot-005.pt"}, list(BODYPARTS)
    )
    mlflow.set_tracking_uri(cfg.mlflow.tracking_uri)
    experiment_id = MlflowClient(cfg.mlflow.tracking_uri).create_experiment(
        "condition0", artifact_location=(tmp_path / "artifacts").as_uri()
    )  # not the default ./mlruns: the repository's own store
    mlflow.set_experiment(experiment_id=experiment_id)
    with mlflow.start_run() as run:
        metrics = evaluation.evaluate_model(cfg, condition, model)
    assert metrics["mae_generalisation_px"] == 0 and metrics["mae_test_px"] == 0
    tags = MlflowClient(cfg.mlflow.tracking_uri).get_run(run.info.run_id).data.tags
    assert tags["bodyparts_evaluated"] == "2 of 5: RWrist, L_Wrist"
    assert "RWrist = right_wrist" in tags["condition_note"]

    trained = load_condition(
        compose_config(tmp_path, *project_overrides(project, tmp_path), "labelled_frames=1")
    )
    with pytest.raises(DataError, match="it was not trained on this data set's frames"):
        evaluation.evaluate_model(cfg, trained, model)


def test_a_skipped_condition_0_finishes_in_the_pipeline_with_its_reason(tmp_path):
    """The DVC pipeline's train@0 and its evaluation for a study whose initial weights have no heads:
    both succeed, the run is FINISHED with skipped_reason, metrics.json says skipped."""
    from src.data.preparation import prepare
    from src.evaluation.condition import evaluate_saved_model
    from src.training.condition import train

    project = two_participant_project(tmp_path)
    cfg = compose_config(
        tmp_path,
        *project_overrides(project, tmp_path),
        "weights=random",
        "labelled_frames=0",
        "evaluate=false",
        f"pipeline.dir={tmp_path / 'pipeline'}",
    )
    prepare(cfg)
    assert train(cfg) == {"skipped": plan.no_heads_reason("random")}
    saved = yaml.safe_load((tmp_path / "pipeline/models/frames_0/run.yaml").read_text())
    assert saved["skipped"] == plan.no_heads_reason("random")
    evaluate_saved_model(cfg)
    record = json.loads((tmp_path / "pipeline/evaluation/frames_0/metrics.json").read_text())
    assert record["skipped"] == saved["skipped"] and record["metrics"] == {}
    run = MlflowClient(cfg.mlflow.tracking_uri).get_run(saved["run_id"])
    assert run.info.status == "FINISHED" and run.data.metrics == {}
    assert run.data.tags["skipped_reason"] == saved["skipped"]


# ----------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_a_project_of_other_bodyparts_runs_its_frames_sweep_with_condition_0_skipped(tmp_path):
    """`python -m src.train +sweep=frames` on a DeepLabCut project (Reaching, two videos) whose
    bodyparts the default initial model (pre-trained on synthetic humans) does not have:
    condition 0 is skipped with its reason, conditions 1 and 2 train and evaluate, and the sweep
    succeeds. The cohort stage makes only the healthy-adult cohort the pre-training needs. Its
    frames at a quarter of their size: the sweep trains and evaluates at 208 x 186 px."""
    project = two_participant_project(tmp_path, scale=4)
    overrides = [
        *[o for o in project_overrides(project, tmp_path) if "max_train_frames" not in o],
        "frames.max_train_frames_per_video=2",  # auto: conditions 0, 1, 2
        f"paths.data_dir={tmp_path / 'data'}",
        "synthetic=tiny",
    ]

    def run(*command: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", *command, *overrides],
            cwd=REPO,
            capture_output=True,
            text=True,
            env=python_env(),
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    cohort = run("src.cohort")
    assert "cohort clinical skipped (placeholder written)" in cohort
    assert (tmp_path / "data/synthetic/clinical" / NOT_NEEDED).is_file()
    assert (tmp_path / "data/synthetic/healthy_adults/dataset.yaml").is_file()
    assert "condition 0 skipped" in run("src.prepare")
    sweep = run("src.train", "+sweep=frames")
    assert "labelled_frames=0: skipped: the initial model (weights.kind=pretrained" in sweep
    assert "[sweep] 3 of 3 jobs finished" in sweep

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reaching2")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    skipped = runs["frames=0"]
    assert skipped.info.status == "FINISHED" and skipped.data.metrics == {}
    assert "predicts none of the data set's bodyparts (Hand" in skipped.data.tags["skipped_reason"]
    for n in (1, 2):
        finished = runs[f"frames={n}"]
        assert finished.info.status == "FINISHED", n
        assert (
            finished.data.metrics["mae_test_px"] > 0 and "skipped_reason" not in finished.data.tags
        )
