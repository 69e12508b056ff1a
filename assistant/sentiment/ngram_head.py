"""Character and word n-grams (hashed, tf-idf weighted) with a linear softmax head trained by cross-entropy.
Chinese text is cut into words with jieba (whole runs of characters are not words).

Stateless hashing means only numbers are saved (no vocabulary, no pickle): the idf and head weights of the
features seen in training, as one `.npz`.
"""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from assistant.sentiment.labels import is_chinese
from assistant.sentiment.linear import fit_linear, softmax

CHAR_FEATURES = 1 << 19
WORD_FEATURES = 1 << 18


_WORD = re.compile(r"\w\w+|[!?]")
_CHINESE_WORD = re.compile(r"\w")  # one character can be a word (好, 差)


def word_ngrams(text: str) -> list[str]:
    """Words (jieba for Chinese) and word pairs, lower-cased."""
    text = text.lower()
    if is_chinese(text):
        import jieba

        jieba.setLogLevel(60)
        words = [w for w in jieba.lcut(text) if _CHINESE_WORD.search(w) or w in ("!", "?", "！", "？")]
    else:
        words = _WORD.findall(text)
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def _vectorizers():
    from sklearn.feature_extraction.text import HashingVectorizer

    common = {"alternate_sign": False, "norm": None}
    return (HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=CHAR_FEATURES, **common),
            HashingVectorizer(analyzer=word_ngrams, n_features=WORD_FEATURES, **common))


def _counts(texts: list[str]) -> sp.csr_matrix:
    char, word = _vectorizers()
    return sp.hstack([char.transform(texts), word.transform(texts)]).tocsr()


def weigh_tfidf(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    """Sublinear tf times idf, rows L2-normalised (sklearn's TfidfTransformer, written out)."""
    from sklearn.preprocessing import normalize

    weighted = counts.astype(np.float32)
    weighted.data = 1 + np.log(weighted.data)
    return normalize(weighted @ sp.diags(idf.astype(np.float32)))


def smooth_idf(counts: sp.csr_matrix) -> np.ndarray:
    """Each column's smoothed inverse document frequency over the rows of `counts`; unseen columns weigh nothing."""
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    return np.where(df > 0, np.log((1 + counts.shape[0]) / (1 + df)) + 1, 0.0)


class NgramHead:
    """predict_proba(texts) -> (n, len(labels)) probabilities, columns in `labels` order."""

    def __init__(self, labels: list[str], idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray):
        self.labels, self.idf, self.coef, self.intercept = labels, idf, coef, intercept

    @classmethod
    def fit(cls, texts: list[str], labels: list[str], classes: list[str], c: float = 3.0) -> NgramHead:
        counts = _counts(texts)
        idf = smooth_idf(counts)
        coef, intercept = fit_linear(weigh_tfidf(counts, idf), labels, classes, c)
        return cls(list(classes), idf.astype(np.float32), coef, intercept)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        logits = weigh_tfidf(_counts(texts), self.idf) @ self.coef.T + self.intercept
        return softmax(np.asarray(logits))

    def save(self, path: Path) -> None:
        used = np.flatnonzero(np.abs(self.coef).sum(axis=0) > 0)
        np.savez_compressed(path, labels=np.array(self.labels), used=used.astype(np.int32), idf=self.idf[used],
                            coef=self.coef[:, used], intercept=self.intercept)

    @classmethod
    def load(cls, path: Path) -> NgramHead:
        with np.load(path, allow_pickle=False) as saved:
            size = CHAR_FEATURES + WORD_FEATURES
            idf = np.zeros(size, dtype=np.float32)
            coef = np.zeros((len(saved["labels"]), size), dtype=np.float32)
            idf[saved["used"]] = saved["idf"]
            coef[:, saved["used"]] = saved["coef"]
            return cls([str(x) for x in saved["labels"]], idf, coef, saved["intercept"])
