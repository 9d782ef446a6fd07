"""One round of active labelling (frames=active, docs/active_labelling.md): label where the model
is expected to be wrong, on new recordings a person labels by hand.

export: from a finished condition's model's trust of every frame of the development videos
(``trust.h5`` that ``python -m src.analyze`` writes per video), choose each video's next frames
(src/data/selection/active.py: the highest expected error, kept apart in time and image features;
never a test or generalisation frame) and write them as a DeepLabCut project to label, through
``src.labelling``'s export: ``<round>/labelling/`` (config.yaml, labeled-data/<video>/). The round
folder also holds ``round.yaml`` (what was exported) and ``selection.csv`` (the prepared selection
with the round's train frames; test and generalisation frames unchanged).

import: check the labelled folder (the label file is there, its scorer and bodyparts are the
export's, every labelled frame was exported, none is labelled twice) and write the annotations
file given with the new labels merged into a NEW file; a bad folder is refused in one line and
nothing is written. With ``--train`` it also versions the new file (``dvc add``) and records the
round in the study (``pipeline.rounds.<round folder's name>``), so that ``dvc repro`` trains it and
nothing else (dvc.yaml's round stage, src/train_round.py); without it, version the file yourself.

Examples:
    python -m src.label_round export --prepared data/prepared/my_videos \\
        --analysed analysis/<model run id> --videos raw/videos --labelled 1 --frames 2 \\
        --round data/labelling/my_videos/round_2
    python -m src.label_round import --round data/labelling/my_videos/round_2 \\
        --annotations data/prepared/my_videos/labels.csv --out raw/annotations/round_2.csv --train
    dvc repro
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd
import yaml
from omegaconf import OmegaConf

from src.data.collected_data import image_path_parts, read_collected_data
from src.data.contract import Candidates
from src.data.frames import video_features
from src.data.prepared import read_prepared
from src.data.selection import active
from src.data.selection.active import ROUND_FILE, read_round
from src.data.split import DEVELOPMENT, frame_sets
from src.errors import DataError, exit_on_data_error

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
ROUND_NAME = re.compile(r"[A-Za-z0-9_-]+")  # a round folder's name names its stage: round@<name>
LABELS_COLUMNS = ["participant", "video", "frame", "bodypart", "x", "y"]


def frames_settings(path: Path = CONF / "frames" / "active.yaml") -> dict:
    """conf/frames/active.yaml without its interpolations (the seed is the prepared data's)."""
    settings = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    return {k: v for k, v in settings.items() if not (isinstance(v, str) and "${" in v)}


def expected_error(trust_file: Path) -> pd.Series:
    """Per frame (index: frame number), 1 - the mean trust of its points (0 ... 1; for the
    likelihood score 1 - the mean likelihood, for the combined score the expected share of points
    in error), from the ``trust.h5`` src.analyze writes beside its predictions."""
    if not trust_file.is_file():
        raise DataError(
            f"{trust_file}: no trust file; analyse the video with the condition's model first "
            "(python -m src.analyze with analysis.trust.enabled=true)."
        )
    table = pd.read_hdf(trust_file)
    trust = table.xs("trust", axis=1, level="coords")
    return 1.0 - trust.mean(axis=1, skipna=True)


@dataclass(frozen=True)
class RoundInputs:
    """What a round is chosen from: the prepared folder, src.analyze's folder of the model's run,
    the development videos (files or folders), the labels so far (default: the prepared
    labels.csv) and the previous round's selection.csv (default: the prepared one, round 1)."""

    prepared_dir: Path
    analysed_dir: Path
    videos: list[Path]
    annotations_file: Path | None = None
    selection_file: Path | None = None


@dataclass(frozen=True)
class RoundPlan:
    """The round asked for: the model's ``labelled`` frames per video, ``n_frames`` per video
    after the round, the labeller's ``scorer``, and selection ``settings`` over
    conf/frames/active.yaml's and the prepared data's."""

    labelled: int
    n_frames: int
    scorer: str = "labeller"
    settings: dict | None = None


def export_round(inputs: RoundInputs, plan: RoundPlan, round_dir: Path) -> Path:
    """Choose each development video's frames of the next round and export for labelling those
    without labels in the annotations; a chosen frame labelled already joins the round as it is.
    Returns the project's config.yaml."""
    from src.analysis.videos import collect_videos
    from src.labelling import export_for_labelling

    prepared_dir, round_dir = Path(inputs.prepared_dir), Path(round_dir)
    facts, selection, labels = _round_start(inputs)
    _check_plan(plan, round_dir)
    config = facts["config"]  # the frames config the data were prepared with (dataset.yaml)
    settings = _selection_settings(config, plan.settings)
    split = pd.read_csv(prepared_dir / "split.csv")
    files = {path.stem: path for path in collect_videos([str(v) for v in inputs.videos])}
    rounds, chosen = _choose_rounds(inputs, plan, config, settings, (selection, split), files)
    has_label = labels[["x", "y"]].notna().all(axis=1)
    already = set(zip(labels.loc[has_label, "video"], labels.loc[has_label, "frame"]))
    new = {v: [f for f in frames if (v, f) not in already] for v, frames in chosen.items()}
    table = active.round_selection(selection, rounds)
    to_label = table[
        (table["role"] == "train")
        & table.apply(lambda r: r["frame"] in new.get(r["video"], ()), axis=1)
    ]

    # the frames to label as a prepared-like folder, exported by src.labelling's own export
    frames_dir = round_dir / "frames"
    _write_frame_images(to_label, files, frames_dir)
    shutil.copyfile(prepared_dir / "dataset.yaml", frames_dir / "dataset.yaml")
    to_label.to_csv(frames_dir / "selection.csv", index=False)
    pd.DataFrame(columns=LABELS_COLUMNS).to_csv(frames_dir / "labels.csv", index=False)
    project = export_for_labelling(frames_dir, round_dir / "labelling", plan.scorer, False)
    table.to_csv(round_dir / "selection.csv", index=False)
    manifest = _manifest(inputs, plan, facts["bodyparts"], settings) | {
        "labelled_already": {
            video: [f for f in frames if f not in new[video]] for video, frames in chosen.items()
        },
        "exported": {
            video: [
                {"frame": int(f), "image": Path(i).name} for f, i in zip(r["frame"], r["image"])
            ]
            for video, r in to_label.groupby("video")
        },
    }
    (round_dir / ROUND_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    return project


def _round_start(inputs: RoundInputs) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """The prepared data's facts, the selection the round extends and the labels so far."""
    facts, selection, labels = read_prepared(Path(inputs.prepared_dir))
    if inputs.annotations_file is not None:
        labels = read_annotations(Path(inputs.annotations_file))
    if inputs.selection_file is not None:
        selection = read_selection(Path(inputs.selection_file), selection)
    return facts, selection, labels


def _check_plan(plan: RoundPlan, round_dir: Path) -> None:
    """A DataError when the budgets are out of order or the round folder exists."""
    if not 0 < plan.labelled < plan.n_frames:
        raise DataError(
            f"--labelled {plan.labelled} --frames {plan.n_frames}: the model's labelled frames per "
            "video must be at least 1 and fewer than the round's budget; e.g. --labelled 1 "
            "--frames 2."
        )
    if round_dir.exists():
        raise DataError(f"{round_dir}: exists; choose a new round folder (none is overwritten).")


def _selection_settings(config: dict, asked: dict | None) -> dict:
    """conf/frames/active.yaml's settings, over them the prepared data's own (prepared with
    frames=active), over those the ones asked for."""
    own = ("min_gap_frames", "feature_radius_quantile")
    return frames_settings() | {k: config[k] for k in own if k in config} | (asked or {})


def _choose_rounds(
    inputs: RoundInputs,
    plan: RoundPlan,
    config: dict,
    settings: dict,
    tables: tuple[pd.DataFrame, pd.DataFrame],
    files: dict[str, Path],
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Each development video's train frames after the round, and the frames the round adds
    (``tables``: the selection and split.csv; ``files``: the video files by name)."""
    selection, split = tables
    seed = int(config.get("seed", 0))
    size = (int(config["features"]["width_px"]), int(config["features"]["height_px"]))
    development = selection[(selection["set"] == DEVELOPMENT)]
    rounds, chosen = {}, {}
    for video, rows in development.groupby("video", sort=False):
        if video not in files:
            raise DataError(
                f"--videos: no video file named {video}; give the folder of the development "
                "videos (their names without suffix are the videos of selection.csv)."
            )
        trained = rows[(rows["role"] == "train") & (rows["rank"] <= plan.labelled)]
        before = trained.sort_values("rank")["frame"].tolist()
        frame_numbers, features = video_features(
            files[video], size, int(config["max_frames_for_clustering"])
        )
        in_development = frame_sets(split, video, frame_numbers) == DEVELOPMENT
        frame_numbers, features = frame_numbers[in_development], features[in_development]
        error = expected_error(Path(inputs.analysed_dir) / video / "trust.h5")
        fixed = rows.loc[rows["role"] != "train", "frame"].tolist()
        rounds[video] = active.next_round(
            Candidates(features, frame_numbers, error.reindex(frame_numbers).to_numpy()),
            before,
            fixed,
            plan.n_frames,
            seed,
            settings,
        ).tolist()
        chosen[video] = rounds[video][len(before) :]
    return rounds, chosen


def _write_frame_images(to_label: pd.DataFrame, files: dict[str, Path], frames_dir: Path) -> None:
    """The images of the frames to label under ``frames_dir``, named as in ``to_label``."""
    from src.analysis.trust import read_frames

    for video, rows in to_label.groupby("video"):
        images = read_frames(files[video], rows["frame"].tolist())
        if len(images) < len(rows):
            raise DataError(
                f"{files[video]}: ends before frames {sorted(set(rows['frame']) - set(images))} "
                "its trust file scores; give the video the model analysed."
            )
        (frames_dir / "labeled-data" / video).mkdir(parents=True)
        for frame, image in zip(rows["frame"], rows["image"], strict=True):
            cv2.imwrite(str(frames_dir / image), images[int(frame)])


def _manifest(inputs: RoundInputs, plan: RoundPlan, bodyparts: list[str], settings: dict) -> dict:
    """round.yaml's head: where the round came from and what it was asked for."""
    return {
        **({"round": number} if (number := _round_number(inputs)) is not None else {}),
        "prepared": str(Path(inputs.prepared_dir)),
        "analysed": str(inputs.analysed_dir),
        "scorer": plan.scorer,
        "bodyparts": list(bodyparts),
        "labelled_frames_before": plan.labelled,
        "labelled_frames_after": plan.n_frames,
        "settings": {k: settings[k] for k in ("min_gap_frames", "feature_radius_quantile")},
    }


def _round_number(inputs: RoundInputs) -> int | None:
    """2 after k-means' round 1; the previous round's + 1 (its round.yaml beside --selection)."""
    if inputs.selection_file is None:
        return 2
    previous = Path(inputs.selection_file).parent / ROUND_FILE
    if previous.is_file():
        number = (yaml.safe_load(previous.read_text()) or {}).get("round")
        return None if number is None else int(number) + 1
    return None


def read_annotations(path: Path) -> pd.DataFrame:
    """An annotations file (a labels.csv: LABELS_COLUMNS), checked."""
    if not path.is_file():
        raise DataError(f"{path}: missing; give the annotations the round extends.")
    try:
        annotations = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(
            f"{path}: not a readable CSV ({type(error).__name__}); give a labels.csv."
        ) from error
    missing = [c for c in LABELS_COLUMNS if c not in annotations.columns]
    if missing:
        raise DataError(
            f"{path}: no column {missing[0]}; give a labels.csv (columns "
            f"{', '.join(LABELS_COLUMNS)})."
        )
    return annotations


def read_selection(path: Path, prepared: pd.DataFrame) -> pd.DataFrame:
    """A previous round's selection.csv, checked against the prepared one: the same test and
    generalisation frames."""
    if not path.is_file():
        raise DataError(f"{path}: missing; give the selection.csv of the previous round's folder.")
    selection = pd.read_csv(path)
    fixed = ["video", "role", "frame"]
    same = selection.loc[selection["role"] != "train", fixed].reset_index(drop=True)
    if not same.equals(prepared.loc[prepared["role"] != "train", fixed].reset_index(drop=True)):
        raise DataError(
            f"{path}: its test or generalisation frames differ from the prepared data's; give "
            "the selection.csv of a round of these prepared data (--prepared)."
        )
    return selection


def round_labels(round_dir: Path, manifest: dict, annotations: pd.DataFrame) -> pd.DataFrame:
    """The labels of a labelled round folder, long (LABELS_COLUMNS less participant), checked."""
    scorer, bodyparts = manifest["scorer"], manifest["bodyparts"]
    labeled_data = Path(round_dir) / "labelling" / "labeled-data"
    found = []
    for video, exported in manifest["exported"].items():
        path = _label_file(labeled_data / video, scorer)
        table = read_collected_data(path)
        _check_header(path, table, scorer, bodyparts)
        long = _long_labels(table, _exported_frames(path, table, exported)).assign(video=video)
        already = annotations[
            (annotations["video"] == video) & annotations[["x", "y"]].notna().all(axis=1)
        ]
        again = sorted(set(long["frame"]) & set(already["frame"]))
        if again:
            raise DataError(
                f"{path}: frame {again[0]} is labelled twice (it is already in the annotations); "
                "remove its row, or export the round from the current annotations."
            )
        found.append(long[["video", "frame", "bodypart", "x", "y"]])
    return pd.concat(found, ignore_index=True) if found else pd.DataFrame()


def _label_file(folder: Path, scorer: str) -> Path:
    """The labeller's CollectedData_<scorer>.h5 (or .csv) in ``folder``; a DataError when none."""
    path = folder / f"CollectedData_{scorer}.h5"
    if not path.is_file() and path.with_suffix(".csv").is_file():
        path = path.with_suffix(".csv")
    if not path.is_file():
        others = sorted(p.name for p in folder.glob("CollectedData_*.h5"))
        hint = f" (found {others[0]}: another scorer)" if others else ""
        raise DataError(
            f"{path}: missing{hint}; label the frames in napari-deeplabcut as scorer "
            f"{scorer!r} and save, then import again."
        )
    return path


def _check_header(path: Path, table: pd.DataFrame, scorer: str, bodyparts: list[str]) -> None:
    """A DataError unless ``table`` is a DeepLabCut label file of the export's scorer and
    bodyparts."""
    if "scorer" not in table.columns.names or "bodyparts" not in table.columns.names:
        raise DataError(
            f"{path}: not a DeepLabCut label file (no scorer / bodyparts header); re-save it "
            "in napari-deeplabcut."
        )
    scorers = sorted(set(table.columns.get_level_values("scorer")))
    if scorers != [scorer]:
        raise DataError(
            f"{path}: scorer {', '.join(scorers)}, the export's {scorer!r}; label as "
            f"{scorer!r} (the export's config.yaml), or export the round again."
        )
    parts = list(dict.fromkeys(table.columns.get_level_values("bodyparts")))
    if set(parts) != set(bodyparts):
        raise DataError(
            f"{path}: bodyparts {parts}, the export's {bodyparts}; label the export's "
            "bodyparts (its config.yaml), nothing else."
        )


def _exported_frames(path: Path, table: pd.DataFrame, exported: list[dict]) -> list[int]:
    """The frame number of each row of ``table``; a DataError when a row's image was not
    exported or is labelled twice."""
    images = [image_path_parts(index)[-1] for index in table.index]  # DLC 2.x: \ paths too
    allowed = {e["image"]: int(e["frame"]) for e in exported}
    outside = [i for i in images if i not in allowed]
    if outside:
        raise DataError(
            f"{path}: frame {outside[0]} was not exported in this round; label only the "
            "exported frames (remove its row)."
        )
    twice = sorted({i for i in images if images.count(i) > 1})
    if twice:
        raise DataError(f"{path}: frame {twice[0]} is labelled twice; keep one row per frame.")
    return [allowed[i] for i in images]


def _long_labels(table: pd.DataFrame, frames: list[int]) -> pd.DataFrame:
    """A label file's points, one row per frame and bodypart with x and y (unlabelled dropped)."""
    xy = table.droplevel(
        [n for n in table.columns.names if n not in ("bodyparts", "coords")], axis=1
    )
    xy.index = pd.Index(frames, name="frame")
    long = xy.stack(level="bodyparts", future_stack=True).reset_index()
    long = long.rename(columns={"bodyparts": "bodypart"})
    return long.dropna(subset=["x", "y"], how="all")


def import_round(round_dir: Path, annotations_file: Path, out: Path) -> pd.DataFrame:
    """Check a labelled round folder and write ``annotations_file`` with its labels merged as the
    new file ``out``; returns the new labels. Nothing is written when a check fails."""
    annotations_file, out = Path(annotations_file), Path(out)
    if out.exists() or out.resolve() == annotations_file.resolve():
        raise DataError(
            f"{out}: exists; give a new file for the merged annotations (--out), the old ones "
            "stay as they are."
        )
    manifest = read_round(round_dir)
    annotations = read_annotations(annotations_file)
    new = round_labels(round_dir, manifest, annotations)
    participants = pd.read_csv(Path(round_dir) / "selection.csv")
    participants = participants.drop_duplicates("video").set_index("video")["participant"]
    new["participant"] = new["video"].map(participants)
    # rows of a newly labelled frame that held no point yet (a selected frame not yet labelled)
    keys = annotations.set_index(["video", "frame"]).index
    replaced = keys.isin(new.set_index(["video", "frame"]).index)
    merged = pd.concat([annotations[~replaced], new[LABELS_COLUMNS]], ignore_index=True)
    order = {b: i for i, b in enumerate(manifest["bodyparts"])}
    merged = merged.assign(_part=merged["bodypart"].map(order))
    merged = merged.sort_values(["video", "frame", "_part"], kind="stable").drop(columns="_part")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.partial")
    merged[LABELS_COLUMNS].to_csv(staging, index=False, float_format="%.3f")
    staging.replace(out)
    return new


@dataclass(frozen=True)
class RoundRecord:
    """A round as ``--train`` records it in the study: pipeline.rounds.<name>, with its folder and
    merged annotations relative to the repository (the round stage's deps)."""

    name: str
    round: str
    annotations: str


def round_record(round_dir: Path, out: Path) -> RoundRecord:
    """What ``import --train`` will record, checked before anything is written: a DVC repository,
    both paths inside it, ``out`` where ``dvc add`` can version it, the round's name free."""
    from src.study.config import STUDY_FILE, read_study

    if not (REPO / ".dvc").is_dir():
        raise DataError(
            f"{REPO}: not a DVC repository; run dvc init there, or import without --train."
        )
    name = Path(round_dir).resolve().name
    if not ROUND_NAME.fullmatch(name):
        raise DataError(
            f"{round_dir}: the folder's name {name!r} names the round's stage; export it to a "
            "folder named with letters, digits, _ and - only (e.g. round_2)."
        )
    paths = {}
    for flag, path in (("--round", round_dir), ("--out", out)):
        try:
            paths[flag] = Path(path).resolve().relative_to(REPO).as_posix()
        except ValueError:
            raise DataError(
                f"{path}: outside the repository {REPO}; with --train, {flag} must lie inside it "
                "so that dvc repro tracks it (e.g. raw/annotations/round_2.csv)."
            ) from None
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", paths["--out"] + ".dvc"], cwd=REPO, capture_output=True
    )
    if ignored.returncode == 0:
        raise DataError(
            f"{out}: in a git-ignored folder, where dvc add cannot version it; give --out "
            f"outside it, e.g. raw/annotations/{Path(out).name}."
        )
    entry = {"round": paths["--round"], "annotations": paths["--out"]}
    recorded = read_study()[1].get("pipeline", {}).get("rounds", {}).get(name)
    if recorded and recorded != entry:
        raise DataError(
            f"{STUDY_FILE}: pipeline.rounds.{name} is {recorded['round']} with "
            f"{recorded['annotations']}; export this round to a folder of another name, or "
            "remove that entry from the study to replace it."
        )
    return RoundRecord(name, **entry)


def record_round(record: RoundRecord) -> None:
    """``dvc add`` the merged annotations and add the round to the study and params.yaml, saying
    what it runs and what it writes."""
    from src.params import write_params
    from src.study.config import STUDY_FILE, write_study

    print(f"$ dvc add {record.annotations}", flush=True)
    done = subprocess.run(
        [sys.executable, "-m", "dvc", "add", "-q", record.annotations],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DataError(
            f"{record.annotations}: dvc add failed ({reason}); fix that, run dvc add "
            f"{record.annotations} and import again with a new --out."
        )
    value = f"{{round:'{record.round}',annotations:'{record.annotations}'}}"
    write_study([f"pipeline.rounds.{record.name}={value}"])
    write_params(REPO / "params.yaml")
    print(
        f"recorded {record.name} in {STUDY_FILE.relative_to(REPO)} (pipeline.rounds."
        f"{record.name}) and params.yaml: dvc repro trains it (stage round@{record.name}) and "
        f"nothing else; commit {record.annotations}.dvc with them.",
        flush=True,
    )


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _parser() -> argparse.ArgumentParser:
    """export's and import's options; one-line errors."""
    parser = argparse.ArgumentParser(
        prog="python -m src.label_round",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    actions = parser.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="choose and export the round's frames")
    export.add_argument("--prepared", required=True, type=Path, help="the prepared folder")
    export.add_argument(
        "--analysed", required=True, type=Path, help="src.analyze's folder of the model's run"
    )
    export.add_argument(
        "--videos", required=True, nargs="+", help="development video files/folders"
    )
    export.add_argument("--labelled", required=True, type=int, help="the model's frames per video")
    export.add_argument("--frames", required=True, type=int, help="the round's budget per video")
    export.add_argument("--round", required=True, type=Path, help="the new round folder")
    export.add_argument("--scorer", default="labeller", help="the labeller's name (DeepLabCut)")
    export.add_argument(
        "--annotations", type=Path, help="labels so far (default: the prepared labels.csv)"
    )
    export.add_argument(
        "--selection", type=Path, help="the previous round's selection.csv (default: round 1)"
    )
    imports = actions.add_parser("import", help="check the labels and merge them")
    imports.add_argument("--round", required=True, type=Path, help="the labelled round folder")
    imports.add_argument("--annotations", required=True, type=Path, help="labels.csv to extend")
    imports.add_argument("--out", required=True, type=Path, help="the new merged labels file")
    imports.add_argument(
        "--train",
        action="store_true",
        help="also dvc add --out and record the round in the study (pipeline.rounds), so that "
        "dvc repro trains it (stage round@<round folder's name>)",
    )
    for one in (parser, export, imports):  # one line, not argparse's usage before its error
        one.error = lambda message, prog=one.prog: _refuse(f"{prog}: {message}; see --help")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with exit_on_data_error():
        if args.action == "export":
            inputs = RoundInputs(
                args.prepared, args.analysed, args.videos, args.annotations, args.selection
            )
            plan = RoundPlan(args.labelled, args.frames, args.scorer)
            config = export_round(inputs, plan, args.round)
            print(
                f'label the frames in DeepLabCut: napari, or python -c "import deeplabcut; '
                f"deeplabcut.label_frames('{config}')\"; then python -m src.label_round import "
                f"--round {args.round} ..."
            )
        else:
            record = round_record(args.round, args.out) if args.train else None
            new = import_round(args.round, args.annotations, args.out)
            frames = new[["video", "frame"]].drop_duplicates().shape[0]
            print(f"merged {len(new)} labels of {frames} frames into {args.out}", flush=True)
            if record is None:
                print(f"version it: dvc add {args.out}; or import with --train", flush=True)
            else:
                record_round(record)


if __name__ == "__main__":
    sys.exit(main())
