"""Dense search with FAISS: exact inner product while small, HNSW above a size threshold (chosen and recorded)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

HNSW_NEIGHBOURS = 32


def choose_index_type(size: int, threshold: int) -> str:
    return "hnsw" if size >= threshold else "flat"


class DenseIndex:
    def __init__(self, index, kind: str):
        self.index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, threshold: int) -> DenseIndex:
        import faiss

        size, dim = vectors.shape
        kind = choose_index_type(size, threshold)
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 128
        else:
            index = faiss.IndexFlatIP(dim)
        if size:
            index.add(vectors)
        return cls(index, kind)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_index(self.index, str(path))  # FAISS' own binary format, no pickle

    @classmethod
    def load(cls, path: Path, kind: str) -> DenseIndex:
        import faiss

        index = faiss.read_index(str(path))
        if kind == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = 128
        return cls(index, kind)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(row indices, cosine scores) of the `k` nearest passages."""
        if self.index.ntotal == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores, rows = self.index.search(query.reshape(1, -1), min(k, self.index.ntotal))
        keep = rows[0] >= 0
        return rows[0][keep].astype(np.int64), scores[0][keep]
