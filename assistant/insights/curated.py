"""Curated answers served before the model: an operator approves an answer for a question, and a new question close
enough to it gets that answer at once, marked as curated.

Closeness is the cosine similarity of the two questions' sentence embeddings (the knowledge base's encoder); for
questions that encoder does not understand (Chinese with the English-only default), the Dice coefficient of their
character pairs. The thresholds are settings (`insights.curated_min_similarity`, `..._zh`), measured with
`assistant eval curated` (README).

A question as close to two curated questions whose answers differ (within `insights.curated_margin` of the best) is
ambiguous: no curated answer is served and the model answers. FAQs repeat a question per product ("...for the Gold
card", "...for the Titanium card") with different answers; the embeddings barely tell them apart.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
import time
from dataclasses import dataclass

import numpy as np

from assistant.store.errors import CuratedAnswerError
from assistant.store.records import CuratedAnswerRecord

log = logging.getLogger(__name__)

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


def said_alike(answer: str) -> str:
    """An answer as compared with another: the same words, whatever the spacing and case."""
    return " ".join(answer.lower().split())


def agree(answers: list[str]) -> bool:
    """Whether the answers say the same (`said_alike`)."""
    return len({said_alike(a) for a in answers}) <= 1


class QuestionMatcher:
    """The nearest of some questions to a new one, with its similarity (see the module docstring)."""

    def __init__(self, encoder, questions: list[str]):
        self.encoder = encoder
        self.understood = np.array([encoder.understands(q) for q in questions], dtype=bool)
        self.vectors = encoder.encode(questions, kind="query") if questions else None
        self.pairs = [character_pairs(q) for q in questions]

    def scores(self, question: str) -> np.ndarray:
        """The similarity of `question` to each question; -1 for those of the other kind."""
        if len(self.pairs) == 0:
            return np.zeros(0)
        if self.encoder.understands(question):
            if not self.understood.any():
                return np.full(len(self.pairs), -1.0)
            return np.where(self.understood, self.vectors @ self.encoder.encode([question], kind="query")[0], -1.0)
        mine = character_pairs(question)
        return np.array([-1.0 if ok else dice(mine, pairs) for ok, pairs in zip(self.understood, self.pairs,
                                                                                strict=True)])

    def nearest(self, question: str, margin: float = 0.0) -> list[tuple[int, float]]:
        """(index, similarity) of the nearest question and of the others within `margin` of it, nearest first;
        empty when there is none of its kind."""
        scores = self.scores(question)
        if len(scores) == 0 or scores.max() < 0:
            return []
        close = np.flatnonzero(scores >= scores.max() - margin)
        return [(int(i), float(scores[i])) for i in close[np.argsort(-scores[close], kind="stable")]]

    def is_close(self, question: str, similarity: float, min_similarity: float, min_similarity_zh: float) -> bool:
        return similarity >= (min_similarity if self.encoder.understands(question) else min_similarity_zh)


class CuratedAnswers:
    """The curated answers now served (`store.curated`). A change made through this object applies to the next
    question; one made by another process or replica within `recheck_s` (the store's revision is read at most that
    often, not on every question: a database round trip per answer cost more than the rest of preparing it)."""

    def __init__(self, store, encoder_name: str, min_similarity: float, min_similarity_zh: float,
                 margin: float = 0.0, recheck_s: float = 1.0):
        self.store, self.encoder_name = store, encoder_name
        self.min_similarity, self.min_similarity_zh, self.margin = min_similarity, min_similarity_zh, margin
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._revision: tuple[int, int] | None = None
        self._checked_at = -math.inf
        self._served: tuple[list[CuratedAnswerRecord], QuestionMatcher | None] = ([], None)

    def may_match(self) -> bool:
        """False when no answer is served and the store was checked within `recheck_s`: then `match` is None
        without any work, so a caller need not move it off the event loop."""
        return bool(self._served[0]) or time.monotonic() - self._checked_at >= self.recheck_s

    def refresh(self) -> None:
        """Read the store's revision, and the served answers when it changed."""
        from retrieval.embeddings import load_encoder

        revision = self.store.curated.revision()
        with self._lock:
            self._checked_at = time.monotonic()
            if revision != self._revision:
                served = self.store.curated.listed()
                matcher = QuestionMatcher(load_encoder(self.encoder_name), [a.question for a in served]
                                          ) if served else None
                self._served, self._revision = (served, matcher), revision

    async def follow(self) -> None:
        """Keep the served answers fresh from the background (a server does): questions then never wait on the
        store for them."""
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # a busy or restarting database: the answers read before keep serving
                log.exception("could not read the curated answers")
            await asyncio.sleep(self.recheck_s / 2)

    def _current(self) -> tuple[list[CuratedAnswerRecord], QuestionMatcher | None]:
        if time.monotonic() - self._checked_at >= self.recheck_s:
            self.refresh()
        return self._served

    def close(self, question: str) -> list[CuratedMatch]:
        """The curated answers whose question is close enough to `question` and within the margin of the nearest,
        nearest first."""
        served, matcher = self._current()
        if matcher is None or not question.strip():
            return []
        return [CuratedMatch(served[i], similarity) for i, similarity in matcher.nearest(question, self.margin)
                if matcher.is_close(question, similarity, self.min_similarity, self.min_similarity_zh)]

    def match(self, question: str) -> CuratedMatch | None:
        """The curated answer for `question`; None when none is close enough, or when close ones disagree."""
        found = self.close(question)
        if not found or not agree([m.answer.answer for m in found]):
            return None
        return found[0]

    def add(self, question: str, answer: str, author: str, source: str = "manual",
            replaces: int | None = None) -> CuratedAnswerRecord:
        """Store a curated answer (with `replaces`, a new version of that one). The same question (the same words,
        stemmed) as another served answer is refused: edit that one instead. A close but different question is
        kept: a question between the two gets neither (`match`)."""
        from retrieval.lexical import tokenize

        words = set(tokenize(question))
        self._checked_at = -math.inf  # the store as it is now, whoever changed it
        found = next((m for m in self.close(question)
                      if m.answer.id != replaces and set(tokenize(m.answer.question)) == words), None)
        if found is not None:
            raise CuratedAnswerError(
                f"curated answer {found.answer.id} already answers this question (\"{found.answer.question}\", "
                f"similarity {found.similarity:.2f}): edit it (a new version) or withdraw it first")
        try:
            return self.store.curated.add(question, answer, author, source, replaces)
        finally:
            self._checked_at = -math.inf  # served from the next question on

    def withdraw(self, answer_id: int, author: str) -> CuratedAnswerRecord:
        try:
            return self.store.curated.withdraw(answer_id, author)
        finally:
            self._checked_at = -math.inf


def curated_answers(store, settings) -> CuratedAnswers:
    """The curated answers of a deployment, matched with its knowledge base's encoder."""
    return CuratedAnswers(store, settings.retrieval.encoder, settings.insights.curated_min_similarity,
                          settings.insights.curated_min_similarity_zh, settings.insights.curated_margin)
