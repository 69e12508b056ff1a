"""Lexical search: BM25 (bm25s) over words; English stemmed, Chinese segmented with jieba."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

_TOKEN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[a-z0-9]+(?:['’][a-z]+)?")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
BIGRAM_MARK = "\u2082"  # ends a Chinese character bigram token (a subscript 2: never part of a word)
EN_STOPWORDS = frozenset(
    "a an and are as at be but by can could did do does for from had has have how i if in into is it its me my "
    "no not of on or our please so that the their them then there these they this to was we were what when "
    "where which who why will with would you your".split()
)
ZH_STOPWORDS = frozenset(
    "的 了 吗 呢 吧 啊 是 我 你 他 她 它 们 在 和 与 及 或 就 都 也 还 要 会 能 可以 怎么 如何 什么 请问 一下".split()
)


@lru_cache(maxsize=1)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Words for BM25: lower-cased, English stop words dropped and stemmed; Chinese cut by jieba (search
    mode) plus character bigrams (marked with a subscript 2 so they never collide with words)."""
    tokens: list[str] = []
    stem = _stemmer().stemWord
    for run in _TOKEN.findall(text.lower()):
        if _CJK.match(run):
            tokens.extend(t for t in _jieba().lcut_for_search(run) if t.strip() and t not in ZH_STOPWORDS)
            # character bigrams catch paraphrases that jieba segments differently
            tokens.extend(run[i:i + 2] + BIGRAM_MARK for i in range(len(run) - 1))
        elif run not in EN_STOPWORDS:
            tokens.append(stem(run))
    return tokens


class LexicalIndex:
    """BM25 over passage texts, saved with bm25s' own (non-pickle) format, plus document frequencies."""

    def __init__(self, bm25=None, size: int = 0, doc_freq: dict[str, int] | None = None):
        self.bm25 = bm25
        self.size = size
        self.doc_freq = doc_freq or {}

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        import bm25s

        bm25 = bm25s.BM25(k1=1.2, b=0.75)
        corpus = [tokenize(t) or ["∅"] for t in texts]
        doc_freq = Counter(term for terms in corpus for term in set(terms))
        if corpus:
            bm25.index(corpus, show_progress=False)
        return cls(bm25 if corpus else None, len(corpus), dict(doc_freq))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.bm25 is not None:
            self.bm25.save(str(folder), show_progress=False)
        (folder / "doc_freq.json").write_text(json.dumps(self.doc_freq, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path, size: int) -> LexicalIndex:
        import bm25s

        if size == 0 or not folder.is_dir():
            return cls(None, 0)
        doc_freq = json.loads((folder / "doc_freq.json").read_text())
        return cls(bm25s.BM25.load(str(folder), show_progress=False), size, doc_freq)

    def coverage(self, query_terms: list[str], present: frozenset[str]) -> float:
        """Share of the query's IDF weight whose terms occur in the passage's terms (0..1); unknown terms
        weigh most."""
        if not query_terms:
            return 0.0
        weights = {t: math.log(1 + self.size / (self.doc_freq.get(t, 0) + 0.5)) for t in set(query_terms)}
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in present) / total if total else 0.0

    def search(self, query: str, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, BM25 scores) of the best `k` passages with a score above zero."""
        if self.bm25 is None:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        terms = [t for t in tokenize(query) if t in self.bm25.vocab_dict]
        if not terms:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        rows, scores = self.bm25.retrieve([terms], k=min(k, self.size), show_progress=False, n_threads=1)
        rows, scores = rows[0], scores[0]
        keep = scores > 0
        return rows[keep].astype(np.int64), scores[keep].astype(np.float32)
