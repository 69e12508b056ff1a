"""The call classifier: a fast learned judge of whether the customer's last turn calls for an action now, asked before
the chat model.

A 135M chat model cannot tell "I'd rather visit on the 2nd" (a detail for the agent to confirm) from "Yes, book
it" (a call): its preference for replying is the same on both kinds of turn. A classifier of the last agent and
customer turns can: trained by `assistant align` on the same decision rows as the chat model, it decides call or
reply, and the chat model, constrained to a call, only picks the action and its arguments. Two bodies, chosen by
how many rows there are to learn from (measured on SGD dev, unseen services: 0.86 vs 0.92 call/no-call accuracy):
- `EncoderCallClassifier`: the packaged sentence encoder (the multilingual one when the rows are Chinese too)
  fine-tuned end to end on (agent turn, customer turn) pairs; from `ENCODER_MIN_ROWS` rows; ~2 min per 1,000 rows
  on 2 CPU cores; saved as `call_classifier/` in the model folder.
- `NgramCallClassifier`: speaker-tagged word n-grams with logistic regression; seconds to train, for few rows;
  `call_classifier.npz`.
Saved beside the model it was trained with, so a promoted version brings its own; a model without one decides
alone, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from assistant.engines.base import ChatMessage
from assistant.sentiment.labels import is_chinese
from assistant.sentiment.linear import fit_linear
from assistant.sentiment.ngram_head import smooth_idf, weigh_tfidf, word_ngrams

FILE_NAME = "call_classifier.npz"  # the n-gram body
ENCODER_FOLDER = "call_classifier"  # the encoder body
ENCODER_MIN_ROWS = 1000  # fewer rows than this: the n-gram body (an encoder overfits a few dozen turns)
FEATURES = 1 << 18
CLASSES = ["reply", "call"]
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
_WORD = re.compile(r"\w+|[?!]")  # one-character words count here: "at 3", "I", "a"


def _ngrams(text: str) -> list[str]:
    """Words and word pairs, lower-cased (jieba's words for Chinese)."""
    if is_chinese(text):
        return word_ngrams(text)
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def last_turns(conversation: Sequence[ChatMessage]) -> tuple[str, str]:
    """(the agent's turn before the customer's last one or "", the customer's last turn)."""
    customer = next((m.content for m in reversed(conversation) if m.role == "user"), "")
    said = [m for m in conversation if m.role in ("user", "assistant")]
    return (said[-2].content if len(said) > 1 and said[-2].role == "assistant" else ""), customer


def turn_features(conversation: Sequence[ChatMessage]) -> list[str]:
    """The customer's last turn and the agent's turn before it, as speaker-tagged words and word pairs, and how far
    into the conversation it is."""
    agent, customer = last_turns(conversation)
    said = [m for m in conversation if m.role in ("user", "assistant")]
    return ([f"c:{w}" for w in _ngrams(customer)] + [f"a:{w}" for w in _ngrams(agent)]
            + [f"turn:{min(len(said) // 2, 6)}", "agent:none" if not agent else "agent:said"])


def _counts(conversations: Sequence[Sequence[ChatMessage]]) -> sp.csr_matrix:
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(analyzer=turn_features, n_features=FEATURES, alternate_sign=False, norm=None)
    return vectorizer.transform(conversations).tocsr()


class CallJudge:
    """call_probabilities(conversations) -> P(the next step is an action call); calls when it reaches `threshold`."""

    threshold: float

    def call_probabilities(self, conversations: Sequence[Sequence[ChatMessage]]) -> np.ndarray:
        raise NotImplementedError

    def calls(self, conversation: Sequence[ChatMessage]) -> bool:
        return bool(self.call_probabilities([conversation])[0] >= self.threshold)

    def calibrate(self, conversations: Sequence[Sequence[ChatMessage]], calls: Sequence[bool]) -> float:
        """Set the threshold that decides held-out rows (not trained on) best, among `THRESHOLDS` (ties: the one
        nearest 0.5); rows of one kind only leave it at 0.5. Returns the held-out accuracy at it."""
        truth = np.asarray(calls, dtype=bool)
        probabilities = self.call_probabilities(conversations)
        scored = [(float(((probabilities >= t) == truth).mean()), -abs(t - 0.5), t) for t in THRESHOLDS]
        if len(set(truth.tolist())) == 2:
            self.threshold = max(scored)[2]
        return next(a for a, _, t in scored if t == self.threshold)


class NgramCallClassifier(CallJudge):
    """Hashed tf-idf of speaker-tagged word n-grams, logistic regression."""

    def __init__(self, idf: np.ndarray, coef: np.ndarray, intercept: float, threshold: float = 0.5):
        self.idf, self.coef, self.intercept, self.threshold = idf, coef, intercept, threshold

    @classmethod
    def fit(cls, conversations: Sequence[Sequence[ChatMessage]], calls: Sequence[bool], c: float = 4.0
            ) -> NgramCallClassifier:
        _check_both_kinds(calls)
        counts = _counts(conversations)
        idf = smooth_idf(counts)
        coef, intercept = fit_linear(weigh_tfidf(counts, idf), [CLASSES[int(c_)] for c_ in calls], CLASSES, c)
        # two classes: P(call) = sigmoid of the difference of the two logits
        return cls(idf.astype(np.float32), coef[1] - coef[0], float(intercept[1] - intercept[0]))

    def call_probabilities(self, conversations: Sequence[Sequence[ChatMessage]]) -> np.ndarray:
        logits = weigh_tfidf(_counts(conversations), self.idf) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.asarray(logits).ravel()))

    def save(self, folder: Path) -> Path:
        used = np.flatnonzero(self.coef != 0)
        path = folder / FILE_NAME
        np.savez_compressed(path, used=used.astype(np.int32), idf=self.idf[used], coef=self.coef[used],
                            intercept=np.float32(self.intercept), threshold=np.float32(self.threshold))
        return path

    @classmethod
    def load(cls, folder: Path | str) -> NgramCallClassifier:
        with np.load(Path(folder) / FILE_NAME, allow_pickle=False) as saved:
            idf = np.zeros(FEATURES, dtype=np.float32)
            coef = np.zeros(FEATURES, dtype=np.float32)
            idf[saved["used"]], coef[saved["used"]] = saved["idf"], saved["coef"]
            return cls(idf, coef, float(saved["intercept"]), float(saved["threshold"]))


class EncoderCallClassifier(CallJudge):
    """A sentence encoder fine-tuned end to end as a cross-encoder of (agent turn, customer turn)."""

    MAX_TOKENS = 128

    def __init__(self, model, tokenizer, threshold: float = 0.5):
        self.model, self.tokenizer, self.threshold = model, tokenizer, threshold

    @classmethod
    def fit(cls, conversations: Sequence[Sequence[ChatMessage]], calls: Sequence[bool], encoder: Path,
            epochs: int = 2, learning_rate: float = 5e-5, batch_size: int = 32, seed: int = 0
            ) -> EncoderCallClassifier:
        """Cross-entropy over all rows for `epochs` (2 measured best on SGD dev: 0.865, 0.920, 0.906 after 1-3)."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from assistant.sentiment.encoders import train_in_batches

        _check_both_kinds(calls)
        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(str(encoder))
        model = AutoModelForSequenceClassification.from_pretrained(str(encoder), num_labels=2)
        judge = cls(model, tokenizer)
        pairs = [last_turns(c) for c in conversations]
        truth = torch.tensor([int(c) for c in calls])
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)

        def loss(batch: list[int]):
            return model(**judge._inputs([pairs[i] for i in batch]), labels=truth[batch]).loss

        model.train()
        train_in_batches(list(range(len(pairs))), loss, optimizer, epochs, batch_size, seed,
                         "call classifier (encoder)")
        model.eval()
        return judge

    def _inputs(self, pairs: Sequence[tuple[str, str]]) -> dict:
        return self.tokenizer([agent or "(start)" for agent, _ in pairs], [customer for _, customer in pairs],
                              truncation=True, max_length=self.MAX_TOKENS, padding=True, return_tensors="pt")

    def call_probabilities(self, conversations: Sequence[Sequence[ChatMessage]], batch_size: int = 64
                           ) -> np.ndarray:
        import torch

        pairs = [last_turns(c) for c in conversations]
        parts = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                logits = self.model(**self._inputs(pairs[start:start + batch_size])).logits
                parts.append(torch.softmax(logits, -1)[:, 1].float().numpy())
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def save(self, folder: Path) -> Path:
        path = Path(folder) / ENCODER_FOLDER
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (path / "threshold.json").write_text(json.dumps({"threshold": self.threshold}))
        return path

    @classmethod
    def load(cls, folder: Path | str) -> EncoderCallClassifier:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(folder) / ENCODER_FOLDER
        model = AutoModelForSequenceClassification.from_pretrained(str(path)).eval()
        threshold = json.loads((path / "threshold.json").read_text())["threshold"]
        return cls(model, AutoTokenizer.from_pretrained(str(path)), float(threshold))


CallClassifier = NgramCallClassifier | EncoderCallClassifier


def _check_both_kinds(calls: Sequence[bool]) -> None:
    if len(set(calls)) < 2:
        raise ValueError("the call classifier needs decision rows of both kinds (calls and replies)")


def classifier_encoder(conversations: Sequence[Sequence[ChatMessage]]) -> Path:
    """The packaged encoder to fine-tune: the multilingual one when a tenth of the customer turns are Chinese."""
    from retrieval.embeddings import DEFAULT_ENCODER, encoder_path

    chinese = sum(is_chinese(last_turns(c)[1]) for c in conversations)
    return encoder_path("multilingual-e5-small" if chinese * 10 >= len(conversations) else DEFAULT_ENCODER)


def fit_call_classifier(conversations: Sequence[Sequence[ChatMessage]], calls: Sequence[bool]) -> CallClassifier:
    """The encoder body from `ENCODER_MIN_ROWS` rows, else the n-gram body (threshold 0.5 until `calibrate`d)."""
    if len(conversations) >= ENCODER_MIN_ROWS:
        return EncoderCallClassifier.fit(conversations, calls, classifier_encoder(conversations))
    return NgramCallClassifier.fit(conversations, calls)


def saved_body(folder: Path | str) -> str | None:
    """Which call classifier a model folder holds: "encoder", "ngram", or None (the model decides alone)."""
    if (Path(folder) / ENCODER_FOLDER / "threshold.json").is_file():
        return "encoder"
    return "ngram" if (Path(folder) / FILE_NAME).is_file() else None


def load_call_classifier(folder: Path | str) -> CallClassifier | None:
    """The classifier saved in a model folder, or None when the model decides alone."""
    body = saved_body(folder)
    return None if body is None else (EncoderCallClassifier if body == "encoder" else NgramCallClassifier).load(folder)


def call_classifier_of(model) -> CallClassifier | None:
    """The classifier saved with a resolved model (`ResolvedModel`); None for no model or a hub id."""
    return load_call_classifier(model.path) if model is not None and not model.is_hub_id else None
