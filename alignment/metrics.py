"""Answer-quality metrics against a reference answer: token F1 (SQuAD style) and ROUGE-L F1.

Text is lower-cased, punctuation and citation markers like [1] are dropped; Chinese is compared per character.
"""

from __future__ import annotations

import re
from collections import Counter

from assistant.prompt import CITATION

_TOKEN = re.compile(r"[\u4e00-\u9fff]|[^\W_]+", re.UNICODE)
_ARTICLES = {"a", "an", "the"}


def tokens(text: str) -> list[str]:
    """Normalised tokens: words (articles dropped) and single CJK characters."""
    return [t for t in _TOKEN.findall(CITATION.sub(" ", text.lower())) if t not in _ARTICLES]


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, 1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    pred, ref = tokens(prediction), tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    lcs = _lcs_length(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def token_recall(part: str, whole: str) -> float:
    """The share of `part`'s tokens found in `whole` (how much of a source an answer restates)."""
    needed = Counter(tokens(part))
    if not needed:
        return 0.0
    return sum((needed & Counter(tokens(whole))).values()) / sum(needed.values())


def _compact(text: str) -> str:
    text = text.lower().replace("**", "").replace("__", "")
    text = re.sub(r"[‐‑‒–—−]", "-", text)
    return re.sub(r"\s+", "", text)


def fact_stated(fact: str, answer: str) -> bool:
    """The answer states the fact as written (case, spacing, bold marks and dash variants aside)."""
    return _compact(fact) in _compact(answer)
