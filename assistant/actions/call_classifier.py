"""The call classifier: a fast learned judge of whether the customer's last turn calls for an action now, asked before
the chat model.

A 135M chat model cannot tell "I'd rather visit on the 2nd" (a detail for the agent to confirm) from "Yes, book
it" (a call): its preference for replying is the same on both kinds of turn. Word n-grams of the last customer
and agent turns, tagged by speaker, with a logistic-regression head, can: trained by `assistant align` on the same
decision rows as the chat model, it decides call or reply, and the chat model, constrained to a call, only picks
the action and its arguments. Saved beside the model it was trained with (`call_classifier.npz` in the model
folder), so a promoted version brings its own; a model without one decides alone, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from assistant.engines.base import ChatMessage
from assistant.sentiment.labels import is_chinese
from assistant.sentiment.linear import fit_linear
from assistant.sentiment.ngram_head import weigh_tfidf, word_ngrams

FILE_NAME = "call_classifier.npz"
FEATURES = 1 << 18
CLASSES = ["reply", "call"]
_WORD = re.compile(r"\w+|[?!]")  # one-character words count here: "at 3", "I", "a"


def _ngrams(text: str) -> list[str]:
    """Words and word pairs, lower-cased (jieba's words for Chinese)."""
    if is_chinese(text):
        return word_ngrams(text)
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def turn_features(conversation: Sequence[ChatMessage]) -> list[str]:
    """The customer's last turn and the agent's turn before it, as speaker-tagged words and word pairs, and how far
    into the conversation it is."""
    customer = next((m.content for m in reversed(conversation) if m.role == "user"), "")
    said = [m for m in conversation if m.role in ("user", "assistant")]
    agent = said[-2].content if len(said) > 1 and said[-2].role == "assistant" else ""
    return ([f"c:{w}" for w in _ngrams(customer)] + [f"a:{w}" for w in _ngrams(agent)]
            + [f"turn:{min(len(said) // 2, 6)}", "agent:none" if not agent else "agent:said"])


def _counts(conversations: Sequence[Sequence[ChatMessage]]) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(analyzer=turn_features, n_features=FEATURES, alternate_sign=False, norm=None)
    return vectorizer.transform(conversations).tocsr()


class CallClassifier:
    """call_probability(conversation) -> P(the next step is an action call); calls when it reaches `threshold`."""

    def __init__(self, idf: np.ndarray, coef: np.ndarray, intercept: float, threshold: float = 0.5):
        self.idf, self.coef, self.intercept, self.threshold = idf, coef, intercept, threshold

    @classmethod
    def fit(cls, conversations: Sequence[Sequence[ChatMessage]], calls: Sequence[bool], c: float = 4.0
            ) -> CallClassifier:
        if len(set(calls)) < 2:
            raise ValueError("the call classifier needs decision rows of both kinds (calls and replies)")
        counts = _counts(conversations)
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        idf = np.where(df > 0, np.log((1 + len(conversations)) / (1 + df)) + 1, 0.0)
        coef, intercept = fit_linear(weigh_tfidf(counts, idf), [CLASSES[int(c_)] for c_ in calls], CLASSES, c)
        # two classes: P(call) = sigmoid of the difference of the two logits
        return cls(idf.astype(np.float32), coef[1] - coef[0], float(intercept[1] - intercept[0]))

    def call_probabilities(self, conversations: Sequence[Sequence[ChatMessage]]) -> np.ndarray:
        logits = weigh_tfidf(_counts(conversations), self.idf) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits).ravel()))

    def calls(self, conversation: Sequence[ChatMessage]) -> bool:
        return bool(self.call_probabilities([conversation])[0] >= self.threshold)

    def save(self, folder: Path) -> Path:
        used = np.flatnonzero(self.coef != 0)
        path = folder / FILE_NAME
        np.savez_compressed(path, used=used.astype(np.int32), idf=self.idf[used], coef=self.coef[used],
                            intercept=np.float32(self.intercept), threshold=np.float32(self.threshold))
        return path

    @classmethod
    def of(cls, model) -> CallClassifier | None:
        """The classifier saved with a resolved model (`ResolvedModel`); None for no model or a hub id."""
        return cls.load(model.path) if model is not None and not model.is_hub_id else None

    @classmethod
    def load(cls, folder: Path | str) -> CallClassifier | None:
        """The classifier saved in a model folder, or None when the model decides alone."""
        path = Path(folder) / FILE_NAME
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as saved:
            idf = np.zeros(FEATURES, dtype=np.float32)
            coef = np.zeros(FEATURES, dtype=np.float32)
            idf[saved["used"]], coef[saved["used"]] = saved["idf"], saved["coef"]
            return cls(idf, coef, float(saved["intercept"]), float(saved["threshold"]))
