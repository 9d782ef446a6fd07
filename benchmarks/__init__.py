"""Benchmarks: scripts that print figures (python -m benchmarks.<name>); results/ holds the last figures."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str]) -> float:
    """Wall seconds of a command run in the repository, its output discarded."""
    start = time.perf_counter()
    subprocess.run(
        command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start
