"""DeepLabCut 2.x's TensorFlow engine (``engine=tensorflow``), as DeepLabCut 3.0.2 still ships it.

The same operations as :mod:`src.engine.pytorch`, with DeepLabCut's own TensorFlow code: the project
and training set (``create_training_dataset(engine=Engine.TF)``, explicit train/test indices), training
(``train_network``), frame inference (what its ``evaluate_network`` does per image), video inference and
model folders. A model is DeepLabCut's ``test/pose_cfg.yaml`` and a ``snapshot-<iteration>`` checkpoint
(``.index``, ``.data-*``, ``.meta``), so a DLC 2.x project's snapshots are models as they are.

Three things this environment needs, each measured (issue 16):

- **Import order**: TensorFlow imported before torch's triton aborts the process (LLVM "Option ...
  registered more than once"); :func:`import_tensorflow` imports deeplabcut (torch) first.
- **imgaug under numpy 2**: imgaug 0.4 (DeepLabCut's TensorFlow data pipeline) reads ``np.sctypes``,
  removed in numpy 2.0. :func:`import_tensorflow` puts numpy 1's table back (:data:`NUMPY1_SCTYPES`)
  before the import, in processes that use this engine only; nothing else of numpy changes.
- **A failing training does not exit** (its loader thread is not a daemon): training runs in a child
  process (``python -m src.engine.tensorflow train ...``) that leaves with ``os._exit``, whatever
  happens; the child also dies with its parent (a killed training leaves no orphan).

Offline initial weights: DeepLabCut downloads ImageNet ``resnet_v1_<depth>.ckpt`` when it builds a
training set; here the training set is built without it (its weight check is answered with the
checkpoint we start from) and ``init_weights`` points at a checkpoint made locally
(:func:`random_weight_init`), DeepLabCut's ImageNet checkpoint (``weights=hub``, checked first) or a
``snapshot-N`` (all variables restored, iterations counted from N).
"""

from __future__ import annotations

import ctypes
import math
import os
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from src.data.prepared import largest_image_size
from src.engine import Model, TrainingFrames, progress
from src.engine import shared as _shared  # project writing and video helpers are engine-neutral
from src.errors import DataError

ENGINE = NAME = "tensorflow"  # engine=tensorflow (conf/engine/tensorflow.yaml)
SHUFFLE = 1
MODEL_FILE = "tensorflow_model.yaml"  # in a saved model folder: which checkpoint is the last one
POSE_CONFIG = "pose_cfg.yaml"  # DeepLabCut's test pose config: what inference needs
POSE_CONFIG_KEY = "all_joints_names"  # a key only its pose configs hold (src.engine.engine_of)

# numpy 1's np.sctypes (removed in numpy 2.0), which imgaug 0.4 reads when imported.
NUMPY1_SCTYPES = {
    "int": [np.int8, np.int16, np.int32, np.int64],
    "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
    "float": [np.float16, np.float32, np.float64, np.longdouble],
    "complex": [np.complex64, np.complex128, np.clongdouble],
    "others": [bool, object, bytes, str, np.void],
}

_threads = 0  # TensorFlow's CPU threads (0: its default); set_threads


def import_tensorflow():
    """TensorFlow and DeepLabCut's TensorFlow package, imported in the order that works here.

    deeplabcut (torch) first; numpy 1's ``np.sctypes`` restored for imgaug; graph mode on, as
    DeepLabCut's TensorFlow code expects. Returns the ``tensorflow`` module.
    """
    import deeplabcut  # noqa: F401  (torch before TensorFlow: the other order aborts in LLVM)

    if "sctypes" not in np.__dict__:
        np.sctypes = NUMPY1_SCTYPES  # imgaug 0.4 under numpy 2 (see the module's docstring)
    if _threads > 0:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(_threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import deeplabcut.pose_estimation_tensorflow  # noqa: F401
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    return tf


@dataclass
class TrainingSet:
    """A DeepLabCut project with one TensorFlow shuffle whose train/test frames are the ones we chose."""

    project_config: Path  # <project>/config.yaml
    model_folder: Path  # <project>/dlc-models/iteration-0/<task>-trainset<pct>shuffle1
    n_train: int
    n_test: int

    @property
    def pose_config(self) -> Path:
        """The pose config a model of this training set predicts with (DeepLabCut's test/pose_cfg.yaml,
        what its evaluate_network uses)."""
        return self.model_folder / "test" / "pose_cfg.yaml"

    @property
    def train_pose_config(self) -> Path:
        """The training pose config (train/pose_cfg.yaml: schedule, batch size, init_weights)."""
        return self.model_folder / "train" / "pose_cfg.yaml"


# --- models: DeepLabCut's test pose_cfg.yaml and a snapshot-N checkpoint ---


def checkpoint_files(prefix: Path) -> list[Path]:
    """The files of a TensorFlow checkpoint ``prefix`` (snapshot-N.index, .data-*, .meta)."""
    prefix = Path(prefix)
    return sorted(p for p in prefix.parent.glob(prefix.name + ".*") if p.is_file())


def snapshot_model(snapshot: Path) -> Model:
    """A DLC 2.x snapshot (``.../train/snapshot-N`` or any of its files) as a model: its bodyparts and
    inference config come from the shuffle's ``test/pose_cfg.yaml`` (else ``train/pose_cfg.yaml``)."""
    prefix = Path(snapshot)
    if prefix.suffix in (".index", ".meta") or prefix.suffix.startswith(".data-"):
        prefix = prefix.with_suffix("")
    if not (prefix.parent / (prefix.name + ".index")).is_file():
        raise DataError(
            f"{prefix}.index does not exist (weights.path); point it at a DeepLabCut 2.x TensorFlow "
            "snapshot, e.g. dlc-models/iteration-0/<task>-trainset95shuffle1/train/snapshot-200000."
        )
    for config in (
        prefix.parent.parent / "test" / "pose_cfg.yaml",
        prefix.parent / "pose_cfg.yaml",
    ):
        if config.is_file():
            break
    else:
        raise DataError(
            f"{prefix.parent.parent / 'test' / 'pose_cfg.yaml'} does not exist: a TensorFlow snapshot "
            "needs its shuffle's pose_cfg.yaml (test/ or train/ beside it); copy the whole model folder."
        )
    return Model(config, {"last": prefix}, list(read_pose_config(config)["all_joints_names"]))


def save_model(model: Model, folder: Path) -> Path:
    """Write ``model`` as a model folder: pose_cfg.yaml, its snapshot-N.* files, tensorflow_model.yaml."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = read_pose_config(model.pose_config)
    config.pop("init_weights", None)  # a path into the training project: set when loading
    (folder / POSE_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    names = {}
    for which, prefix in model.snapshots.items():
        for file in checkpoint_files(prefix):
            if not (folder / file.name).exists():
                shutil.copyfile(file, folder / file.name)
        names[which] = Path(prefix).name
    (folder / MODEL_FILE).write_text(
        yaml.safe_dump({"engine": ENGINE, "snapshots": names, "bodyparts": model.bodyparts}),
        encoding="utf-8",
    )
    return folder


def load_model(folder: Path) -> Model:
    """A model folder written by :func:`save_model` (or an MLflow run's ``model/`` artifact)."""
    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file() or not (folder / POSE_CONFIG).is_file():
        raise DataError(
            f"{folder} holds no TensorFlow model ({POSE_CONFIG} and {MODEL_FILE}); train it again "
            "(`dvc repro` re-runs its train stage)."
        )
    saved = yaml.safe_load((folder / MODEL_FILE).read_text(encoding="utf-8"))
    snapshots = {which: folder / name for which, name in saved["snapshots"].items()}
    return Model(folder / POSE_CONFIG, snapshots, list(saved["bodyparts"]))


def own_training_images(model: Model) -> set[str] | None:
    """``<folder>/<file>`` of the frames a DLC 2.x snapshot was trained on (its shuffle's train split in
    DeepLabCut's Documentation_data-*.pickle), or None when the model is not inside a DeepLabCut
    project (our model folders: their training frames are the condition's train set)."""
    import pickle

    train_dir = Path(model.snapshot("last")).parent
    config = train_dir / "pose_cfg.yaml"
    if train_dir.name != "train" or not config.is_file():
        return None
    metadataset = read_pose_config(config).get("metadataset")
    documentation = train_dir.parents[3] / str(
        metadataset
    )  # <project>/dlc-models/iteration-N/<shuffle>/train
    if not metadataset or not documentation.is_file():
        return None
    with open(documentation, "rb") as handle:
        train_data, _, _, _ = pickle.load(handle)  # the entries of its train split, in index order
    return {"/".join(entry["image"][-2:]) for entry in train_data}


def save_pretrained(training_set: TrainingSet, snapshot: Path, folder: Path) -> None:
    """The pre-trained model's files: a model folder (:func:`save_model`)."""
    config = read_pose_config(training_set.pose_config)
    save_model(
        Model(training_set.pose_config, {"last": snapshot}, list(config["all_joints_names"])),
        folder,
    )


def pretrained_model(folder: Path, bodyparts: list[str]) -> Model:
    """The model :func:`save_pretrained` wrote."""
    return load_model(folder)


def read_pose_config(path: Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def save_weights_only(snapshot: Path, path: Path) -> Path:
    """Copy a checkpoint's files under the prefix ``path`` (TensorFlow checkpoints hold no optimizer
    state worth dropping: DeepLabCut restores the weights only)."""
    for file in checkpoint_files(snapshot):
        shutil.copyfile(
            file, Path(path).parent / (Path(path).name + file.name[len(Path(snapshot).name) :])
        )
    return Path(path)


# --- the training set ---


@contextmanager
def _no_weight_download(checkpoint: str):
    """While DeepLabCut builds a TensorFlow training set, answer its ImageNet-weights check (which
    downloads them) with ``checkpoint``: the initial weights are set in train/pose_cfg.yaml afterwards."""
    from deeplabcut.generate_training_dataset import trainingsetmanipulation as tsm

    original = tsm.auxfun_models.check_for_weights
    tsm.auxfun_models.check_for_weights = lambda net_type, parent_path: checkpoint
    try:
        yield
    finally:
        tsm.auxfun_models.check_for_weights = original


def make_training_set(frames: TrainingFrames, project_dir: Path, net_type: str) -> TrainingSet:
    """The project of :func:`src.engine.shared.write_project`, with a TensorFlow training set."""
    import_tensorflow()
    import deeplabcut

    project_dir = Path(project_dir)
    train, test = _shared.write_project(frames, project_dir)
    with _no_weight_download("set-by-src.engine.tensorflow.train"):
        deeplabcut.create_training_dataset(
            str(project_dir / "config.yaml"),
            Shuffles=[SHUFFLE],
            trainIndices=[train],
            testIndices=[test],
            net_type=net_type,
            engine=deeplabcut.Engine.TF,
            userfeedback=False,
        )
    (model_folder,) = (project_dir / "dlc-models" / "iteration-0").glob(f"*shuffle{SHUFFLE}")
    return _shared.save_training_set(
        TrainingSet(project_dir / "config.yaml", model_folder, len(train), len(test))
    )


def open_training_set(project_dir: Path) -> TrainingSet | None:
    """The complete training set an earlier (interrupted) training made in ``project_dir``, if any."""
    return _shared.open_training_set(project_dir, TrainingSet)


def net_type_of(model_cfg) -> str:
    """DeepLabCut's TensorFlow net_type of a model choice: its ``net_type`` (resnet_50 | resnet_101 |
    resnet_152 | mobilenet_v2_* | efficientnet-b*). A timm ``backbone`` swap (model=resnet_18) exists
    in the PyTorch engine only: the TensorFlow engine then trains the net_type it is built on."""
    net_type = str(model_cfg.net_type)
    if model_cfg.get("backbone"):
        print(
            f"engine=tensorflow: model={model_cfg.name} swaps in timm's {model_cfg.backbone}, which only "
            f"the PyTorch engine has; training DeepLabCut's TensorFlow {net_type} (model.net_type)",
            flush=True,
        )
    return net_type


def prepare_training(
    frames: TrainingFrames, project_dir: Path, model_cfg, training_cfg, reuse: bool = False
) -> tuple[TrainingSet, dict, dict]:
    """make_training_set (or the complete one in ``project_dir``), then the pose_cfg.yaml updates of
    the training profile. Returns the training set, its pose config with the updates, the updates."""
    # absolute: DeepLabCut's TensorFlow training changes into its train/ folder, where a path
    # relative to ours (paths.models_dir=data/models) would point nowhere
    project_dir = Path(project_dir).absolute()
    training_set = (open_training_set(project_dir) if reuse else None) or make_training_set(
        frames, project_dir, net_type_of(model_cfg)
    )
    pose_config = read_pose_config(training_set.train_pose_config)
    image_wh = largest_image_size(Path(frames.prepared_dir) / i for i in frames.selection["image"])
    updates = pose_config_updates(training_cfg, image_wh, training_set.n_train)
    return training_set, pose_config | updates, updates


def pose_config_updates(training_cfg, image_wh: tuple[int, int], n_train: int) -> dict:
    """train/pose_cfg.yaml keys for a training profile. The budget is ``training.iterations`` weight
    updates at ``training.batch_size`` (DeepLabCut's TensorFlow engine counts iterations itself);
    the learning rate steps down at ``training.lr_drops``; Adam, as the profile's AdamW is Adam with
    weight decay, which DeepLabCut's TensorFlow engine does not have."""
    iterations = int(training_cfg.iterations)
    rates = [float(training_cfg.learning_rate)] + [
        float(lr) for lr in training_cfg.lr_drops.learning_rates
    ]
    ends = [max(1, round(f * iterations)) for f in training_cfg.lr_drops.at_fraction] + [iterations]
    width, height = image_wh
    return {
        "batch_size": int(training_cfg.batch_size),
        "optimizer": "adam",
        "multi_step": [[lr, end] for lr, end in zip(rates, ends, strict=True)],
        "iterations": iterations,  # ours: the total, kept across a resume
        "save_iters": max(1, math.ceil(iterations / int(training_cfg.evaluations))),
        "display_iters": 1,  # learning_stats.csv gets every iteration's loss (streamed to MLflow)
        "crop_size": [width, height],  # the whole frame, as for the PyTorch engine
        # DeepLabCut refuses images under 64 x 64 after its scaling (global_scale 0.8, jitter down to
        # 0.5): small frames (the embedded cohort's 200 x 160, the tests' 96 x 80) need a lower floor.
        "min_input_size": 16,
        "deterministic": False,
        "seed": int(training_cfg.seed),
    }


def budget(updates: dict) -> dict:
    """The derived training budget logged as MLflow params."""
    return {"derived.iterations": int(updates["iterations"])}


def resume_progress(snapshot: Path, updates: dict) -> str:
    """How far a resumed training had come, for the message (iterations counted from its start)."""
    return f"iteration {snapshot_epoch(snapshot)}, of {int(updates['iterations'])} to train"


def epochs_for(iterations: int, batch_size: int, n_train: int) -> int:
    return _shared.epochs_for(iterations, batch_size, n_train)


# --- training ---


def snapshot_epoch(snapshot: Path) -> int:
    """The iteration a DeepLabCut TensorFlow snapshot was saved at (snapshot-<iteration>)."""
    return int(Path(snapshot).name.split(".")[0].rsplit("-", 1)[1])


snapshot_iteration = snapshot_epoch


def snapshots(model_folder: Path) -> dict[str, Path]:
    """{'best': ..., 'last': ...}: the newest whole snapshot (the TensorFlow engine keeps no best)."""
    found = _whole_snapshots(Path(model_folder) / "train")
    if not found:
        raise FileNotFoundError(f"no snapshot-*.index in {Path(model_folder) / 'train'}")
    return {"best": found[-1], "last": found[-1]}


def _whole_snapshots(train_dir: Path) -> list[Path]:
    """Snapshot prefixes whose .index and .data files exist, oldest first."""
    found = []
    for index in train_dir.glob("snapshot-*.index"):
        prefix = index.with_suffix("")
        if list(train_dir.glob(prefix.name + ".data-*")):
            found.append(prefix)
    return sorted(found, key=snapshot_epoch)


def resume_point(model_folder: Path) -> Path | None:
    """The newest snapshot of an interrupted training that TensorFlow can read, else None; one a kill
    left half-written is set aside (its files renamed ``*.partial``)."""
    tf = import_tensorflow()
    for prefix in reversed(_whole_snapshots(Path(model_folder) / "train")):
        try:
            tf.train.load_checkpoint(str(prefix))
        except Exception:  # truncated index or data file
            for file in checkpoint_files(prefix):
                file.rename(file.with_name(file.name + ".partial"))
            continue
        return prefix
    return None


def weight_init(snapshot: Path, conversion: list[int] | None) -> dict:
    """Start from a TensorFlow snapshot: with ``conversion`` (every bodypart in the snapshot, in our
    order) all its variables, heads included; else the backbone only. A conversion that reorders
    the bodyparts also starts from the backbone only (the heads' channels are not permuted)."""
    if conversion is not None and list(conversion) != list(range(len(conversion))):
        print(
            "engine=tensorflow: the initial model orders its bodyparts differently: only its backbone "
            "is transferred",
            flush=True,
        )
        conversion = None
    return {
        "init_weights": str(snapshot),
        "all_variables": conversion is not None,
        "conversion": conversion,
    }


def random_weight_init(pose_config: dict, path: Path, seed: int) -> dict:
    """A locally built, seeded random-initialised backbone checkpoint (no download) that trains.

    DeepLabCut builds its ResNet with ``is_training=False``: batch norm uses the stored statistics,
    which for a fresh network (mean 0, variance 1) make the activations explode (NaN loss at the first
    iteration). So: conv1's batch-norm statistics are measured on the training frames, and the last
    batch norm of every residual block gets gamma 0, so each block starts as its shortcut.
    """
    tf = import_tensorflow()
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.nnets import PoseNetFactory
    from deeplabcut.utils.auxfun_videos import imread

    cfg = load_config_from_dict(pose_config, load_config)
    images = sorted(Path(cfg["project_path"]).glob("labeled-data/*/*.png"))[:16]
    if not images:
        raise DataError(
            f"{cfg['project_path']}/labeled-data holds no frames to initialise conv1 from"
        )
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    depth = cfg["net_type"].split("_")[1]
    scope = f"resnet_v1_{depth}"
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        inputs = tf.compat.v1.placeholder(tf.float32, shape=[1, None, None, 3])
        PoseNetFactory.create(cfg).extract_features(inputs)
        conv1 = graph.get_tensor_by_name(f"{scope}/conv1/Conv2D:0")
        variables = {v.op.name: v for v in tf.compat.v1.global_variables()}
        with tf.compat.v1.Session(graph=graph, config=session_config()) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            outputs = [
                sess.run(conv1, {inputs: imread(str(i), mode="skimage")[None].astype(float)})
                for i in images
            ]
            values = np.concatenate([o.reshape(-1, o.shape[-1]) for o in outputs])
            sess.run(variables[f"{scope}/conv1/BatchNorm/moving_mean"].assign(values.mean(0)))
            sess.run(variables[f"{scope}/conv1/BatchNorm/moving_variance"].assign(values.var(0)))
            for name, variable in variables.items():
                if name.endswith("bottleneck_v1/conv3/BatchNorm/gamma"):
                    sess.run(variable.assign(tf.zeros_like(variable)))
            backbone = [v for n, v in variables.items() if n.startswith(scope + "/")]
            tf.compat.v1.train.Saver(backbone).save(sess, str(path), write_meta_graph=False)
    return {"init_weights": str(path), "all_variables": False, "conversion": None}


def load_config_from_dict(pose_config: dict, load_config) -> dict:
    """DeepLabCut's pose config (with its defaults filled in) for a pose_cfg dict."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "pose_cfg.yaml"
        file.write_text(yaml.safe_dump(pose_config), encoding="utf-8")
        return load_config(str(file))


class HubWeightsUnavailable(DataError):
    """DeepLabCut's ImageNet checkpoint for the TensorFlow engine is not here and cannot be downloaded."""


def hub_weights(net_type: str) -> Path:
    """DeepLabCut's ImageNet checkpoint for ``net_type`` (downloaded by DeepLabCut when reachable)."""
    from deeplabcut.utils import auxfun_models, auxiliaryfunctions

    parent = auxiliaryfunctions.get_deeplabcut_path()
    target = parent / auxfun_models.MODELTYPE_FILEPATH_MAP[net_type]
    try:
        checkpoint = auxfun_models.check_for_weights(net_type, parent)
        found = bool(list(Path(checkpoint).parent.glob(Path(checkpoint).name + "*")))
    except Exception:  # offline: URLError, HTTPError, ...
        found = False
    if not found:
        raise HubWeightsUnavailable(
            f"weights=hub with engine=tensorflow needs DeepLabCut's ImageNet checkpoint {target}, which "
            'cannot be downloaded here. Fix: on a machine with internet run `python -c "from '
            "deeplabcut.utils import auxfun_models as m, auxiliaryfunctions as a; "
            f"m.check_for_weights('{net_type}', a.get_deeplabcut_path())\"` and copy "
            f"{target.name}* into {target.parent}, or choose weights=healthy_adults|snapshot|random."
        ) from None
    return target


def fresh_weight_init(kind: str, pose_config: dict, path: Path, seed: int) -> dict:
    """Start without a trained pose model: ``random`` (seeded, built at ``path``) or ``hub``."""
    if kind == "hub":
        return {"init_weights": str(hub_weights(pose_config["net_type"])), "all_variables": False}
    return random_weight_init(pose_config, path, seed)


def _shifted_schedule(multi_step: list, done: int) -> list:
    """DeepLabCut restarts its learning-rate schedule at a resumed snapshot: the steps still ahead."""
    return [[lr, end - done] for lr, end in multi_step if end > done]


START_FILE = (
    "start_iteration.yaml"  # in train/: the iteration DeepLabCut counted from (a snapshot's N)
)


def train(
    training_set: TrainingSet,
    updates: dict,
    weight_init: dict | None,
    resume_from: Path | None = None,
) -> None:
    """Train with DeepLabCut's ``train_network`` (TensorFlow) in a child process; snapshots land in
    the model folder's train/. ``resume_from``: a snapshot of this training; training continues from
    its weights and iteration up to the same total (the Adam moments start afresh).

    Started from a ``snapshot-N`` with all its variables, DeepLabCut counts iterations from N: the
    snapshots of this training are then snapshot-(N + k).
    """
    pose_config_path = training_set.train_pose_config
    config = read_pose_config(pose_config_path)
    total = int(updates["iterations"])
    config.update({k: v for k, v in updates.items() if k != "iterations"})
    stats = learning_stats_file(training_set)
    start_file = pose_config_path.with_name(START_FILE)
    before = pd.DataFrame(columns=["step", "losses/train.total_loss", "learning_rate"])
    if resume_from is not None:
        start = int(yaml.safe_load(start_file.read_text())["start"]) if start_file.is_file() else 0
        done = snapshot_epoch(resume_from) - start
        if done >= total:
            return  # it had finished training; only what came after was interrupted
        config["init_weights"] = str(resume_from)  # "snapshot" in its name: every variable, from N
        config["multi_step"] = _shifted_schedule(config["multi_step"], done)
        if stats.is_file():  # DeepLabCut rewrites the file: keep the rows before the snapshot
            before = read_learning_stats(stats)
            before = before[before["step"] <= start + done]
    else:
        done, start = 0, 0
        if weight_init is not None:
            config["init_weights"] = str(weight_init["init_weights"])
            named_snapshot = "snapshot" in Path(config["init_weights"]).name
            if weight_init.get("all_variables") and named_snapshot:
                start = snapshot_epoch(config["init_weights"])
            elif named_snapshot:  # other bodyparts: the backbone only, iterations from 0
                config["init_weights"] = _backbone_only(config["init_weights"], training_set)
        start_file.write_text(yaml.safe_dump({"start": start}), encoding="utf-8")
    if config.get("init_weights"):  # read after DeepLabCut changed into train/: absolute
        config["init_weights"] = str(Path(config["init_weights"]).absolute())
    pose_config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    run_child(
        ["train", str(training_set.project_config), str(total - done), str(config["save_iters"])]
    )
    # One table of every iteration, in the PyTorch engine's column names (plots, MLflow artifact).
    table = read_learning_stats(stats)
    if len(before):
        table = pd.concat([before, table], ignore_index=True)
    table.to_csv(stats, index=False)


def _backbone_only(snapshot: str, training_set: TrainingSet) -> str:
    """A copy of a snapshot's backbone variables, named so that DeepLabCut restores the backbone only
    (bodyparts differ: the heads start afresh)."""
    tf = import_tensorflow()
    reader = tf.train.load_checkpoint(snapshot)
    target = training_set.model_folder / "train" / "init-backbone"
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        kept = [
            tf.Variable(reader.get_tensor(name), name=name)
            for name in reader.get_variable_to_shape_map()
            if name.startswith("resnet_v1")
        ]
        sess.run(tf.compat.v1.global_variables_initializer())
        tf.compat.v1.train.Saver(kept).save(sess, str(target), write_meta_graph=False)
    return str(target)


def read_learning_stats(path: Path) -> pd.DataFrame:
    """DeepLabCut TensorFlow's learning_stats.csv (rows ``iteration, loss, lr``, no header) in the
    PyTorch engine's column names; a file already in those names is read as it is."""
    first = Path(path).read_text(encoding="utf-8").split("\n", 1)[0]
    if first.startswith("step"):
        return pd.read_csv(path)
    return pd.read_csv(
        path,
        header=None,
        names=["step", "losses/train.total_loss", "learning_rate"],
        skipinitialspace=True,
    )


def learning_stats_file(training_set: TrainingSet) -> Path:
    return training_set.train_pose_config.with_name("learning_stats.csv")


def set_threads(threads: int) -> None:
    """TensorFlow's CPU threads for this process's sessions and training children (0: TensorFlow's
    default, the machine's cores)."""
    global _threads
    _threads = int(threads)


def session_config():
    import tensorflow as tf

    config = tf.compat.v1.ConfigProto()
    if _threads > 0:
        config.intra_op_parallelism_threads = _threads
        config.inter_op_parallelism_threads = 1
    return config


def run_child(arguments: list[str]) -> None:
    """``python -m src.engine.tensorflow <arguments>`` in a child that dies with this process; its
    output goes to this process's; a failure raises with the child's exit status."""
    env = os.environ | (
        {"TF_NUM_INTRAOP_THREADS": str(_threads), "TF_NUM_INTEROP_THREADS": "1"} if _threads else {}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "src.engine.tensorflow", *arguments],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        preexec_fn=_die_with_parent,
    )
    try:
        code = process.wait()
    except BaseException:
        process.kill()
        process.wait()
        raise
    if code != 0:
        raise RuntimeError(
            f"DeepLabCut's TensorFlow training failed (exit status {code}); its error is printed above"
        )


def _die_with_parent() -> None:
    """In the child: SIGKILL when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    with suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _child_train(project_config: str, iterations: str, save_iters: str) -> None:
    tf = import_tensorflow()
    import deeplabcut
    from deeplabcut.pose_estimation_tensorflow.core import train as dlc_train

    # DeepLabCut's loader thread: an error in it (a bad frame, an augmentation failure) would leave
    # the training waiting for batches forever. It ends this process instead; only the errors of
    # DeepLabCut closing the session at the end of a training are its normal exit.
    load_and_enqueue = dlc_train.load_and_enqueue

    def load_or_exit(*arguments):
        try:
            load_and_enqueue(*arguments)
        except (tf.errors.CancelledError, tf.errors.AbortedError):
            return
        except RuntimeError as error:
            if "closed Session" in str(error):
                return
            _exit_with_traceback()
        except BaseException:
            _exit_with_traceback()

    dlc_train.load_and_enqueue = load_or_exit

    # DeepLabCut's train_network reloads the logging module (a new root logger, without the filter
    # that turns its update records into the progress bar); its setup_logging comes after that
    setup_logging = dlc_train.setup_logging

    def setup_logging_and_count() -> None:
        setup_logging()
        progress.count_on_new_root()

    dlc_train.setup_logging = setup_logging_and_count

    # DeepLabCut logs every update (display_iters 1, for learning_stats.csv): a progress bar instead
    label = progress.training_label(Path(project_config).parent)
    with progress.counting_records(
        progress.bar(int(iterations), label), progress.TENSORFLOW_UPDATE
    ):
        deeplabcut.train_network(
            project_config,
            shuffle=SHUFFLE,
            max_snapshots_to_keep=2,
            display_iters=1,
            save_iters=int(save_iters),
            max_iters=int(iterations),
            engine=deeplabcut.Engine.TF,
        )


def _exit_with_traceback() -> None:
    import traceback

    traceback.print_exc()
    print("DeepLabCut's TensorFlow data loader failed: training stops", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


# --- inference ---


def predict(
    pose_config: Path | dict, snapshot: Path, images: list[Path], device: str | None = "cpu"
) -> np.ndarray:
    """DeepLabCut's TensorFlow inference on image files, as its ``evaluate_network`` runs it (batch 1,
    images read with its ``imread``); returns (n_images, n_bodyparts, 3) of x, y, likelihood."""
    tf = import_tensorflow()
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.core import predict as dlc_predict
    from deeplabcut.pose_estimation_tensorflow.util.logging import setup_logging  # noqa: F401
    from deeplabcut.utils.auxfun_videos import imread

    if isinstance(pose_config, dict):
        cfg = load_config_from_dict(pose_config, load_config)
    else:
        cfg = load_config(str(pose_config))
    cfg["init_weights"] = str(snapshot)
    cfg["batch_size"] = 1
    sess, inputs, outputs = dlc_predict.setup_pose_prediction(cfg)
    try:
        poses = []
        for image in images:
            frame = imread(str(image), mode="skimage")
            outputs_np = sess.run(outputs, feed_dict={inputs: frame[None].astype(float)})
            scmap, locref = dlc_predict.extract_cnn_output(outputs_np, cfg)
            poses.append(dlc_predict.argmax_pose_predict(scmap, locref, cfg["stride"]))
    finally:
        sess.close()
        tf.compat.v1.reset_default_graph()
    return np.stack(poses) if poses else np.empty((0, 0, 3))


# --- video analysis: the inference of DeepLabCut's TensorFlow analyze_videos, frame by frame ---


@dataclass
class VideoRunner:
    """A TensorFlow session holding one snapshot, as DeepLabCut's analyze_videos sets it up."""

    cfg: dict
    session: object
    inputs: object
    outputs: object
    engine: str = ENGINE


def video_inference_runner(
    model: Model, snapshot: str, batch_size: int, device: str
) -> VideoRunner:
    """The session for ``model.snapshot(snapshot)`` (batch size 1: DeepLabCut's ``getpose``)."""
    import_tensorflow()
    from deeplabcut.pose_estimation_tensorflow.config import load_config
    from deeplabcut.pose_estimation_tensorflow.core import predict as dlc_predict

    cfg = load_config(str(model.pose_config))
    cfg["init_weights"] = str(model.snapshot(snapshot))
    cfg["batch_size"] = 1
    return VideoRunner(cfg, *dlc_predict.setup_pose_prediction(cfg))


def video_inference(runner: VideoRunner, video: Path) -> list[dict]:
    """DeepLabCut's ``getpose`` on every decoded frame (RGB, as its analyze_videos reads them)."""
    import cv2
    from deeplabcut.pose_estimation_tensorflow.core import predict as dlc_predict

    capture = cv2.VideoCapture(str(video))
    predictions = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            pose = dlc_predict.getpose(
                rgb, runner.cfg, runner.session, runner.inputs, runner.outputs
            )
            predictions.append({"bodyparts": pose[None]})
    finally:
        capture.release()
    return predictions


def predictions_table(
    predictions: list[dict], scorer: str, pose_config: dict, folder: Path, prefix: str
) -> pd.DataFrame:
    """DeepLabCut's predictions table (scorer/bodyparts/coords, one row per frame), written as
    ``<folder>/<prefix>.h5`` and ``.csv`` as its analyze_videos writes them."""
    columns = pd.MultiIndex.from_product(
        [[scorer], list(pose_config["all_joints_names"]), ["x", "y", "likelihood"]],
        names=["scorer", "bodyparts", "coords"],
    )
    values = np.stack([p["bodyparts"][0] for p in predictions]).reshape(len(predictions), -1)
    table = pd.DataFrame(values, columns=columns, index=range(len(predictions)))
    table.to_hdf(Path(folder) / f"{prefix}.h5", key="df_with_missing", format="table", mode="w")
    table.to_csv(Path(folder) / f"{prefix}.csv")
    return table


# The PyTorch engine's filters work on any DeepLabCut predictions table.
filter_predictions = _shared.filter_predictions


# --- the rest of the engine contract (src/engine/contract.py) ---


def weight_updates(iterations: int, batch_size: int, n_train: int) -> int:
    """Weight updates a training of ``training.iterations`` runs: the iterations, plus one
    (DeepLabCut's TensorFlow engine counts iterations itself)."""
    return iterations + 1


def snapshot_bodyparts(snapshot: Path) -> list[str]:
    """The bodyparts of a DLC 2.x TensorFlow ``snapshot-N`` (``weights.path``), from its shuffle's
    test/pose_cfg.yaml; checked as :func:`snapshot_model` loads it, read as YAML without TensorFlow
    (the check and prepare stages train nothing)."""
    prefix = snapshot.with_suffix("") if snapshot.suffix in (".index", ".meta") else snapshot
    config = prefix.parent.parent / "test" / POSE_CONFIG
    if not config.is_file():
        config = prefix.parent / POSE_CONFIG
    if not prefix.with_name(prefix.name + ".index").is_file() or not config.is_file():
        raise DataError(
            f"{prefix}.index or its shuffle's test/pose_cfg.yaml does not exist (weights.path); point "
            "it at a DeepLabCut 2.x TensorFlow snapshot, e.g. "
            "dlc-models/iteration-0/<task>-trainset95shuffle1/train/snapshot-200000."
        )
    return list(yaml.safe_load(config.read_text(encoding="utf-8"))["all_joints_names"])


def snapshot_metadata(snapshot: Path) -> dict:
    """What DeepLabCut saved with a snapshot: nothing beside a TensorFlow checkpoint ({}); its
    name (snapshot-<iteration>) says its iteration (:func:`snapshot_epoch`)."""
    return {}


def write_dlc_project(
    folder: Path, final: Path, model: Model, project_config: Path, snapshot: str, batch_size: int
) -> dict:
    """Not offered: ``python -m src.export`` writes DeepLabCut 3 PyTorch projects."""
    raise DataError(
        "this is a DeepLabCut TensorFlow model; export writes DeepLabCut 3 PyTorch projects: "
        "export a model trained with engine=pytorch."
    )


TIMING_PROBE = False  # the time estimate is unknown until a training of the setting was measured
auto_device = _shared.auto_device  # training.device=auto, as the PyTorch engine
write_labelling_config = _shared.write_labelling_config  # DeepLabCut's config.yaml, engine-neutral


def timing_probe(request: dict) -> dict | None:
    """No probe of TensorFlow's updates (the estimate then waits for a measured training)."""
    return None


if __name__ == "__main__":
    # The training child (run_child): whatever happens, leave with an exit status, even though
    # DeepLabCut's loader thread is still alive after an error.
    command, *arguments = sys.argv[1:]
    status = 0
    try:
        if command == "train":
            _child_train(*arguments)
        else:
            raise SystemExit(f"unknown command {command!r}")
    except BaseException:
        import traceback

        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
