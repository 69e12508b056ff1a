"""Search over the catalogue: dense (FAISS) and BM25 fused by reciprocal rank, as the knowledge base searches, with
structured filters (category, price range, in stock) applied inside both searches.

Built in memory from the store's items; vectors are cached on disk by item content and encoder, so a restart or a
re-ingest encodes only new and changed items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.recommend.catalog import CatalogItem
from retrieval.fusion import reciprocal_rank_fusion
from retrieval.lexical import BIGRAM_MARK, LexicalIndex, tokenize


@dataclass(frozen=True)
class CatalogFilter:
    """What the customer or the caller restricts to; None: no restriction."""

    category: str | None = None  # matched case-insensitively against the item's category, as a word or prefix
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = True

    def admits(self, item: CatalogItem) -> bool:
        if self.in_stock and not item.available:
            return False
        if self.category:
            wanted, have = self.category.lower(), item.category.lower()
            if wanted not in have and not any(part.strip().startswith(wanted) for part in have.split("/")):
                return False
        if self.min_price is not None and (item.price is None or item.price < self.min_price):
            return False
        return not (self.max_price is not None and (item.price is None or item.price > self.max_price))


@dataclass(frozen=True)
class CatalogHit:
    item: CatalogItem
    score: float  # fused rank score
    relevance: float  # max(cosine, share of the query's words the item has), 0..1


class CatalogIndex:
    def __init__(self, items: list[CatalogItem], encoder, cache: Path | None = None, progress: bool = False):
        import faiss

        self.items = items
        self.encoder = encoder
        self.by_id = {item.id: row for row, item in enumerate(items)}
        self.vectors = self._vectors(cache, progress)
        self.dense = faiss.IndexFlatIP(encoder.dim)
        if items:
            self.dense.add(self.vectors)
        self.lexical = LexicalIndex.build([item.indexed_text() for item in items])
        self._terms = [frozenset(tokenize(item.indexed_text())) for item in items]

    def _vectors(self, cache: Path | None, progress: bool) -> np.ndarray:
        key = [f"{self.encoder.id}:{item.content_hash}" for item in self.items]
        known: dict[str, np.ndarray] = {}
        if cache is not None and cache.is_file():
            with np.load(cache) as saved:
                known = dict(zip(saved["keys"].tolist(), saved["vectors"], strict=True))
        missing = [i for i, k in enumerate(key) if k not in known]
        if missing:
            fresh = self.encoder.encode([self.items[i].indexed_text() for i in missing], progress=progress)
            known.update({key[i]: vector for i, vector in zip(missing, fresh, strict=True)})
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                np.savez(cache, keys=np.array(key), vectors=np.stack([known[k] for k in key]))
        if not self.items:
            return np.zeros((0, self.encoder.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack([known[k] for k in key]), dtype=np.float32)

    def __len__(self) -> int:
        return len(self.items)

    def admitted(self, where: CatalogFilter) -> np.ndarray:
        return np.array([row for row, item in enumerate(self.items) if where.admits(item)], dtype=np.int64)

    def search(self, query: str, k: int = 20, where: CatalogFilter | None = None) -> list[CatalogHit]:
        """The best `k` admitted items for `query` (an empty query: none)."""
        import faiss

        where = where or CatalogFilter()
        rows = self.admitted(where)
        if not query.strip() or rows.size == 0:
            return []
        pool = min(max(k * 3, 50), rows.size)
        vector = self.encoder.encode([query], kind="query")[0]
        dense_rows = np.empty(0, dtype=np.int64)
        if self.encoder.understands(query):
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(rows))
            _, found = self.dense.search(vector.reshape(1, -1), pool, params=params)
            dense_rows = found[0][found[0] >= 0]
        admitted = set(rows.tolist())
        lexical_rows, _ = self.lexical.search(query, len(self.items))
        lexical_rows = np.array([r for r in lexical_rows.tolist() if r in admitted][:pool], dtype=np.int64)
        fused = reciprocal_rank_fusion([dense_rows, lexical_rows])
        terms = tokenize(query)
        if not dense_rows.size:  # words only (Chinese with an English encoder): jieba's words, not the bigrams
            terms = [t for t in terms if not t.endswith(BIGRAM_MARK)] or terms
        hits = []
        for row in sorted(fused, key=fused.get, reverse=True)[:k]:
            cosine = float(self.vectors[row] @ vector) if dense_rows.size else 0.0
            relevance = max(cosine, self.lexical.coverage(terms, self._terms[row]))
            hits.append(CatalogHit(self.items[row], fused[row], relevance))
        return hits
