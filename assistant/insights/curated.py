"""Curated answers served before the model: an operator approves an answer for a question, and a new question close
enough to it gets that answer at once, marked as curated.

Closeness is the cosine similarity of the two questions' sentence embeddings (the knowledge base's encoder); for
questions that encoder does not understand (Chinese with the English-only default), the Dice coefficient of their
character pairs. The thresholds are settings (`insights.curated_min_similarity`, `..._zh`), measured with
`assistant eval curated` (README).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import numpy as np

from assistant.store.errors import CuratedAnswerError
from assistant.store.records import CuratedAnswerRecord

_NOT_TEXT = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class CuratedMatch:
    answer: CuratedAnswerRecord
    similarity: float

    def as_dict(self) -> dict:
        return {"id": self.answer.id, "version": self.answer.version, "similarity": round(self.similarity, 4)}


def character_pairs(text: str) -> set[str]:
    """The text's adjacent character pairs, lower-cased, punctuation and spaces removed."""
    plain = _NOT_TEXT.sub("", text.lower())
    return {plain[i:i + 2] for i in range(len(plain) - 1)} or ({plain} if plain else set())


def dice(left: set[str], right: set[str]) -> float:
    return 2 * len(left & right) / (len(left) + len(right)) if left and right else 0.0


class QuestionMatcher:
    """The nearest of some questions to a new one, with its similarity (see the module docstring)."""

    def __init__(self, encoder, questions: list[str]):
        self.encoder = encoder
        self.understood = np.array([encoder.understands(q) for q in questions], dtype=bool)
        self.vectors = encoder.encode(questions, kind="query") if questions else None
        self.pairs = [character_pairs(q) for q in questions]

    def nearest(self, question: str) -> tuple[int, float]:
        """(index of the nearest question, similarity); (-1, 0.0) when there is none of its kind."""
        if self.encoder.understands(question):
            if self.vectors is None or not self.understood.any():
                return -1, 0.0
            scores = np.where(self.understood, self.vectors @ self.encoder.encode([question], kind="query")[0], -1.0)
        else:
            mine = character_pairs(question)
            scores = np.array([-1.0 if ok else dice(mine, pairs) for ok, pairs in zip(self.understood, self.pairs,
                                                                                      strict=True)])
        if len(scores) == 0 or scores.max() < 0:
            return -1, 0.0
        best = int(scores.argmax())
        return best, float(scores[best])

    def is_close(self, question: str, similarity: float, min_similarity: float, min_similarity_zh: float) -> bool:
        return similarity >= (min_similarity if self.encoder.understands(question) else min_similarity_zh)


class CuratedAnswers:
    """The curated answers now served (`store.curated`), re-read when another process or replica changes them."""

    def __init__(self, store, encoder_name: str, min_similarity: float, min_similarity_zh: float):
        self.store, self.encoder_name = store, encoder_name
        self.min_similarity, self.min_similarity_zh = min_similarity, min_similarity_zh
        self._lock = threading.Lock()
        self._revision: tuple[int, int] | None = None
        self._served: list[CuratedAnswerRecord] = []
        self._matcher: QuestionMatcher | None = None

    def _current(self) -> tuple[list[CuratedAnswerRecord], QuestionMatcher | None]:
        from retrieval.embeddings import load_encoder

        revision = self.store.curated.revision()
        with self._lock:
            if revision != self._revision:
                served = self.store.curated.listed()
                self._matcher = QuestionMatcher(load_encoder(self.encoder_name), [a.question for a in served]
                                                ) if served else None
                self._served, self._revision = served, revision
            return self._served, self._matcher

    def match(self, question: str) -> CuratedMatch | None:
        """The curated answer for `question`, or None when none is close enough."""
        served, matcher = self._current()
        if matcher is None or not question.strip():
            return None
        index, similarity = matcher.nearest(question)
        if index < 0 or not matcher.is_close(question, similarity, self.min_similarity, self.min_similarity_zh):
            return None
        return CuratedMatch(served[index], similarity)

    def add(self, question: str, answer: str, author: str, source: str = "manual",
            replaces: int | None = None) -> CuratedAnswerRecord:
        """Store a curated answer (with `replaces`, a new version of that one). A question that another served
        answer already matches is refused: two answers for one question would be served by chance."""
        found = self.match(question)
        if found is not None and found.answer.id != replaces:
            raise CuratedAnswerError(
                f"curated answer {found.answer.id} already answers this question (\"{found.answer.question}\", "
                f"similarity {found.similarity:.2f}): edit it (a new version) or withdraw it first")
        return self.store.curated.add(question, answer, author, source, replaces)

    def withdraw(self, answer_id: int, author: str) -> CuratedAnswerRecord:
        return self.store.curated.withdraw(answer_id, author)


def curated_answers(store, settings) -> CuratedAnswers:
    """The curated answers of a deployment, matched with its knowledge base's encoder."""
    return CuratedAnswers(store, settings.retrieval.encoder, settings.insights.curated_min_similarity,
                          settings.insights.curated_min_similarity_zh)
