"""The README, the changelog and docs/ lead somewhere: every relative link resolves to a file (and heading), every
command they name exists, the README stays short, and user docs do not narrate how they were developed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, REPO / "CHANGELOG.md", *sorted((REPO / "docs").glob("*.md"))]
USER_DOCS = [
    README,
    *sorted((REPO / "docs").glob("*.md")),
]  # the changelog may say what changed when
README_MAX_LINES = 200
# Phrases that narrate development, which belongs in CHANGELOG.md and commit messages (case-insensitive).
NARRATIVE = [
    "with this commit",
    "in this commit",
    "has not been re-run",
    "not been re-run",
    "this session",
    "last full run",
    "another engineer",
    "other engineers",
    "from another cpu",
]

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
MODULE = re.compile(r"\bpython3?(?:\.\d+)? -m ((?:src|benchmarks|tools)(?:\.[A-Za-z_]\w*)+)")
MAKE = re.compile(r"(?:^|[ \t;&|(])make[ \t]+([a-z][\w-]*)", re.MULTILINE)
# A module or a name in one, as code names it: `src.study.estimate`, `src.cpu_numerics()`; not a file name.
DOTTED = re.compile(r"(?<![\w/.-])((?:src|benchmarks|tools)(?:\.[A-Za-z_]\w*)+)(?![\w/-])")
FILE_SUFFIXES = {"md", "py", "yaml", "yml", "lock", "in", "csv", "png", "json", "txt", "toml"}


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans, where links are not links."""
    return CODE_SPAN.sub(" ", FENCE.sub("\n", text))


def code(text: str) -> str:
    """The fenced code blocks and code spans of the text, one per line: where commands are named."""
    blocks = [m.group(0) for m in FENCE.finditer(text)]
    spans = [m.group(2) for m in CODE_SPAN.finditer(FENCE.sub("\n", text))]
    return "\n".join(blocks + spans)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page's headings define, numbered as GitHub numbers repeated headings."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("\n", page.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if REPO in path.parents else str(path)


def broken_links(page: Path) -> list[str]:
    """The relative links of a page whose file, or heading, does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no file {shown(file)}")
        elif anchor and file.suffix == ".md" and anchor.lower() not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {shown(file)}")
    return broken


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", text, re.MULTILINE))
    for phony in re.findall(r"^\.PHONY\s*:(.*)$", text, re.MULTILINE):
        targets.update(phony.split())
    return targets


def missing_commands(page: Path, targets: set[str]) -> list[str]:
    """`python -m <module>` and `make <target>` named in a page that the repository does not have."""
    text = page.read_text(encoding="utf-8")
    missing = []
    for module in sorted(set(MODULE.findall(text))):
        path = REPO.joinpath(*module.split("."))
        if not (path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()):
            missing.append(f"python -m {module}: no {path.relative_to(REPO)}.py")
    for target in sorted(set(MAKE.findall(code(text)))):
        if target not in targets:
            missing.append(f"make {target}: no such target in the Makefile")
    for dotted in sorted(set(DOTTED.findall(code(text))) - set(MODULE.findall(text))):
        if dotted.rsplit(".", 1)[-1] not in FILE_SUFFIXES and not resolves(dotted):
            missing.append(f"{dotted}: no such module, or name in a module, in the repository")
    return missing


def resolves(dotted: str) -> bool:
    """Whether ``src.a.b`` is a module (src/a/b.py, src/a/b/) or a name a module defines at its top
    level (``src.cpu_numerics``: a function of src/__init__.py), read without importing it."""
    parts = dotted.split(".")
    package = REPO / parts[0]
    if not (package / "__init__.py").is_file():
        return False
    for i, part in enumerate(parts[1:], start=1):
        if (package / part / "__init__.py").is_file():
            package = package / part
        elif (package / f"{part}.py").is_file():
            rest = parts[i + 1 :]
            return not rest or rest[0] in top_level_names(package / f"{part}.py")
        else:
            return part in top_level_names(package / "__init__.py")
    return True


def top_level_names(module: Path) -> set[str]:
    """The names a module defines or imports at its top level."""
    names = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


@pytest.mark.parametrize("page", PAGES, ids=shown)
def test_every_relative_link_leads_to_a_file_and_heading(page):
    assert broken_links(page) == []


@pytest.mark.parametrize("page", PAGES, ids=shown)
def test_every_command_named_exists(page):
    assert missing_commands(page, makefile_targets()) == []


def test_the_readme_is_short_and_keeps_its_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    assert "make demo" in text and "make test" in text
    assert "make setup" in text


@pytest.mark.parametrize("page", USER_DOCS, ids=shown)
def test_user_docs_do_not_narrate_development(page):
    text = page.read_text(encoding="utf-8").lower()
    assert [phrase for phrase in NARRATIVE if phrase in text] == []


def test_every_docs_page_is_in_the_index():
    index = REPO / "docs" / "index.md"
    linked = {
        (index.parent / t.partition("#")[0]).resolve()
        for t in LINK.findall(prose(index.read_text()))
    }
    pages = {p.resolve() for p in (REPO / "docs").glob("*.md")} - {index.resolve()}
    assert sorted(p.name for p in pages - linked) == []


def test_the_checks_see_what_they_check(tmp_path):
    """The checkers find a broken link, a missing heading, a missing module and a missing make target."""
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](#title) [gone](no_such_file.md) [bad anchor](#nowhere)"
        " `make no-such-target` `python -m src.no_such_stage` `make test`\n"
        "`src.frames` `src.cpu_numerics()` `src.study.estimate.study_time_line` `benchmarks.md`\n"
        "```bash\npython -m src.train\n[not a link](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert [b.split(":")[0] for b in broken_links(page)] == ["no_such_file.md", "#nowhere"]
    assert missing_commands(page, makefile_targets()) == [
        "python -m src.no_such_stage: no src/no_such_stage.py",
        "make no-such-target: no such target in the Makefile",
        "src.frames: no such module, or name in a module, in the repository",
    ]
    assert slug("The TensorFlow engine, and a DeepLabCut 2.x model") == (
        "the-tensorflow-engine-and-a-deeplabcut-2x-model"
    )
