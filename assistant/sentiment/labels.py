"""The three sentiment labels, one scored text, and the language split the scorers rely on."""

from __future__ import annotations

import re
from dataclasses import dataclass

LABELS = ("negative", "neutral", "positive")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Sentiment:
    """A label and a signed score in [-1, 1] (negative .. positive), with the label probabilities."""

    label: str
    score: float
    probabilities: dict[str, float]


def is_chinese(text: str) -> bool:
    """True when CJK characters make up at least a fifth of the non-space characters."""
    letters = [c for c in text if not c.isspace()]
    return bool(letters) and len(_CJK.findall(text)) * 5 >= len(letters)


def from_probabilities(probabilities: dict[str, float]) -> Sentiment:
    """The most probable label; the score is P(positive) - P(negative)."""
    label = max(probabilities, key=probabilities.__getitem__)
    score = probabilities.get("positive", 0.0) - probabilities.get("negative", 0.0)
    return Sentiment(label, round(score, 4), {k: round(v, 4) for k, v in probabilities.items()})
