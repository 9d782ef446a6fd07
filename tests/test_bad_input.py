"""Bad input, end to end: each kind of broken data or configuration runs the real entry point in a subprocess.

Every case breaks a private copy of real data (the tiny synthetic cohort from the real generator, the real
DeepLabCut project shared/fixtures/dlc-reaching, or a folder of real videos), runs ``python -m src.<stage>``
and checks what a user would see and what a later stage would find:

* a non-zero exit: 2 and one line ``error: ...`` (no traceback) for data and value errors, and for
  unknown keys and options (naming the valid choices or the close keys);
* the message names the file or key at fault and says how to fix it;
* the raw data is unchanged (SHA-256 of every file before and after);
* no half-written output: the previous valid prepared folder is byte for byte as it was, the stage's own
  output folder does not appear, and no ``.tmp-*`` / ``.old-*`` staging folder is left behind.

docs/bad_input.md lists the kinds with the message and the fix.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import pandas as pd
import pytest
import yaml

from src.checks import check_config
from src.data.preparation import prepare
from src.errors import ConfigError
from src.synthetic.cohort import generate_cohort
from tests.conftest import REACHING, REPO, compose_config, tree_checksums

NAME = "study"  # data.name of every run: the prepared folder is <out>/prepared/study
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
ANNOTATION = "labeled-data/reachingvideo1/CollectedData_Mackenzie"


def permissions_bind() -> list[str] | None:
    """A command prefix under which file permissions apply: nothing for an ordinary user; as root (CI
    containers), setpriv drops the capabilities that let root ignore them. None if neither is possible."""
    if not IS_ROOT:
        return []
    caps = "-dac_override,-dac_read_search,-fowner"
    prefix = [
        shutil.which("setpriv") or "setpriv",
        f"--inh-caps={caps}",
        f"--bounding-set={caps}",
        "--",
    ]
    try:
        works = subprocess.run([*prefix, "true"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        works = False
    return prefix if works else None


def run_stage(
    module: str, *overrides: str, prefix: list[str] = (), timeout: int = 300
) -> subprocess.CompletedProcess:
    env = {
        k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"
    }  # what a user sees by default
    return subprocess.run(
        [*prefix, sys.executable, "-m", module, *overrides],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@dataclass
class Sources:
    cohort: Path  # tiny synthetic clinical cohort (3 participants x 2 videos x 12 frames)
    prepared: Path  # a valid prepared folder of it (frames.max_train_frames_per_video=20: 11 train frames used)
    cohort_checksums: dict


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Sources:
    """Generated once per module with the real generator and the real prepare stage; cases copy from it."""
    base = tmp_path_factory.mktemp("bad-input-sources")
    cfg = compose_config(base, f"data.name={NAME}")
    cohort = generate_cohort(cfg.synthetic.clinical, Path(cfg.paths.synthetic_dir))
    return Sources(cohort, prepare(cfg), tree_checksums(cohort))


# ----------------------------------------------------------------------------- ways to break a private copy


def _edit_csv(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    path.write_text(
        "\n".join(edit(path.read_text(encoding="utf-8").splitlines())) + "\n", encoding="utf-8"
    )


def _dlc_csv_only(project: Path) -> Path:
    """Drop the .h5 so that the (editable) .csv is the annotation file read."""
    (project / f"{ANNOTATION}.h5").unlink()
    return project / f"{ANNOTATION}.csv"


def _set_cell(lines: list[str], row: int, column: int, value: str) -> list[str]:
    cells = lines[row].split(",")
    cells[column] = value
    return lines[:row] + [",".join(cells)] + lines[row + 1 :]


def _shorten_video(path: Path, n_frames: int) -> None:
    """Rewrite a video with only its first ``n_frames`` frames (a real, decodable, shorter video)."""
    capture = cv2.VideoCapture(str(path))
    frames = [capture.read()[1] for _ in range(n_frames)]
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()


def _edit_yaml(path: Path, **changes) -> None:
    content = yaml.safe_load(path.read_text(encoding="utf-8"))
    path.write_text(yaml.safe_dump(content | changes), encoding="utf-8")


def _second_participant_without_labels(project: Path) -> None:
    """A second labelled-data folder (a second participant) whose annotation file labels no point at all."""
    shutil.copytree(
        project / "labeled-data/reachingvideo1", project / "labeled-data/reachingvideo2"
    )
    (project / "labeled-data/reachingvideo2/CollectedData_Mackenzie.h5").unlink()
    _edit_csv(
        project / "labeled-data/reachingvideo2/CollectedData_Mackenzie.csv",
        lambda lines: lines[:3] + [line.split(",")[0] + "," * 10 for line in lines[3:]],
    )


def _as_lightning_pose(project: Path, keypoint_names: list[str] | None = None) -> None:
    """The real project rearranged as a Lightning Pose data set: one top-level CollectedData.csv
    (DeepLabCut's own CSV: its rows already name labeled-data/<video>/img<N>.png), no config.yaml,
    no per-folder label files; with ``keypoint_names``, a Lightning Pose config lp.yaml listing
    them."""
    shutil.copyfile(project / f"{ANNOTATION}.csv", project / "CollectedData.csv")
    for path in (project / "labeled-data/reachingvideo1").glob("CollectedData_*"):
        path.unlink()
    (project / "config.yaml").unlink()
    if keypoint_names:
        lp_config = {"data": {"csv_file": "CollectedData.csv", "keypoint_names": keypoint_names}}
        (project / "lp.yaml").write_text(yaml.safe_dump(lp_config), encoding="utf-8")


def _multi_animal_labels(project: Path) -> None:
    """The labels rewritten with DeepLabCut's multi-animal header (an individuals level)."""
    path = project / f"{ANNOTATION}.h5"
    table = pd.read_hdf(path)
    table.columns = pd.MultiIndex.from_tuples(
        [(s, "mouse1", b, c) for s, b, c in table.columns],
        names=["scorer", "individuals", "bodyparts", "coords"],
    )
    table.to_hdf(path, key="df_with_missing", mode="w")
    (project / f"{ANNOTATION}.csv").unlink()


# ----------------------------------------------------------------------------- the table


@dataclass
class Case:
    id: str
    source: str  # cohort | reaching | videos: the raw data copied for the case
    stage: str  # the entry point, python -m <stage>
    overrides: list[str]  # {raw} = the private raw copy, {out} = paths.data_dir
    expect: list[str]  # in stderr: the file or key, and the fix
    breaks: Callable[[Path], None] | None = None
    code: int = 2
    slow: bool = True
    permissions: bool = False  # run where file permissions bind (as root: without its capabilities)
    extra: dict = field(default_factory=dict)


COHORT = ["data.root={raw}"]
DLC = ["data=dlc_project", "data.root={raw}"]
LIGHTNING_POSE = ["data=lightning_pose", "data.root={raw}"]
VIDEOS = ["data=videos", "data.root={raw}"]

CASES = [
    # --- videos
    Case(
        "corrupt video",
        "cohort",
        "src.prepare",
        COHORT,
        ["P01_S2.mp4 cannot be decoded by OpenCV", "re-export it"],
        lambda raw: (raw / "videos/P01_S2.mp4").write_bytes(
            b"\x00\x00\x00\x18ftypmp42 broken" * 300
        ),
    ),
    Case(
        "empty video",
        "cohort",
        "src.prepare",
        COHORT,
        ["P01_S2.mp4 is empty (0 bytes)", "restore it"],
        lambda raw: (raw / "videos/P01_S2.mp4").write_bytes(b""),
    ),
    Case(
        "missing video",
        "cohort",
        "src.prepare",
        COHORT,
        ["P02_S1.mp4 does not exist", "restore it"],
        lambda raw: (raw / "videos/P02_S1.mp4").unlink(),
    ),
    Case(
        "video with fewer frames than annotated",
        "cohort",
        "src.prepare",
        COHORT,
        [
            "ground_truth.csv annotates frame 5 of video P01_S1, which has 5 frames",
            "restore the full video",
        ],
        lambda raw: _shorten_video(raw / "videos/P01_S1.mp4", 5),
    ),
    Case(
        "videos with fewer frames than a development video needs",
        "videos",
        "src.prepare",
        VIDEOS,
        ["has 1 usable frame(s)", "use a longer recording"],
        lambda raw: [_shorten_video(path, 1) for path in raw.glob("*.mp4")],
    ),
    # --- annotation files
    Case(
        "missing annotation file",
        "cohort",
        "src.prepare",
        COHORT,
        ["ground_truth.csv does not exist", "restore it"],
        lambda raw: (raw / "ground_truth.csv").unlink(),
    ),
    Case(
        "unreadable annotation file (not UTF-8 text)",
        "cohort",
        "src.prepare",
        COHORT,
        ["ground_truth.csv cannot be read as CSV", "restore it"],
        lambda raw: (raw / "ground_truth.csv").write_bytes(bytes(range(128, 256)) * 40),
    ),
    Case(
        "corrupt DeepLabCut annotation file",
        "reaching",
        "src.prepare",
        DLC,
        ["CollectedData_Mackenzie.h5 cannot be read", "restore it from a backup"],
        lambda raw: (raw / f"{ANNOTATION}.h5").write_bytes(
            (raw / f"{ANNOTATION}.h5").read_bytes()[:300]
        ),
        slow=False,
    ),
    Case(
        "DeepLabCut annotation file not UTF-8",
        "reaching",
        "src.prepare",
        DLC,
        ["CollectedData_Mackenzie.csv cannot be read", "re-save the labels"],
        lambda raw: _dlc_csv_only(raw).write_bytes("scorer,Mäckenzie\n".encode("latin-1") * 3),
    ),
    Case(
        "no annotation files at all",
        "reaching",
        "src.prepare",
        DLC,
        ["holds CollectedData_Mackenzie.h5 or .csv", "label frames in DeepLabCut first"],
        lambda raw: [
            p.unlink() for p in (raw / "labeled-data/reachingvideo1").glob("CollectedData_*")
        ],
    ),
    Case(
        "annotations of another scorer",
        "reaching",
        "src.prepare",
        [*DLC, "data.scorer=Alex"],
        ["labels by scorer(s) ['Mackenzie'], not by 'Alex'", "set data.scorer"],
    ),
    Case(
        "a folder whose annotation file labels nothing",
        "reaching",
        "src.prepare",
        [
            *DLC,
            "data.participants.pattern='^(?P<participant>.+)$'",
            "split.generalisation_fraction=0.5",
        ],
        ["reachingvideo2: its CollectedData_Mackenzie file labels no point", "label some frames"],
        _second_participant_without_labels,
    ),
    Case(
        "project config.yaml not valid YAML",
        "reaching",
        "src.prepare",
        DLC,
        ["config.yaml cannot be read as YAML", "fix its syntax"],
        lambda raw: (raw / "config.yaml").write_text("Task: Reaching\nbodyparts: [Hand, Finger1\n"),
    ),
    Case(
        "multi-animal labels in a single-animal project",
        "reaching",
        "src.prepare",
        DLC,
        [
            "CollectedData_Mackenzie.h5 is a multi-animal file",
            "only single-animal data is supported",
        ],
        _multi_animal_labels,
        slow=False,
    ),
    Case(
        "Lightning Pose data set given as a DeepLabCut project",
        "reaching",
        "src.prepare",
        DLC,
        [
            "config.yaml does not exist, but",
            "this looks like a Lightning Pose data set",
            "load it with `data=lightning_pose 'data.root=",  # quoted: the path has a space
        ],
        _as_lightning_pose,
        slow=False,
    ),
    Case(
        "DeepLabCut project given as a Lightning Pose data set",
        "reaching",
        "src.prepare",
        LIGHTNING_POSE,
        [
            "CollectedData.csv does not exist, but",
            "this looks like a DeepLabCut project",
            "load it with `data=dlc_project 'data.root=",
        ],
    ),
    Case(
        "Lightning Pose keypoints differ from its config",
        "reaching",
        "src.prepare",
        [*LIGHTNING_POSE, "data.config={raw}/lp.yaml"],
        [
            "CollectedData.csv has bodyparts that differ from the keypoint names "
            "(data.keypoint_names)",
            "['Nose']",
            "make data.keypoint_names list the CSV's keypoints",
        ],
        lambda raw: _as_lightning_pose(raw, ["Hand", "Finger1", "Nose", "Joystick1", "Joystick2"]),
    ),
    # --- labels
    Case(
        "bodyparts differ between config and annotations",
        "reaching",
        "src.prepare",
        DLC,
        [
            "CollectedData_Mackenzie.h5 has bodyparts that differ from the project's config.yaml",
            "['Nose']",
            "make the config's `bodyparts:` list match",
        ],
        lambda raw: _edit_yaml(
            raw / "config.yaml", bodyparts=["Hand", "Finger1", "Nose", "Joystick1", "Joystick2"]
        ),
        slow=False,
    ),
    Case(
        "bodyparts differ between cohort and ground truth",
        "cohort",
        "src.prepare",
        COHORT,
        ["ground_truth.csv has bodyparts that differ", "['knee_r']", "regenerate the cohort"],
        lambda raw: _edit_csv(
            raw / "ground_truth.csv",
            lambda ls: [ls[0]] + [line.replace(",right_knee,", ",knee_r,") for line in ls[1:]],
        ),
    ),
    Case(
        "label outside the image",
        "reaching",
        "src.prepare",
        DLC,
        [
            "CollectedData_Mackenzie.csv: 1 label(s) lie outside the image",
            "img005.png of size 832x747",
            "correct them in DeepLabCut's labelling GUI",
        ],
        lambda raw: _edit_csv(_dlc_csv_only(raw), lambda ls: _set_cell(ls, 3, 1, "5000")),
    ),
    Case(
        "coordinates that are not numbers",
        "cohort",
        "src.prepare",
        COHORT,
        [
            "ground_truth.csv: column 'x' holds 1 value(s) that are not numbers",
            "'12.5px'",
            "correct them",
        ],
        lambda raw: _edit_csv(raw / "ground_truth.csv", lambda ls: _set_cell(ls, 5, 3, "12.5px")),
    ),
    # --- frames
    Case(
        "duplicated frame in DeepLabCut annotations",
        "reaching",
        "src.prepare",
        DLC,
        ["labels the same frame more than once", "img005.png", "keep one row per image"],
        lambda raw: _edit_csv(_dlc_csv_only(raw), lambda ls: ls + [ls[3]]),
    ),
    Case(
        "duplicated video in the participants table",
        "cohort",
        "src.prepare",
        COHORT,
        [
            "participants.csv has 2 rows that repeat the same video (first: video=P01_S1)",
            "keep one row each",
        ],
        lambda raw: _edit_csv(raw / "participants.csv", lambda ls: ls + [ls[1]]),
    ),
    Case(
        "video listed twice in a project's participants table",
        "reaching",
        "src.prepare",
        [*DLC, "data.participants.table={raw}/participants.csv"],
        [
            "participants.csv lists video 'reachingvideo1' more than once (lines [2, 3])",
            "keep one row per video",
        ],
        lambda raw: (raw / "participants.csv").write_text(
            "video,participant\nreachingvideo1,mouse1\nreachingvideo1,mouse2\n", encoding="utf-8"
        ),
        slow=False,
    ),
    Case(
        "labelled frame image missing",
        "reaching",
        "src.prepare",
        DLC,
        ["labels labeled-data/reachingvideo1/img020.png", "does not exist; restore the frame"],
        lambda raw: (raw / "labeled-data/reachingvideo1/img020.png").unlink(),
    ),
    Case(
        "labelled frame image corrupt",
        "reaching",
        "src.prepare",
        DLC,
        ["img020.png (labelled in", "cannot be read as an image", "restore the frame"],
        lambda raw: (raw / "labeled-data/reachingvideo1/img020.png").write_bytes(b"PNG? no" * 100),
    ),
    # --- participants and split
    Case(
        "fewer participants than the split needs",
        "reaching",
        "src.prepare",
        DLC,
        [
            "has 1 participant(s) (reachingvideo1); a participant split needs at least 2 (one per set)",
            "use split=frames (held-out blocks of frames per video",
            "data.participants",
        ],
        slow=False,
    ),
    Case(
        "participants pattern not a regular expression",
        "videos",
        "src.prepare",
        [*VIDEOS, "data.participants.pattern='(?P<participant>[A-Z'"],
        [
            "data.participants.pattern '(?P<participant>[A-Z' is not a valid regular expression",
            "fix it",
        ],
    ),
    # --- configuration
    Case(
        "unknown config key (typo)",
        "reaching",
        "src.prepare",
        [*DLC, "split.generalisation_fractoin=0.3"],
        [
            "unknown key split.generalisation_fractoin",
            "did you mean split.generalisation_fraction?",
            "conf/split/participants.yaml",
        ],
        slow=False,
    ),
    Case(
        "unknown config option",
        "reaching",
        "src.prepare",
        [*DLC, "frames=random"],
        [
            "frames=random: unknown frames option 'random'",
            "choose one of: active, kmeans",
            "conf/frames/",
        ],
    ),
    Case(
        "split fraction outside (0, 1)",
        "cohort",
        "src.prepare",
        [*COHORT, "split.generalisation_fraction=1.5"],
        [
            "split.generalisation_fraction=1.5 is not allowed",
            "strictly between 0 and 1",
            "conf/split/",
        ],
    ),
    Case(
        "unknown data.kind value",
        "cohort",
        "src.prepare",
        [*COHORT, "data.kind=spreadsheet"],
        [
            "data.kind='spreadsheet' is not allowed",
            "synthetic | dlc_project | lightning_pose | videos",
            "conf/data/",
        ],
    ),
    Case(
        "required data.root not given",
        "videos",
        "src.prepare",
        ["data=videos"],
        ["data.root is required but not set", "data.root=/path/to/your/data"],
    ),
    Case(
        "bad cohort size",
        "cohort",
        "src.cohort",
        ["synthetic.clinical.n_participants=0", "synthetic.output_dir={out}/synthetic"],
        [
            "synthetic.clinical.n_participants=0 is not allowed",
            "an integer >= 1",
            "conf/synthetic/tiny.yaml documents",  # the cohort generator these cases run with
        ],
    ),
    # --- outputs
    Case(
        "output inside the raw data folder",
        "cohort",
        "src.prepare",
        [*COHORT, "paths.prepared_dir={raw}/prepared"],
        ["inside the raw data folder", "choose a paths.prepared_dir outside it"],
    ),
    Case(
        "output folder is a file",
        "cohort",
        "src.prepare",
        [*COHORT, "paths.prepared_dir={out}/blocked"],
        [
            "cannot write the output",
            "(paths.prepared_dir): File exists",
            "is a file where a folder must go",
            "choose another folder",
        ],
        extra={"blocked": True},
    ),
    Case(
        "read-only output folder",
        "cohort",
        "src.prepare",
        COHORT,
        ["cannot write the output", "(paths.prepared_dir): Permission denied", "make", "writable"],
        permissions=True,
    ),
    # --- conditions and evaluation (on a valid prepared folder)
    Case(
        "condition beyond the prepared frames",
        "cohort",
        "src.train",
        ["labelled_frames=25", "evaluate_only=true"],
        ["labelled_frames=25 is not an integer from 0 to 20", "frames.max_train_frames_per_video"],
    ),
    Case(
        "condition asking for more labelled frames than exist",
        "cohort",
        "src.evaluate",
        ["labelled_frames=15"],
        [
            "labelled_frames=15 asks for more labelled frames than exist",
            "choose labelled_frames <= 11",
        ],
    ),
    # --- the whole study, checked before anything runs (src/study/check.py)
    Case(
        "conditions the data cannot serve",
        "cohort",
        "src.prepare",
        [*COHORT, "pipeline.conditions=[0,15]"],
        [
            "pipeline.conditions=[0, 15] asks for 15 labelled frames per development video",
            "min 11, median 11, max 11",
            "set pipeline.conditions=auto (here [0, 1, 2, 6, 10, 11]), or a list of values <= 11",
        ],
    ),
    Case(
        "no room on disk for the snapshots",
        "cohort",
        "src.prepare",
        [*COHORT, "pipeline.snapshot_mb=1e12"],
        ["paths.models_dir=", "GB free", "point paths.models_dir at a larger disk"],
    ),
    Case(
        "initial snapshot missing",
        "cohort",
        "src.prepare",
        [*COHORT, "weights=snapshot", "weights.path={out}/no-such-snapshot.pt"],
        ["no-such-snapshot.pt (weights.path) does not exist", "point weights.path at"],
    ),
    Case(
        "bodypart map naming no bodypart of the data",
        "cohort",
        "src.prepare",
        [*COHORT, "weights.bodypart_map={{Hand:head}}"],  # {{ }}: the case formats {raw}
        ["weights.bodypart_map names 'Hand', which is no bodypart", "use the data set's names"],
    ),
    Case(
        "p-cutoff outside [0, 1]",
        "cohort",
        "src.evaluate",
        ["labelled_frames=2", "evaluation.pcutoffs=[80]"],
        ["evaluation.pcutoffs=[80] is not allowed", "from 0 to 1", "conf/evaluation/"],
    ),
    Case(
        "evaluating a condition that was never trained",
        "cohort",
        "src.evaluate",
        ["labelled_frames=2"],
        ["frames_2/run.yaml does not exist", "dvc repro train@2"],
    ),
    Case(
        "prepared folder incomplete",
        "cohort",
        "src.labelling",
        ["labelling.action=import"],
        ["selection.csv does not exist", "prepare it again"],
        extra={"damage_prepared": "selection.csv"},
    ),
    Case(
        "importing labels never exported",
        "cohort",
        "src.labelling",
        ["labelling.action=import"],
        ["holds no labelling project", "export the frames first"],
    ),
    Case(
        "report without an MLflow store",
        "cohort",
        "src.report",
        [],
        ["the MLflow store sqlite:///", "does not exist; run the sweep first"],
    ),
]


def _copy_source(case: Case, sources: Sources | None, raw_parent: Path) -> Path:
    if case.source == "reaching":
        return Path(shutil.copytree(REACHING, raw_parent / "Reaching-Mackenzie-2018-08-30"))
    if case.source == "cohort":
        return Path(shutil.copytree(sources.cohort, raw_parent / "clinical"))
    videos = (
        raw_parent / "recordings"
    )  # participants P01..P03 from the default pattern ^(?P<participant>[^_]+)
    videos.mkdir(parents=True)
    for path in sorted((sources.cohort / "videos").glob("*.mp4")):
        shutil.copyfile(path, videos / path.name)
    return videos


def _leftovers(folder: Path) -> list[Path]:
    return (
        [p for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]
        if folder.exists()
        else []
    )


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES]
)
def test_bad_input_stops_with_a_clear_error(case: Case, tmp_path, request):
    prefix = permissions_bind() if case.permissions else []
    if prefix is None:
        pytest.skip(
            "runs as root, and setpriv cannot drop root's power to ignore file permissions here"
        )
    sources = (
        request.getfixturevalue("sources")
        if case.source != "reaching" or case.stage != "src.prepare"
        else None
    )
    raw = _copy_source(case, sources, tmp_path / "raw data")
    out = tmp_path / "out"
    if case.breaks:
        case.breaks(raw)
    # A previous, valid prepared folder where the stage writes: a failing run must leave it as it is.
    prepared = out / "prepared" / NAME
    if sources is not None:
        shutil.copytree(sources.prepared, prepared)
    if "damage_prepared" in case.extra:
        (prepared / case.extra["damage_prepared"]).unlink()
    if case.extra.get("blocked"):
        out.mkdir(exist_ok=True)
        (out / "blocked").write_text("a file where the output folder should go\n")
    if case.permissions:
        (out / "prepared").chmod(0o555)
    raw_before = tree_checksums(raw)
    out_before = tree_checksums(out) if out.exists() else {}

    overrides = [o.format(raw=raw, out=out) for o in case.overrides]
    overrides = [
        f"{k}='{v}'" if " " in v and not v.endswith("'") else o
        for o in overrides
        for k, _, v in [o.partition("=")]
    ]  # Hydra needs quotes around spaces
    result = run_stage(
        case.stage,
        *overrides,
        f"paths.data_dir='{out}'",
        "synthetic=tiny",
        f"data.name={NAME}",
        f"mlflow.tracking_uri='sqlite:///{out}/mlruns/mlflow.db'",
        f"paths.models_dir='{out}/models'",
        f"pipeline.dir='{out}/pipeline'",
        prefix=prefix,
    )
    if case.permissions:
        (out / "prepared").chmod(0o755)

    print(
        result.stderr, end=""
    )  # what the user saw: pytest -rP shows it (docs/bad_input.md quotes it)
    assert result.returncode == case.code, result.stderr
    for words in case.expect:
        assert words in result.stderr, f"{words!r} not in:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    if case.code == 2:  # our own errors: exactly one line
        assert result.stderr.strip().startswith("error: ") and "\n" not in result.stderr.strip(), (
            result.stderr
        )
    assert tree_checksums(raw) == raw_before, "the raw data changed"
    after = tree_checksums(out) if out.exists() else {}
    untouched = {
        k: v for k, v in after.items() if not k.startswith("mlruns/")
    }  # MLflow's store may be created
    assert untouched == out_before, "output written or changed by a failing run"
    assert not _leftovers(out) and not _leftovers(raw), "staging folders left behind"


def test_the_table_covers_enough_kinds():
    assert len(CASES) >= 18 and len({c.id for c in CASES}) == len(CASES)


# ----------------------------------------------------------------------------- inputs that must work


@pytest.mark.slow
def test_path_with_spaces_and_non_ascii_letters_works_end_to_end(sources, tmp_path):
    raw = Path(shutil.copytree(sources.cohort, tmp_path / "Pätient data" / "Kohorte Ø 1"))
    out = tmp_path / "Ausgabe für Tests"
    before = tree_checksums(raw)
    result = run_stage(
        "src.prepare",
        f"data.root='{raw}'",
        f"paths.data_dir='{out}'",
        "synthetic=tiny",
        f"data.name={NAME}",
    )
    assert result.returncode == 0, result.stderr
    prepared = out / "prepared" / NAME
    assert f"prepared frames: {prepared}" in result.stdout
    # the same frames and labels as from a plain ASCII path: the path changes nothing but the path
    for name in ("split.csv", "selection.csv", "labels.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(prepared / name), pd.read_csv(sources.prepared / name)
        )
    assert yaml.safe_load((prepared / "dataset.yaml").read_text(encoding="utf-8"))["source"] == str(
        raw
    )
    assert tree_checksums(raw) == before and not _leftovers(out)


@pytest.mark.slow
def test_read_only_raw_data_is_read(sources, tmp_path):
    """Raw data made read-only (as a careful user would) prepares as usual, run where the permissions bind."""
    prefix = permissions_bind()
    if prefix is None:
        pytest.skip(
            "runs as root, and setpriv cannot drop root's power to ignore file permissions here"
        )
    raw = Path(shutil.copytree(sources.cohort, tmp_path / "readonly"))
    paths = [raw, *raw.rglob("*")]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)
    modes = {p: p.stat().st_mode for p in paths}
    before = tree_checksums(raw)
    try:
        result = run_stage(
            "src.prepare",
            f"data.root={raw}",
            f"paths.data_dir={tmp_path / 'out'}",
            "synthetic=tiny",
            f"data.name={NAME}",
            prefix=prefix,
        )
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "out" / "prepared" / NAME / "labels.csv").is_file()
        assert tree_checksums(raw) == before
        assert {
            p: p.stat().st_mode for p in paths
        } == modes  # nothing made writable behind the user's back
    finally:
        for path in paths:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.mark.slow
def test_a_killed_runs_staging_folder_is_cleared_and_never_read(sources, tmp_path):
    """A staging folder left by a killed prepare (its process gone) is removed by the next run, which
    replaces the output as a whole; a later stage reads only the finished folder."""
    out = tmp_path / "out"
    stale = (
        out / "prepared" / f".{NAME}.tmp-{socket.gethostname()}-999999999"
    )  # a pid no process has
    elsewhere = (
        out / "prepared" / f".{NAME}.tmp-other-node-1"
    )  # another host's: its pid means nothing here
    for folder in (stale, elsewhere):
        folder.mkdir(parents=True)
        (folder / "selection.csv").write_text("half,written\n")
    result = run_stage(
        "src.prepare",
        f"data.root={sources.cohort}",
        f"paths.data_dir={out}",
        "synthetic=tiny",
        f"data.name={NAME}",
    )
    assert result.returncode == 0, result.stderr
    assert not stale.exists() and elsewhere.exists()
    shutil.rmtree(elsewhere)
    assert not _leftovers(out)
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "prepared" / NAME / "selection.csv"),
        pd.read_csv(sources.prepared / "selection.csv"),
    )


REACHING_CHECKSUMS = tree_checksums(REACHING)  # at import, before any case ran


def test_fixture_project_was_only_read():
    """Runs after the cases: none of them wrote to the shared DeepLabCut project they copied."""
    assert tree_checksums(REACHING) == REACHING_CHECKSUMS


@pytest.mark.slow
def test_generated_cohort_was_only_read(sources):
    """Runs after the cases: none of them wrote to the cohort they copied."""
    assert tree_checksums(sources.cohort) == sources.cohort_checksums


# ----------------------------------------------------------------------------- configuration values, in-process


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["training=paper", "+sweep=cutoff"],
        ["data=videos", "data.root=/videos"],
        ["data=lightning_pose", "data.root=/lp", "data.config=/lp/config.yaml"],
        ["data=dlc_project", "data.root=/project", "weights=snapshot", "weights.path=/s.pt"],
    ],
)
def test_shipped_configurations_pass_every_check(overrides, tmp_path):

    check_config(
        compose_config(tmp_path, *overrides),
        "seed",
        "labelled_frames",
        "data",
        "split",
        "frames",
        "training",
        "evaluation",
        "report",
        "synthetic",
    )


@pytest.mark.parametrize(
    "override, words",
    [
        (
            "frames.test_fraction=0",
            "frames.test_fraction=0 is not allowed: it must be a number strictly between 0 and 1",
        ),
        (
            "frames.features.width_px=2",
            "frames.features.width_px=2 is not allowed: it must be an integer >= 4",
        ),
        (
            "training.device=gpu",
            "training.device='gpu' is not allowed: it must be cpu | cuda | mps | auto",
        ),
        ("training.batch_size=0", "training.batch_size=0 is not allowed"),
        (
            "evaluation.snapshot=first",
            "evaluation.snapshot='first' is not allowed: it must be last | best",
        ),
        (
            "evaluation.pcutoffs=[]",
            "evaluation.pcutoffs=[] is not allowed: it must be a non-empty list",
        ),
        (
            "report.pcutoff=1.5",
            "report.pcutoff=1.5 is not allowed: it must be a number from 0 to 1",
        ),
        ("labelled_frames=six", "labelled_frames='six' is not allowed: it must be an integer >= 0"),
        ("labelled_frames=true", "labelled_frames=True is not allowed: it must be an integer >= 0"),
    ],
)
def test_config_values_outside_their_range_name_the_key(override, words, tmp_path):

    with pytest.raises(ConfigError) as error:
        check_config(
            compose_config(tmp_path, override),
            "labelled_frames",
            "frames",
            "training",
            "evaluation",
            "report",
        )
    assert words in str(error.value) and "conf/" in str(error.value)
