"""Progress a person can watch: a training's updates and a study's cells, readable in a log file too.

On a terminal, a tqdm bar (updates done, rate, time left). Elsewhere (a log file, CI, ``dvc repro``
piped to ``tee``) tqdm would fill the file with carriage-return redraws; there the same figures are
written as plain lines, one every :data:`LOG_EVERY_S` seconds, plus the first and the last.

DeepLabCut reports each update only as a log record (PyTorch engine: "Number of iterations: ...",
with ``display_iters`` 1; TensorFlow engine: "iteration: ..."): :func:`counting_records` turns those
records into bar updates and keeps them out of the log. DeepLabCut's TensorFlow ``train_network``
reloads the ``logging`` module, which makes a new root logger: :func:`count_on_new_root` puts the
counting back on it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm

# Off a terminal: seconds between plain progress lines (tqdm's mininterval).
LOG_EVERY_S = 30.0
# What a bar shows off a terminal: no bar graphic, the counts, the time spent and left, the rate.
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit}s [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

# DeepLabCut's log record of one training update, and the loss in it.
PYTORCH_UPDATE = re.compile(r"^Number of iterations: \d+, loss: (?P<loss>\S+?),? lr: ")
TENSORFLOW_UPDATE = re.compile(r"^iteration: \d+ loss: (?P<loss>\S+) lr: ")

_last_seconds_per_update: float | None = None
_counting: list[_CountUpdates] = []  # the filters of the counting_records blocks now open


class _Lines:
    """A stream for tqdm that turns each redraw ('\\r' + bar) into one line of its own."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def bar(
    total: int | None,
    desc: str,
    *,
    unit: str = "update",
    initial: int = 0,
    stream: TextIO | None = None,
    every_s: float = LOG_EVERY_S,
) -> tqdm:
    """A tqdm bar on ``stream`` (default stderr); off a terminal, plain lines every ``every_s`` s."""
    stream = sys.stderr if stream is None else stream
    if is_terminal(stream):
        return tqdm(
            total=total, desc=desc, unit=unit, initial=initial, file=stream, dynamic_ncols=True
        )
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=_Lines(stream),
        mininterval=every_s,
        maxinterval=every_s,  # tqdm's monitor thread would otherwise stretch the interval
        miniters=1,
        bar_format=PLAIN_FORMAT,
        ascii=True,
    )


class _CountUpdates(logging.Filter):
    """Root-logger filter: a record matching ``pattern`` is one update of ``progress`` (not logged)."""

    def __init__(self, progress: tqdm, pattern: re.Pattern):
        super().__init__()
        self.progress, self.pattern = progress, pattern
        self.first_at: float | None = None  # when the first update was counted
        self.last_at: float | None = None
        self.counted = 0

    def filter(self, record: logging.LogRecord) -> bool:
        match = self.pattern.match(record.getMessage())
        if match is None:
            return True
        if self.first_at is None:
            # DeepLabCut's set-up before the first update is no update: out of the rate and time left
            self.progress.unpause()
            self.first_at = time.monotonic()
        self.last_at = time.monotonic()
        self.counted += 1
        self.progress.set_postfix_str(f"loss {match['loss']}", refresh=False)
        self.progress.update(1)
        return False

    def seconds_per_update(self) -> float | None:
        """Wall seconds per update between the first and the last counted one."""
        if self.counted < 2:
            return None
        return (self.last_at - self.first_at) / (self.counted - 1)


@contextmanager
def counting_records(progress: tqdm, pattern: re.Pattern) -> Iterator[tqdm]:
    """While the block runs, DeepLabCut's per-update log records advance ``progress``; closes it.

    A filter on the root logger (DeepLabCut logs with ``logging.info``) survives DeepLabCut's
    ``logging.basicConfig(force=True)``, which replaces the handlers but not the logger's filters.
    """
    global _last_seconds_per_update
    counter = _CountUpdates(progress, pattern)
    root = logging.getLogger()
    root.addFilter(counter)
    _counting.append(counter)
    try:
        yield progress
    finally:
        _counting.remove(counter)
        root.removeFilter(counter)
        logging.getLogger().removeFilter(counter)  # the root of a reloaded logging module
        _last_seconds_per_update = counter.seconds_per_update()
        progress.close()


def count_on_new_root() -> None:
    """Put the open :func:`counting_records` blocks' counting on today's root logger, after
    ``importlib.reload(logging)`` (DeepLabCut's TensorFlow training does it) replaced the root."""
    root = logging.getLogger()
    for counter in _counting:
        root.addFilter(counter)  # a no-op where it is already there


def last_seconds_per_update() -> float | None:
    """Wall seconds per update of the last training counted in this process (None: none counted)."""
    return _last_seconds_per_update


def training_label(project_dir) -> str:
    """A training's name for its bar, from its working folder (``frames6-resnet_18-<key>/project``:
    'train frames6'; the pre-training's ``<data>-<model>-<key>.work``: 'train <data>')."""
    from pathlib import Path

    folder = Path(project_dir)
    folder = folder.parent if folder.name == "project" else folder
    return f"train {folder.name.split('-')[0]}"


def minutes(seconds: float) -> str:
    """'about 35 min' (at least 1), or 'about 2.5 h' from 100 minutes on."""
    if seconds >= 100 * 60:
        return f"about {seconds / 3600:.1f} h"
    return f"about {max(1, round(seconds / 60))} min"
