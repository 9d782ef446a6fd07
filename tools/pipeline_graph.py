"""The DVC pipeline as a picture: the stage graph of ``dvc dag --dot``, one box per stage.

    python -m tools.pipeline_graph [--out docs/images/pipeline.png] [--repo .]

A stage run once per cell (``train@6``, ``train@fold2-6``) is drawn once, with the number of
its cells. Each box names the stage and the module its command runs (``cmd`` in dvc.yaml). With
Graphviz's ``dot`` on PATH the picture is laid out by it; otherwise by networkx and matplotlib in
layers, each stage one layer after the last stage it depends on.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # noqa: E402
import networkx as nx  # noqa: E402
import yaml  # noqa: E402

EDGE = re.compile(r'^"([^"]+)"\s*->\s*"([^"]+)";?$')
NODE = re.compile(r'^"([^"]+)";?$')
MODULE = re.compile(r"python -m ([\w.]+)")


class GraphError(Exception):
    """Why there is no graph, as the project's one-line error (``error: <where>: <what>; <fix>``)."""


def stage_dag(repo: Path) -> str:
    """``dvc dag --dot`` of the repository (this environment's dvc)."""
    dvc = Path(sys.executable).with_name("dvc")
    command = [str(dvc) if dvc.is_file() else "dvc", "dag", "--dot"]
    try:
        done = subprocess.run(command, cwd=repo, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise GraphError("error: dvc: not installed; run `make setup`") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise GraphError(f"error: {repo / 'dvc.yaml'}: `dvc dag` failed: {last}; fix dvc.yaml")
    return done.stdout


def parse_dot(text: str) -> nx.DiGraph:
    """The stages (nodes) and dependencies (edges) of ``dvc dag --dot``'s output."""
    graph = nx.DiGraph()
    for line in (line.strip() for line in text.splitlines()):
        if edge := EDGE.match(line):
            graph.add_edge(*edge.groups())
        elif node := NODE.match(line):
            graph.add_node(node.group(1))
    return graph


def collapse_cells(graph: nx.DiGraph) -> nx.DiGraph:
    """One node per stage: the cells ``name@cell`` of a foreach/matrix stage become ``name``,
    whose attribute ``cells`` counts them."""
    merged = nx.DiGraph()
    for node in graph.nodes:
        stage = node.split("@")[0]
        merged.add_node(stage)
        merged.nodes[stage]["cells"] = merged.nodes[stage].get("cells", 0) + 1
    for a, b in graph.edges:
        merged.add_edge(a.split("@")[0], b.split("@")[0])
    return merged


def labels(graph: nx.DiGraph, dvc_yaml: Path) -> dict[str, str]:
    """Each stage's box: its name, the module its command runs, and its cells when more than one."""
    stages = yaml.safe_load(dvc_yaml.read_text(encoding="utf-8")).get("stages", {})
    text = {}
    for stage in graph.nodes:
        spec = stages.get(stage, {})
        module = MODULE.search(str(spec.get("cmd") or spec.get("do", {}).get("cmd", "")))
        cells = graph.nodes[stage].get("cells", 1)
        text[stage] = "\n".join(
            [stage]
            + ([module.group(1)] if module else [])
            + ([f"× {cells}: one per condition (and fold)"] if cells > 1 else [])
        )
    return text


def layered_positions(graph: nx.DiGraph) -> dict[str, tuple[float, float]]:
    """x: the stage's layer (one after the last stage it depends on); y: 0 for the stages of the
    longest path (the main line), the others of a layer above and below it in turn."""
    main = set(nx.dag_longest_path(graph))
    positions = {}
    for layer, nodes in enumerate(nx.topological_generations(graph)):
        others = sorted(n for n in nodes if n not in main)
        for node in nodes:
            graph.nodes[node]["layer"] = layer
            if node in main:
                positions[node] = (float(layer), 0.0)
        for i, node in enumerate(others):
            positions[node] = (float(layer), (i // 2 + 1) * (1.0 if i % 2 == 0 else -1.0))
    return positions


def draw(graph: nx.DiGraph, text: dict[str, str], out: Path) -> Path:
    """The graph as a PNG: Graphviz's dot when installed, else layered with matplotlib."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("dot"):
        dot = "digraph pipeline {\n  rankdir=LR; node [shape=box, style=rounded, fontname=Helvetica];\n"
        for node in graph:
            label = text[node].replace("\n", r"\n")  # dot's line break
            dot += f'  "{node}" [label="{label}"];\n'
        dot += "".join(f'  "{a}" -> "{b}";\n' for a, b in graph.edges) + "}\n"
        subprocess.run(
            ["dot", "-Tpng", "-Gdpi=120", "-o", str(out)], input=dot, text=True, check=True
        )
        return out
    positions = layered_positions(graph)
    n_layers = 1 + max(graph.nodes[n]["layer"] for n in graph)
    fig, ax = plt.subplots(figsize=(2.1 * n_layers, 3.8), dpi=120, layout="constrained")
    boxes = nx.draw_networkx_labels(
        graph,
        positions,
        labels=text,
        ax=ax,
        font_size=7.5,
        bbox={"boxstyle": "round,pad=0.45", "facecolor": "#e8f0fa", "edgecolor": "#3b6ea5"},
    )
    xs, ys = zip(*positions.values())
    width, height = max(xs) - min(xs), max(max(ys) - min(ys), 1.0)
    ax.set(
        xlim=(min(xs) - 0.08 * width, max(xs) + 0.08 * width),
        ylim=(min(ys) - 0.3 * height, max(ys) + 0.5 * height),
    )
    fig.canvas.draw()  # the boxes' sizes: arrows end at their edges

    def side(a: str, b: str) -> int:  # arc3 bends left of a -> b for rad > 0
        return 1 if positions[a][1] + positions[b][1] < 0 else -1

    for a, b in graph.edges:
        span = graph.nodes[b]["layer"] - graph.nodes[a]["layer"]
        ax.annotate(
            "",
            xy=positions[b],
            xytext=positions[a],
            arrowprops={
                "arrowstyle": "-|>",
                "color": "0.45",
                "patchA": boxes[a].get_bbox_patch(),
                "patchB": boxes[b].get_bbox_patch(),
                # an edge over several layers bends away from the main line's boxes
                "connectionstyle": f"arc3,rad={side(a, b) * 0.12 * (span - 1):.2f}",
            },
        )
    ax.set_title(
        "The DVC pipeline (dvc.yaml): each stage runs when what it depends on changed", fontsize=9
    )
    ax.axis("off")
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/pipeline.png"))
    parser.add_argument("--repo", type=Path, default=Path("."), help="the folder of dvc.yaml")
    args = parser.parse_args(argv)
    dvc_yaml = args.repo / "dvc.yaml"
    try:
        if not dvc_yaml.is_file():
            raise GraphError(
                f"error: {dvc_yaml}: does not exist; give --repo the folder of dvc.yaml"
            )
        graph = collapse_cells(parse_dot(stage_dag(args.repo)))
        if not graph:
            raise GraphError(f"error: {dvc_yaml}: `dvc dag` shows no stage; add stages")
    except GraphError as error:
        print(error, file=sys.stderr)
        return 2
    print(draw(graph, labels(graph, dvc_yaml), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
