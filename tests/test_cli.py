"""Every command explains itself (--help) and refuses a bad override or value in one line, exit status 2.

The commands run for real: ``python -m src.<stage>`` in a subprocess. The stages' help and typo cases run
in one subprocess that runs each stage as ``python -m`` does (runpy), so the heavy imports are paid once.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from src.errors import ConfigError
from src.params import configuration
from tests.conftest import REACHING, REPO

# Every entry point but src.params, src.server and src.label_round (not Hydra apps):
# `if __name__ == "__main__"` in src/*.py.
STAGES = sorted(
    p.stem
    for p in (REPO / "src").glob("*.py")
    if '__name__ == "__main__"' in p.read_text(encoding="utf-8")
    and p.stem not in ("params", "server", "label_round")
)
UNKNOWN_KIND = (
    "error: data=dlc_projct: unknown data set kind 'dlc_projct'; choose one of: dlc_project, "
    "lightning_pose, synthetic, videos (conf/data/)"
)
# Runs each (stage, arguments) as `python -m src.<stage> <arguments>` does, in one process; prints
# {index: {code, out, err}} as JSON.
RUN_STAGES = """
import contextlib, io, json, runpy, sys
results = {}
for index, (stage, args) in enumerate(json.loads(sys.argv[1])):
    sys.argv = [f"src/{stage}.py", *args]
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module(f"src.{stage}", run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code or 0
        except BaseException:
            import traceback; traceback.print_exc()
            code = "raised"
    results[index] = {"code": code, "out": out.getvalue(), "err": err.getvalue()}
print(json.dumps(results))
"""
CASES = {
    "help": ["--help"],
    "unknown kind": ["data=dlc_projct"],
    "unknown key": ["trainig.threads=1"],
    "unknown flag": ["--bogus"],
    "bad hydra option": ["--cfg=jobb"],
}


def python(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def stage_runs() -> dict[tuple[str, str], dict]:
    """Each stage run with each case's arguments (nothing runs: help or a refused override)."""
    jobs = [(stage, case) for stage in STAGES for case in CASES]
    done = python(REPO, "-c", RUN_STAGES, json.dumps([(s, CASES[c]) for s, c in jobs]))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {job: results[str(index)] for index, job in enumerate(jobs)}


@pytest.fixture
def repo(tmp_path) -> Path:
    """The code and configuration in a scratch folder: its study file and params.yaml are its own."""
    for folder in ("src", "conf"):
        shutil.copytree(
            REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    for study in (tmp_path / "conf" / "study").glob("*.yaml"):
        study.unlink()
    shutil.copy(REPO / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def one_line_error(done: subprocess.CompletedProcess | dict) -> str:
    """The single `error: ...` line of a refused command (exit status 2, no traceback)."""
    code = done["code"] if isinstance(done, dict) else done.returncode
    err = done["err"] if isinstance(done, dict) else done.stderr
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    return err.strip()


def test_every_entry_point_uses_the_shared_help_and_errors():
    assert {"train", "check", "report", "prepare", "evaluate"} <= set(STAGES)
    for stage in STAGES:
        source = (REPO / "src" / f"{stage}.py").read_text(encoding="utf-8")
        assert "\n@stage\ndef main(" in source and "@hydra.main" not in source, stage


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_params_help_is_a_short_usage(flag):
    done = python(REPO, "-m", "src.params", flag)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-2000:]
    out = done.stdout
    assert out.startswith("usage: python -m src.params")
    assert "Common overrides:\n    data=dlc_project|lightning_pose|videos|synthetic" in out
    assert "Examples:\n    python -m src.params" in out
    assert "data: dlc_project, lightning_pose, synthetic, videos" in out  # the config groups
    assert len(out.splitlines()) <= 50
    listed = out.split("(stages: ")[1].split(";")[0].replace("\n", " ").split(", ")
    assert sorted(listed) == STAGES  # every stage's help is named, no more
    assert "python -m src.label_round" in out and "python -m src.server" in out


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_help_says_what_it_does_with_examples_then_the_groups(stage, stage_runs):
    for case in ("help",):
        run = stage_runs[stage, case]
        assert run["code"] == 0 and "Traceback" not in run["err"], run["err"][-2000:]
        out = run["out"]
        doc = (REPO / "src" / f"{stage}.py").read_text(encoding="utf-8").split('"""')[1]
        purpose = doc.split("\n\n")[0].replace("``", "")  # the docstring's first paragraph
        assert out.startswith(purpose), out[:500]
        assert re.search(rf"\nExamples:\n(    .*\n)*    python -m src\.{stage}\b", out), out
        groups = out.index("Config groups")
        assert out.index("Examples:") < groups
        assert "data: dlc_project, lightning_pose, synthetic, videos" in out[groups:]
        assert "powered by Hydra" not in out and "== Config ==" not in out
        assert len(out.splitlines()) <= 45, len(out.splitlines())


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_refuses_an_unknown_option_in_one_line(stage, stage_runs):
    assert one_line_error(stage_runs[stage, "unknown kind"]) == UNKNOWN_KIND


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_names_the_closest_keys_of_an_unknown_key(stage, stage_runs):
    assert one_line_error(stage_runs[stage, "unknown key"]) == (
        "error: trainig.threads=1: unknown key trainig.threads; did you mean training.threads? "
        "conf/training/cpu_demo.yaml documents training.threads"
    )


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_refuses_an_unknown_flag_in_one_line(stage, stage_runs):
    assert one_line_error(stage_runs[stage, "unknown flag"]) == (
        f"error: --bogus: not an option of python -m src.{stage}; give overrides (key=value, "
        "group=option) or Hydra's options (-m, --cfg job, --info); see --help"
    )
    assert one_line_error(stage_runs[stage, "bad hydra option"]) == (
        "error: argument --cfg/-c: invalid choice: 'jobb' (choose from 'job', 'hydra', 'all') "
        f"(python -m src.{stage}); see --help"
    )


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--bogus"], "error: --bogus: not an option of python -m src.params; it takes --demo"),
        (["foo"], "error: foo: not an override Hydra can read"),
        (["x=[1"], "error: x=[1: not an override Hydra can read"),
        (["--demo", "model=resnet_50"], "error: --demo: goes back to the embedded cohort"),
    ],
)
def test_params_refuses_an_unknown_flag_or_unreadable_override_in_one_line(repo, args, expected):
    assert one_line_error(python(repo, "-m", "src.params", *args)).startswith(expected)
    assert not (repo / "conf" / "study" / "current.yaml").exists()


def test_the_real_train_command_helps_and_refuses_a_typo():
    assert one_line_error(python(REPO, "-m", "src.train", "data=dlc_projct")) == UNKNOWN_KIND
    helped = python(REPO, "-m", "src.train", "-h")
    assert helped.returncode == 0 and helped.stdout.startswith("Train and evaluate")


@pytest.mark.parametrize(
    "override, expected",
    [
        ("data=dlc_projct", UNKNOWN_KIND.removeprefix("error: ")),
        (
            "model=resnet_34",
            "unknown model 'resnet_34'; choose one of: resnet_101, resnet_18, resnet_50 (conf/model/)",
        ),
        ("+sweep=framez", "unknown sweep 'framez'; choose one of: cutoff, frames (conf/sweep/)"),
        ("threads=2", "unknown key threads; did you mean training.threads or analysis.threads?"),
        ("split.generalisation_fractin=0.3", "did you mean split.generalisation_fraction?"),
        ("x=[1", "x=[1: not an override Hydra can read"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_fix(override, expected):
    with pytest.raises(ConfigError) as error:
        configuration([override])
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_params_refuses_a_bad_value_before_writing_the_study(repo):
    study = repo / "conf" / "study" / "current.yaml"
    study.write_text("# @package _global_\nmodel:\n  name: resnet_18\n", encoding="utf-8")
    before = study.read_bytes()

    message = one_line_error(python(repo, "-m", "src.params", "labelled_frames=-1"))
    assert "labelled_frames=-1 is not allowed: it must be an integer >= 0" in message
    assert "the command line (labelled_frames=-1)" in message and "conf/config.yaml" in message
    assert study.read_bytes() == before

    # a bad value the study file already holds: named as coming from there, with its conf/ file
    study.write_text("# @package _global_\nreport:\n  pcutoff: 1.5\n", encoding="utf-8")
    before = study.read_bytes()
    message = one_line_error(python(repo, "-m", "src.params", "model=resnet_50"))
    assert "report.pcutoff=1.5 is not allowed" in message
    assert "comes from conf/study/current.yaml" in message
    assert "conf/report/default.yaml documents report.pcutoff" in message
    assert study.read_bytes() == before


def test_a_stage_says_where_a_refused_value_came_from(repo):
    study = repo / "conf" / "study" / "current.yaml"
    study.write_text("# @package _global_\nsynthetic:\n  workers: -1\n", encoding="utf-8")
    message = one_line_error(python(repo, "-m", "src.cohort"))
    assert "synthetic.workers=-1 is not allowed" in message
    assert "comes from conf/study/current.yaml" in message
    assert "conf/synthetic/default.yaml documents synthetic.workers" in message
    study.unlink()

    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["synthetic"]["workers"] = -2  # what the DVC stages read
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    message = one_line_error(
        python(repo, "-m", "src.cohort", "--config-dir", ".", "--config-name", "params")
    )
    assert "synthetic.workers=-2 is not allowed" in message and "comes from params.yaml" in message


def test_another_data_set_starts_a_new_study_and_keeps_the_one_before(repo, tmp_path):
    study_dir = repo / "conf" / "study"
    other = tmp_path / "other project"
    shutil.copytree(REACHING, other)

    first = python(
        repo, "-m", "src.params", "data=dlc_project", f"data.root={REACHING}", "split=frames"
    )
    assert first.returncode == 0, first.stderr[-2000:]
    added = python(repo, "-m", "src.params", "model=resnet_50")  # other overrides add to the study
    assert added.returncode == 0, added.stderr[-2000:]
    assert f"now holds data=dlc_project split=frames model=resnet_50 data.root={REACHING}" in (
        added.stdout
    )
    first_study = (study_dir / "current.yaml").read_bytes()

    # only data.root changes: the kind of data carries over, the rest of the study does not
    switched = python(repo, "-m", "src.params", f"data.root={other}", "split=frames")
    assert switched.returncode == 0, switched.stderr[-2000:]
    line = next(x for x in switched.stdout.splitlines() if x.startswith("study:"))
    assert f"now holds data=dlc_project split=frames data.root={other} (a new data set" in line
    assert "kept as conf/study/previous.yaml" in line and "dropped from it: model=resnet_50" in line
    assert (study_dir / "previous.yaml").read_bytes() == first_study
    assert yaml.safe_load((study_dir / "current.yaml").read_text())["defaults"] == [
        {"override /data": "dlc_project"},
        {"override /split": "frames"},
        "_self_",
    ]
    second_study = (study_dir / "current.yaml").read_bytes()

    # a second switch keeps both studies before it, and says where the earlier one went
    back = python(repo, "-m", "src.params", f"data.root={REACHING}", "split=frames")
    assert back.returncode == 0, back.stderr[-2000:]
    assert "(the earlier one is now conf/study/previous-1.yaml)" in back.stdout
    assert (study_dir / "previous.yaml").read_bytes() == second_study
    assert (study_dir / "previous-1.yaml").read_bytes() == first_study


def test_make_help_lists_every_target_with_its_line():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    documented = dict(
        re.findall(r"^([a-zA-Z_-]+):[^#\n]*## (.*)$", (REPO / "Makefile").read_text(), re.M)
    )
    assert {"setup", "demo", "test", "help"} <= set(documented)
    # as a user types it: not as a sub-make of `make test`, which would add "Entering directory" lines
    as_typed = {
        k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")
    }
    for command in (["make", "help"], ["make"]):  # help is the default goal
        done = subprocess.run(
            command, cwd=REPO, env=as_typed, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        shown = {line.split()[1]: line for line in done.stdout.splitlines()}
        assert set(shown) == set(documented)
        for target, line in documented.items():
            assert shown[target].rstrip().endswith(line.strip())


def test_a_sweep_passes_the_check_only_as_a_multirun(tmp_path):
    """The check composes each swept override's first value: a sweep set by its config
    (+sweep=frames sets hydra.mode) reaches the sweep, whose study check then refuses the missing
    project; a sweep without a multirun gets Hydra's hint, in one line."""
    swept = python(
        REPO,
        "-m",
        "src.train",
        "+sweep=frames",
        "labelled_frames=0,2",
        "data=dlc_project",
        f"data.root={tmp_path / 'missing'}",
        f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}",
        f"paths.data_dir={tmp_path / 'data'}",
    )
    assert swept.returncode == 2, swept.stderr[-2000:]
    assert f"{tmp_path / 'missing' / 'config.yaml'} does not exist" in swept.stderr
    assert "--multirun" in one_line_error(python(REPO, "-m", "src.train", "labelled_frames=0,2"))


PROBE_STAGE = """
import atexit, os, sys, threading, time
from pathlib import Path
from src.cli import stage

OUT = Path(os.environ["PROBE_OUT"])


class Teardown:
    def __del__(self):  # runs when the interpreter frees its modules
        (OUT / "teardown").write_text("freed")


KEPT = Teardown()


@stage
def main(cfg):
    def late():
        time.sleep(0.5)
        (OUT / "thread").write_text("joined")

    threading.Thread(target=late).start()
    atexit.register(lambda: (OUT / "atexit").write_text(str(cfg.labelled_frames)))
    sys.stdout.write("printed, not flushed")


if __name__ == "__main__":
    main()
"""


@pytest.mark.parametrize("printed_only", [False, True])
def test_a_finished_command_exits_as_python_does_without_freeing_its_modules(
    tmp_path, printed_only
):
    """Threads joined, atexit handlers run, output flushed, status 0; only the module teardown is
    skipped, and only when the command ran its job (not for --cfg job, which tests run in-process)."""
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "probe.py").write_text(PROBE_STAGE)
    (tmp_path / "conf").symlink_to(REPO / "conf")  # the stage's config_path, ../conf
    done = subprocess.run(
        [sys.executable, "tool/probe.py", "labelled_frames=3", *(["--cfg", "job"] * printed_only)],
        cwd=tmp_path,
        env=os.environ | {"PROBE_OUT": str(tmp_path), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    if printed_only:
        assert "labelled_frames: 3" in done.stdout
        assert (tmp_path / "teardown").read_text() == "freed"  # the ordinary exit
        return
    assert done.stdout == "printed, not flushed"
    assert (tmp_path / "thread").read_text() == "joined"
    assert (tmp_path / "atexit").read_text() == "3"
    assert not (tmp_path / "teardown").exists()


def test_evaluate_refuses_an_unknown_cells_value_in_one_line():
    done = python(REPO, "-m", "src.evaluate", "+cells=all")
    assert one_line_error(done) == (
        "error: cells=all: unknown; +cells=pipeline evaluates every cell of pipeline.cells, "
        "without it one condition (labelled_frames=N)"
    )
