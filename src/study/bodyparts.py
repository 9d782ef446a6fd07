"""Which bodyparts an initial model and a data set share, and what condition 0 can evaluate.

Condition 0 evaluates the initial model without training, so it can only be judged on the points
the model predicts. Names are matched after normalising them: case, separators and a side written
as a prefix or suffix (``l``/``r``/``left``/``right``) do not matter, so ``LeftWrist``,
``wrist_l``, ``L_Wrist``, ``left wrist`` and ``LWrist`` all are ``left_wrist``. A mapping given in
``weights.bodypart_map`` ({data bodypart: model bodypart}, conf/weights/) wins over the names.

* every data bodypart maps: condition 0 is evaluated as any condition, and conditions > 0 start
  from the model's heads too (DeepLabCut's ``conversion_array``);
* some map: condition 0 is evaluated on those points only, and says so (MLflow tags
  ``bodyparts_evaluated`` and ``condition_note``); conditions > 0 transfer the backbone only;
* none map (or the initial weights have no trained heads): condition 0 is skipped, with its reason
  (MLflow tag ``skipped_reason``), and the rest of the study runs.

Pure functions on lists of names: nothing here reads files or imports a library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from src.errors import DataError

# MLflow tags of a condition's run (read by the report).
EVALUATED_TAG, NOTE_TAG, SKIPPED_TAG = "bodyparts_evaluated", "condition_note", "skipped_reason"

_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def normalise(name: str) -> str:
    """A bodypart's name in one spelling: lower case, ``_`` between words, the side first.

    ``LeftWrist``, ``wrist_l``, ``L_Wrist``, ``left wrist``, ``LWrist`` -> ``left_wrist``;
    ``RShoulder`` -> ``right_shoulder``; ``Finger1`` -> ``finger1``.
    """
    words = [w for w in re.split(r"[^0-9a-z]+", _CAMEL.sub(" ", str(name)).lower()) if w]
    if len(words) == 1:  # leftwrist, rightknee: a side glued to a word of 3 letters or more
        glued = re.fullmatch(r"(left|right)([a-z]{3,}\d*)", words[0])
        if glued:
            words = list(glued.groups())
    side = None
    if len(words) > 1 and words[0] in _SIDES:
        side, words = _SIDES[words[0]], words[1:]
    elif len(words) > 1 and words[-1] in _SIDES:
        side, words = _SIDES[words[-1]], words[:-1]
    return "_".join(([side] if side else []) + words)


def bodypart_mapping(
    data_bodyparts: Sequence[str],
    model_bodyparts: Sequence[str],
    bodypart_map: Mapping[str, str | None] | None = None,
) -> dict[str, str]:
    """{data bodypart: model bodypart} for the bodyparts both share, in the data's order.

    ``bodypart_map`` (``weights.bodypart_map``) wins: a data bodypart it names maps to the model
    bodypart it gives (null: to none). The others match by identical name first, then by
    :func:`normalise`; each model bodypart serves one data bodypart at most.
    """
    given = dict(bodypart_map or {})
    for data_name, model_name in given.items():
        if data_name not in data_bodyparts:
            raise DataError(
                f"weights.bodypart_map names {data_name!r}, which is no bodypart of the data set "
                f"({', '.join(data_bodyparts)}); use the data set's names as keys."
            )
        if model_name is not None and model_name not in model_bodyparts:
            raise DataError(
                f"weights.bodypart_map maps {data_name!r} to {model_name!r}, which the initial "
                f"model does not predict ({', '.join(model_bodyparts)}); use one of those."
            )
    mapping: dict[str, str] = {d: m for d, m in given.items() if m is not None}
    taken = set(mapping.values())
    free = [d for d in data_bodyparts if d not in given]
    by_norm: dict[str, str] = {}
    for name in model_bodyparts:
        by_norm.setdefault(normalise(name), name)
    for match in (
        lambda d: d if d in model_bodyparts else None,
        lambda d: by_norm.get(normalise(d)),
    ):
        for data_name in free:
            model_name = match(data_name)
            if data_name not in mapping and model_name is not None and model_name not in taken:
                mapping[data_name] = model_name
                taken.add(model_name)
    return {d: mapping[d] for d in data_bodyparts if d in mapping}


@dataclass(frozen=True)
class ConditionZero:
    """What condition 0 (the initial model, not trained) can be evaluated on."""

    data_bodyparts: list[str]
    model_bodyparts: list[str] | None  # None: the initial weights have no trained pose heads
    mapping: dict[str, str] = field(default_factory=dict)  # data bodypart -> model bodypart
    skipped: str | None = None  # why condition 0 cannot be evaluated at all

    @property
    def evaluated(self) -> list[str]:
        """The data bodyparts condition 0 is evaluated on, in the data's order."""
        return [b for b in self.data_bodyparts if b in self.mapping]

    @property
    def complete(self) -> bool:
        """Every data bodypart is predicted by the initial model."""
        return not self.skipped and len(self.mapping) == len(self.data_bodyparts)

    @property
    def renamed(self) -> dict[str, str]:
        return {d: m for d, m in self.mapping.items() if d != m}

    def conversion(self) -> list[int] | None:
        """The model's channel of every data bodypart (DeepLabCut's ``conversion_array``), or
        None when some data bodypart has none (then only the backbone is transferred)."""
        if not self.complete:
            return None
        return [self.model_bodyparts.index(self.mapping[b]) for b in self.data_bodyparts]

    def tags(self) -> dict[str, str]:
        """MLflow tags of condition 0's run: what it was evaluated on, or why it was skipped."""
        if self.skipped:
            return {SKIPPED_TAG: self.skipped}
        tags = {}
        if not self.complete:
            tags[EVALUATED_TAG] = _shorten(
                f"{len(self.evaluated)} of {len(self.data_bodyparts)}: {', '.join(self.evaluated)}"
            )
        note = self.note()
        if note:
            tags[NOTE_TAG] = _shorten(note)
        return tags

    def note(self) -> str | None:
        """One sentence on how condition 0 differs from the other conditions, if it does."""
        parts = []
        if not self.complete:
            missing = [b for b in self.data_bodyparts if b not in self.mapping]
            parts.append(
                f"the initial model predicts {len(self.evaluated)} of the "
                f"{len(self.data_bodyparts)} bodyparts, so condition 0 is evaluated on those only "
                f"(not: {', '.join(missing)}) and is not comparable point for point with the "
                "other conditions"
            )
        if self.renamed:
            pairs = ", ".join(f"{d} = {m}" for d, m in self.renamed.items())
            parts.append(f"matched by name to the initial model's {pairs}")
        return "; ".join(parts) or None

    def summary(self) -> str:
        """One line for the terminal."""
        if self.skipped:
            return f"condition 0 skipped: {self.skipped}"
        if self.complete and not self.renamed:
            return "condition 0: the initial model predicts every bodypart of the data set"
        return f"condition 0: {self.note()}"


def plan_condition_zero(
    data_bodyparts: Sequence[str],
    model_bodyparts: Sequence[str] | None,
    bodypart_map: Mapping[str, str | None] | None = None,
    model: str = "the initial model",
    no_heads: str | None = None,
) -> ConditionZero:
    """Condition 0's plan. ``model`` names the initial model in messages; ``no_heads``: why it has
    no pose heads to evaluate (``model_bodyparts`` is then None)."""
    data_bodyparts = list(data_bodyparts)
    if model_bodyparts is None:
        return ConditionZero(data_bodyparts, None, {}, no_heads or f"{model} has no pose heads")
    model_bodyparts = list(model_bodyparts)
    mapping = bodypart_mapping(data_bodyparts, model_bodyparts, bodypart_map)
    if mapping:
        return ConditionZero(data_bodyparts, model_bodyparts, mapping)
    reason = (
        f"{model} predicts none of the data set's bodyparts ({_listed(data_bodyparts)}; it "
        f"predicts {_listed(model_bodyparts)}), so there is nothing to evaluate without training; "
        "map names that mean the same point with weights.bodypart_map={<data bodypart>: <model "
        "bodypart>}, or start from a model of these bodyparts (weights=snapshot)"
    )
    return ConditionZero(data_bodyparts, model_bodyparts, {}, reason)


def _listed(names: Sequence[str], most: int = 8) -> str:
    shown = ", ".join(names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _shorten(text: str, most: int = 4900) -> str:
    """MLflow tag values are limited (5000 characters in its SQL store)."""
    return text if len(text) <= most else text[: most - 3] + "..."
