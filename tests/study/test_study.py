"""One configuration, every command: `python -m src.params <overrides>` chooses the study for all of them."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.errors import DataError
from src.study.config import cell_config, read_study, study_config, write_study

REPO = Path(__file__).resolve().parents[2]
REACHING = REPO.parent / "shared" / "fixtures" / "dlc-reaching"
BRING_IN = ["data=dlc_project", f"data.root={REACHING}", "data.name=reaching", "split=frames"]
# Every documented command that composes conf/, as its --cfg job form (composition only, nothing runs).
COMMANDS = {
    "one condition": ["src.train", "labelled_frames=1"],
    "frames sweep": ["src.train", "+sweep=frames"],
    "cutoff sweep": ["src.train", "+sweep=cutoff"],
    "evaluate": ["src.evaluate", "labelled_frames=1"],
    "prepare": ["src.prepare"],
    "report": ["src.report"],
    "analyze": ["src.analyze"],
}


@pytest.fixture
def repo(tmp_path):
    """The code and configuration in a scratch folder: the study file written there is its own."""
    for folder in ("src", "conf"):
        shutil.copytree(
            REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    (tmp_path / "conf" / "study" / "current.yaml").unlink(missing_ok=True)
    return tmp_path


def run(repo: Path, module: str, *args: str) -> str:
    """`python -m module args` in ``repo`` (or `python -c ...` where ``module`` is ``-c``)."""
    command = [sys.executable, module] if module == "-c" else [sys.executable, "-m", module]
    done = subprocess.run([*command, *args], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def job_config(repo: Path, module: str, *overrides: str) -> dict:
    """What the command would run with: Hydra's own `--cfg job` print (the first document for a sweep)."""
    text = run(repo, module, *overrides, "--cfg", "job")
    return yaml.safe_load(text.split("\n---")[0])


# Runs each [module, *arguments] as `python -m` does (runpy), in one process, and prints what each
# printed as a JSON list: the heavy imports are paid once for many `--cfg job` prints.
RUN_MODULES = """
import contextlib, io, json, runpy, sys
printed = []
for module, *args in json.loads(sys.argv[1]):
    sys.argv = [module, *args]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            if stop.code:
                raise
    printed.append(out.getvalue())
print(json.dumps(printed))
"""


def job_configs(repo: Path, commands: dict[str, list[str]]) -> dict[str, dict]:
    """:func:`job_config` of every command, by name, composed in one process."""
    jobs = [[*command, "--cfg", "job"] for command in commands.values()]
    printed = json.loads(run(repo, "-c", RUN_MODULES, json.dumps(jobs)).strip().splitlines()[-1])
    return {name: yaml.safe_load(text.split("\n---")[0]) for name, text in zip(commands, printed)}


def test_every_command_acts_on_the_study_and_group_overrides_still_work(repo):
    assert {n: c["data"]["name"] for n, c in job_configs(repo, COMMANDS).items()} == {
        n: "synthetic_clinical" for n in COMMANDS
    }
    printed = run(repo, "src.params", *BRING_IN)
    assert "data set reaching (dlc_project" in printed

    random_weights = ["src.train", "labelled_frames=1", "weights=random"]
    configs = job_configs(repo, COMMANDS | {"random weights": random_weights})
    random = configs.pop("random weights")
    used = {name: config["data"] for name, config in configs.items()}
    assert {name: (d["name"], d["kind"], d["root"]) for name, d in used.items()} == {
        name: ("reaching", "dlc_project", str(REACHING)) for name in COMMANDS
    }
    params = yaml.safe_load((repo / "params.yaml").read_text())  # what `dvc repro` reads
    assert (params["data"]["name"], params["data"]["root"]) == ("reaching", str(REACHING))

    assert (random["weights"]["kind"], random["data"]["name"]) == ("random", "reaching")

    run(repo, "src.params", "model=resnet_50")  # a later choice adds to the study
    cfg = job_config(repo, "src.train", "labelled_frames=1")
    assert (cfg["model"]["name"], cfg["data"]["name"]) == ("resnet_50", "reaching")

    assert "moved to conf/study/previous.yaml" in run(repo, "src.params", "--demo")
    assert (
        job_config(repo, "src.train", "labelled_frames=1")["data"]["name"] == "synthetic_clinical"
    )
    assert (repo / "conf" / "study" / "previous.yaml").is_file()


def test_a_bad_override_leaves_the_study_as_it_was(repo):
    run(repo, "src.params", *BRING_IN)
    before = (repo / "conf" / "study" / "current.yaml").read_bytes()
    done = subprocess.run(
        [sys.executable, "-m", "src.params", "data=no_such_kind"], cwd=repo, capture_output=True
    )
    assert done.returncode != 0
    assert (repo / "conf" / "study" / "current.yaml").read_bytes() == before


def test_study_file_from_overrides(tmp_path):
    conf = REPO / "conf"
    defaults, values = study_config(
        ["data=dlc_project", "data.root=/p q", "pipeline.conditions=[0,2]"], conf
    )
    assert defaults == [{"override /data": "dlc_project"}]
    assert values == {"data": {"root": "/p q"}, "pipeline": {"conditions": [0, 2]}}

    path = tmp_path / "current.yaml"
    write_study(["data=dlc_project", "data.root=/a", "data.name=x"], path)
    write_study(["data.root=/b", "split=frames"], path)
    assert read_study(path) == (
        [{"override /data": "dlc_project"}, {"override /split": "frames"}],
        {"data": {"root": "/b", "name": "x"}},
    )
    with pytest.raises(DataError, match="cannot be kept in a study"):
        study_config(["~data"], conf)


def test_a_cell_config_is_the_study_with_the_cells_overrides_and_leaves_the_study_alone():
    from omegaconf import OmegaConf

    from src.params import configuration
    from src.study.plan import pipeline_cells

    cfg = configuration(["split=kfold"])
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    OmegaConf.set_struct(cfg, True)
    cell = pipeline_cells([6], [2])["fold2-6"]
    made = cell_config(cfg, cell["overrides"])
    assert (made.labelled_frames, made.split.fold) == (6, 2)
    assert (cfg.labelled_frames, cfg.split.fold) != (6, 2)  # a copy
    assert OmegaConf.to_container(made) | {"labelled_frames": 0, "split": None} == (
        OmegaConf.to_container(cfg) | {"labelled_frames": 0, "split": None}
    )
    with pytest.raises(DataError, match=r"pipeline.cells: split.fodl=2: split.fodl is not a key"):
        cell_config(cfg, "labelled_frames=6 split.fodl=2")
