"""The names of a condition's evaluation metrics: built and read here only.

A :class:`MetricName` describes one metric (statistic, set, p-cutoff, unit, interval bound);
its ``name`` is what the evaluation logs into the condition's MLflow run, and
:meth:`MetricName.parse` reads any such name back (None for every other name). The grammar:

====================================================  =============================================
``mae_<set>_<unit>``, unit ``px`` or ``cm``            the paper's MAE (src/evaluation/metrics.py)
``mae_<set>_pcutoff<c>_<unit>``                        the same over points with likelihood >= c
``mae_<set>[_pcutoff<c>]_<unit>_ci_low`` / ``_ci_high``  its interval bounds (``_ci_note``: why a
                                                       pooled cell has none; a report column only)
``mae_<set>_pct_ref``                                  mean error as % of the reference length (pck.py)
``kept_<set>_pcutoff<c>``                              share of labelled points kept by the cutoff
``n_<set>_participants``, ``_frames``, ``_points``,   what the set's numbers rest on
``n_<set>_points_ref``
``pck<f>_<set>``                                       share of points within f reference lengths
====================================================  =============================================

``<set>`` is one of :data:`SETS`; ``<c>`` and ``<f>`` are written with Python's ``:g`` format.
:func:`table_columns` is the paper's Table 1: each column and the MAE it shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

SETS = ("train", "test", "generalisation")
UNITS = ("px", "cm")
PCT_REF = "pct_ref"  # the unit of the error as % of the reference length
COUNTS = ("participants", "frames", "points", "points_ref")  # n_<set>_<count>
BOUNDS = ("low", "high", "note")  # note: a pooled report column, never logged
STATISTICS = ("mae", "kept", "pck", *(f"n_{c}" for c in COUNTS))

_SET = "(?P<set>" + "|".join(SETS) + ")"
_NUMBER = r"[0-9][0-9.e+-]*"  # what f"{x:g}" writes for a non-negative x
_MAE = re.compile(
    rf"mae_{_SET}(?:_pcutoff(?P<pcutoff>{_NUMBER}))?_(?P<unit>px|cm)"
    rf"(?:_ci_(?P<bound>{'|'.join(BOUNDS)}))?"
)
_PCT_REF = re.compile(rf"mae_{_SET}_{PCT_REF}")
_KEPT = re.compile(rf"kept_{_SET}_pcutoff(?P<pcutoff>{_NUMBER})")
_COUNT = re.compile(rf"n_{_SET}_(?P<count>{'|'.join(COUNTS)})")
_PCK = re.compile(rf"pck(?P<fraction>{_NUMBER})_{_SET}")


@dataclass(frozen=True)
class MetricName:
    """One evaluation metric: ``MetricName("mae", "test", pcutoff=0.8).name`` is
    ``mae_test_pcutoff0.8_px``.

    ``statistic``: ``mae``, ``kept``, ``pck`` or ``n_<count>`` (:data:`COUNTS`). ``pcutoff``: the
    likelihood cutoff (``mae``, required for ``kept``); ``unit``: ``px``, ``cm`` or ``pct_ref``
    (``mae`` only); ``bound``: ``low`` / ``high`` (``note``) of the MAE's interval; ``fraction``:
    the PCK threshold (``pck`` only).
    """

    statistic: str
    set: str
    pcutoff: float | None = None
    unit: str | None = None
    bound: str | None = None
    fraction: float | None = None

    def __post_init__(self):
        if self.statistic not in STATISTICS or self.set not in SETS:
            raise ValueError(f"no metric {self.statistic!r} of set {self.set!r}")
        if self.statistic == "mae" and self.unit is None:
            object.__setattr__(self, "unit", "px")
        mae, unit = self.statistic == "mae", self.unit
        valid = (
            (not mae or unit in (*UNITS, PCT_REF))
            and (mae or unit is None)
            and (self.bound is None or (mae and unit in UNITS and self.bound in BOUNDS))
            and (self.pcutoff is None or (mae and unit in UNITS) or self.statistic == "kept")
            and (self.statistic != "kept" or self.pcutoff is not None)
            and ((self.fraction is not None) == (self.statistic == "pck"))
        )
        if not valid:
            raise ValueError(f"not a metric: {self!r}")

    @property
    def name(self) -> str:
        """The metric's name as logged, e.g. ``mae_generalisation_pcutoff0.8_px_ci_low``."""
        cutoff = "" if self.pcutoff is None else f"_pcutoff{self.pcutoff:g}"
        if self.statistic == "pck":
            return f"pck{self.fraction:g}_{self.set}"
        if self.statistic == "kept":
            return f"kept_{self.set}{cutoff}"
        if self.statistic.startswith("n_"):
            return f"n_{self.set}_{self.statistic.removeprefix('n_')}"
        bound = "" if self.bound is None else f"_ci_{self.bound}"
        return f"mae_{self.set}{cutoff}_{self.unit}{bound}"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, name: str) -> MetricName | None:
        """The metric ``name`` describes; None when it is no evaluation metric's name.

        Only names as :attr:`name` writes them parse (``pcutoff0.80`` does not): a parsed name
        is always ``parse(name).name == name``.
        """
        if not isinstance(name, str):
            return None
        try:
            metric = cls._read(name)
        except ValueError:  # a number that is none, e.g. pcutoff1.2.3
            return None
        return metric if metric is not None and metric.name == name else None

    @classmethod
    def _read(cls, name: str) -> MetricName | None:
        if m := _MAE.fullmatch(name):
            return cls("mae", m["set"], _number(m["pcutoff"]), m["unit"], m["bound"])
        if m := _PCT_REF.fullmatch(name):
            return cls("mae", m["set"], unit=PCT_REF)
        if m := _KEPT.fullmatch(name):
            return cls("kept", m["set"], _number(m["pcutoff"]))
        if m := _COUNT.fullmatch(name):
            return cls(f"n_{m['count']}", m["set"])
        if m := _PCK.fullmatch(name):
            return cls("pck", m["set"], fraction=_number(m["fraction"]))
        return None

    def with_bound(self, bound: str | None) -> MetricName:
        """The same MAE's interval bound (``low``, ``high``, ``note``; None: the MAE itself)."""
        return replace(self, bound=bound)

    def in_unit(self, unit: str) -> MetricName:
        return replace(self, unit=unit)

    @property
    def is_mae(self) -> bool:
        """True for an MAE in px or cm itself (not a bound, not % of reference)."""
        return self.statistic == "mae" and self.unit in UNITS and self.bound is None


def _number(text: str | None) -> float | None:
    return None if text is None else float(text)


def parse(name: str) -> MetricName | None:
    """:meth:`MetricName.parse`."""
    return MetricName.parse(name)


def mae(set_name: str, pcutoff: float | None = None, unit: str = "px") -> str:
    """``mae_<set>[_pcutoff<c>]_<unit>``."""
    return MetricName("mae", set_name, pcutoff, unit).name


def kept(set_name: str, pcutoff: float) -> str:
    """``kept_<set>_pcutoff<c>``."""
    return MetricName("kept", set_name, pcutoff).name


def count(set_name: str, what: str) -> str:
    """``n_<set>_<what>``, what one of :data:`COUNTS`."""
    return MetricName(f"n_{what}", set_name).name


def table_cells(pcutoff: float, unit: str = "px") -> dict[str, MetricName]:
    """The paper's Table 1: each column, in order, and the MAE it shows."""
    c = f"{pcutoff:g}"
    return {
        "train": MetricName("mae", "train", unit=unit),
        "test": MetricName("mae", "test", unit=unit),
        f"test, p-cutoff {c}": MetricName("mae", "test", pcutoff, unit),
        "generalisation": MetricName("mae", "generalisation", unit=unit),
        f"generalisation, p-cutoff {c}": MetricName("mae", "generalisation", pcutoff, unit),
    }


def table_columns(pcutoff: float, unit: str = "px") -> dict[str, str]:
    """:func:`table_cells` as metric names (``mae_<set>[_pcutoff<c>]_<unit>``)."""
    return {column: cell.name for column, cell in table_cells(pcutoff, unit).items()}
