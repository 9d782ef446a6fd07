"""Every stage of dvc.yaml depends on the code it runs and on the pinned library versions.

DVC re-runs a stage only when one of its `deps`, `params` or `outs` changed, so a module a stage
runs but does not list is a change `dvc repro` silently ignores: the results in dvc.lock would no
longer be what the code computes. For each stage (each cell of a `matrix:` stage), this follows the
imports of its command's module (`python -m src.<stage>`) through `src/`, lazy imports inside
functions included, and checks that every file Python executes is covered by a dep (a folder
covers the files under it), and that every code dep is run by the stage (no needless re-runs).

Fast and static: nothing is imported or run. Against another checkout (e.g. an older commit,
extracted with `git archive`): `DVC_DEPS_ROOT=<checkout> pytest tests/pipeline/test_dvc_dependencies.py`,
or `python tests/pipeline/test_dvc_dependencies.py <checkout>`, which prints what is missing.
"""

from __future__ import annotations

import ast
import itertools
import os
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("DVC_DEPS_ROOT", REPO)).resolve()  # the checkout under test
STAGE_MODULE = re.compile(r"python -m (src(?:\.\w+)*)")
INTERPOLATION = re.compile(r"\$\{([^}]+)\}")
# The pinned versions of every library (DeepLabCut, PyTorch, OpenCV, scikit-learn, pandas,
# matplotlib, ...). Every stage's results depend on some of them: the cohort's videos on OpenCV's
# encoder, the prepared frames on OpenCV and scikit-learn's k-means, pre-training, training and
# evaluation on DeepLabCut and PyTorch, the report's table and plots on pandas and matplotlib. So
# every stage depends on requirements.lock: a new lock re-runs the pipeline, which is the point.
LOCK = "requirements.lock"


def lookup(params: dict, key: str):
    value = params
    for part in key.split("."):
        value = value[part]
    return value


def resolve(value, params: dict):
    """DVC's `${key}` templating: a string that is one interpolation keeps the value's type."""
    if isinstance(value, dict):
        return {resolve(k, params): resolve(v, params) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, params) for v in value]
    if not isinstance(value, str):
        return value
    whole = INTERPOLATION.fullmatch(value)
    if whole:
        return lookup(params, whole.group(1).strip())
    return INTERPOLATION.sub(lambda m: str(lookup(params, m.group(1).strip())), value)


def paths_of(entries: list) -> list[str]:
    """The paths of a `deps:` or `outs:` list, whose entries are a path or {path: options}."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def load_stages(root: Path = ROOT) -> dict[str, dict]:
    """dvc.yaml's stages, `${...}` resolved from params.yaml; a `matrix:` or `foreach:` cell is one
    (`name@n`)."""
    pipeline = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
    stages = {}
    for name, stage in pipeline["stages"].items():
        stage = dict(stage)
        matrix = resolve(stage.pop("matrix", None), params)
        foreach = resolve(stage.pop("foreach", None), params)
        cells = [({}, name)]
        if foreach is not None:  # a dict: its keys name the cells (none: no stage)
            stage = stage.pop("do")
            cells = [({"item": item, "key": key}, f"{name}@{key}") for key, item in foreach.items()]
        elif matrix:
            keys = list(matrix)
            cells = [
                (dict(zip(keys, values)), f"{name}@{'-'.join(map(str, values))}")
                for values in itertools.product(*(matrix[k] for k in keys))
            ]
        for item, cell_name in cells:
            resolved = resolve(stage, params | (item if foreach is not None else {"item": item}))
            stages[cell_name] = {
                "cmd": resolved["cmd"],
                "deps": [os.path.normpath(p) for p in paths_of(resolved.get("deps"))],
                "outs": [
                    os.path.normpath(p)
                    for key in ("outs", "metrics", "plots")
                    for p in paths_of(resolved.get(key))
                ],
            }
    return stages


def module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def with_packages(module: str) -> list[str]:
    """Importing ``src.a.b`` runs ``src``, ``src.a`` and ``src.a.b``."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@cache
def direct_imports(root: Path, module: str) -> frozenset[str]:
    """The `src` modules one module imports: top-level, inside functions, relative, or by name."""
    path = module_file(root, module)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            found.add(base)
            # `from src.x import y` imports the module src.x.y when y is one
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "import_module"
            and node.args
        ):
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
            else:  # a name computed at run time (a registry, src/engine): any module of its package
                folder = module_file(root, package).parent
                found.update(
                    f"{package}.{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"
                )
    return frozenset(
        name
        for candidate in found
        if candidate == "src" or candidate.startswith("src.")
        for name in with_packages(candidate)
        if module_file(root, name)
    )


@cache
def executed_files(root: Path, module: str) -> frozenset[str]:
    """Files (relative to ``root``) of ``module`` and of all it imports within src/, transitively.

    A file without statements (an empty ``__init__.py``, or one holding only a docstring) executes
    nothing, so it is left out; it counts as soon as it holds code.
    """
    seen, todo = set(), set(with_packages(module))
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo |= direct_imports(root, name) - seen
    files = set()
    for name in seen:
        path = module_file(root, name)
        body = ast.parse(path.read_text(encoding="utf-8")).body
        if body and not (len(body) == 1 and isinstance(body[0], ast.Expr)):
            files.add(path.relative_to(root).as_posix())
    return frozenset(files)


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep.rstrip("/") + "/")


def stage_module(stage: dict) -> str:
    match = STAGE_MODULE.search(stage["cmd"])
    assert match, f"`{stage['cmd']}` does not run `python -m src.<module>`"
    return match.group(1)


def missing_code_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Per stage, the files its command executes that none of its deps covers."""
    missing = {}
    for name, stage in load_stages(root).items():
        files = executed_files(root, stage_module(stage))
        uncovered = sorted(f for f in files if not any(covers(d, f) for d in stage["deps"]))
        if uncovered:
            missing[name] = uncovered
    return missing


def needless_code_deps(root: Path = ROOT) -> dict[str, list[str]]:
    """Per stage, deps in src/ that cover no file its command executes (or that do not exist)."""
    needless = {}
    for name, stage in load_stages(root).items():
        files = executed_files(root, stage_module(stage))
        extra = [
            d for d in stage["deps"] if covers("src", d) and not any(covers(d, f) for f in files)
        ]
        if extra:
            needless[name] = extra
    return needless


STAGES = load_stages()


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_every_file_of_src_it_runs(name):
    stage = STAGES[name]
    files = executed_files(ROOT, stage_module(stage))
    uncovered = sorted(f for f in files if not any(covers(d, f) for d in stage["deps"]))
    assert not uncovered, (
        f"stage {name} runs `{stage['cmd']}`, which executes {uncovered}, but its deps in "
        f"dvc.yaml do not cover them: add them (or their package folder) to its deps"
    )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_lists_only_code_it_runs(name):
    assert not needless_code_deps(ROOT).get(name), (
        f"stage {name}: these deps in src/ do not exist or are not run by `{STAGES[name]['cmd']}`"
    )


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_depends_on_the_pinned_library_versions(name):
    assert LOCK in STAGES[name]["deps"], f"stage {name} does not depend on {LOCK}"


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_reads_params_yaml_not_conf(name):
    """conf/ is no dep: a stage reads params.yaml (conf/ composed), its keys listed in `params:`."""
    assert "--config-dir . --config-name params" in STAGES[name]["cmd"], STAGES[name]["cmd"]
    assert not any(covers("conf", d) for d in STAGES[name]["deps"])


def test_the_import_walk_finds_submodules_relative_and_lazy_imports(tmp_path):
    """The walk itself, on a made-up package: what it must see to be trusted."""
    files = {
        "src/__init__.py": "",
        "src/main.py": "from src import pkg, registry\nfrom src.pkg.a import thing\n",
        "src/pkg/__init__.py": '"""Only a docstring."""\n',
        "src/pkg/a.py": "from . import b\nthing = 1\n",
        "src/pkg/b.py": "def f():\n    from .sub import c\n",
        "src/pkg/sub/__init__.py": "import os\n",
        "src/pkg/sub/c.py": "import importlib\nimportlib.import_module('src.named')\n",
        "src/registry/__init__.py": (
            "import importlib\ndef get(n):\n    return importlib.import_module(f'src.registry.{n}')\n"
        ),
        "src/registry/one.py": "x = 1\n",
        "src/named.py": "x = 1\n",
        "src/unused.py": "x = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert executed_files(tmp_path, "src.main") == {
        "src/main.py",
        "src/pkg/a.py",
        "src/pkg/b.py",
        "src/pkg/sub/__init__.py",
        "src/pkg/sub/c.py",
        "src/named.py",
        "src/registry/__init__.py",
        "src/registry/one.py",  # the registry imports a module named at run time: any of them
    }


def test_the_data_pretraining_learns_from_is_a_declared_output():
    """Pre-training's frames are prepared by a stage of their own, which the pretrain stage reads.

    The folder is the one the code writes: derived from params.yaml by ``pretraining_config``.
    """
    from omegaconf import OmegaConf

    from src.training.pretraining import pretraining_config

    cfg = OmegaConf.load(ROOT / "params.yaml")
    pre_cfg = pretraining_config(cfg)
    prepared = os.path.normpath(Path(pre_cfg.paths.prepared_dir) / pre_cfg.data.name)
    assert prepared in STAGES["prepare_pretraining"]["outs"]
    assert prepared in STAGES["pretrain"]["deps"]
    assert os.path.normpath(pre_cfg.data.root) in STAGES["prepare_pretraining"]["deps"]
    assert os.path.normpath(Path(cfg.pipeline.dir) / "pretrained") in STAGES["pretrain"]["outs"]
    # each stage runs its own step of src.pretrain; the pretrain stage never prepares
    assert "+pretraining_step=prepare" in STAGES["prepare_pretraining"]["cmd"]
    assert "+pretraining_step=train" in STAGES["pretrain"]["cmd"]
    # nothing else writes the folder: no two stages declare the same output
    outs = [out for stage in STAGES.values() for out in stage["outs"]]
    assert len(outs) == len(set(outs))


if __name__ == "__main__":
    root = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    for stage, files in missing_code_deps(root).items():
        print(f"{stage}: not covered by its deps: {', '.join(files)}")
    for stage, deps in needless_code_deps(root).items():
        print(f"{stage}: deps it does not run: {', '.join(deps)}")
    for stage, spec in load_stages(root).items():
        if LOCK not in spec["deps"]:
            print(f"{stage}: no {LOCK} dep")
