"""How the knowledge base indexes and searches (the `retrieval:` section of assistant's settings carries every
field and passes them whole)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IndexSettings:
    """Encoder, reranker, index type, chunking and fusion of one knowledge base."""

    encoder: str = "default"
    reranker: str | None = None  # a cross-encoder folder, used on the top candidates when set
    hnsw_threshold: int = 50_000  # passages from which FAISS uses HNSW instead of exact search
    chunk_chars: int = 900
    chunk_overlap_chars: int = 120
    candidates: int = 50  # taken from each of dense and lexical search before fusion
    rerank_top: int = 20
    dense_weight: float = 1.0
    lexical_weight: float = 1.0
    tie_margin: float = 0.01  # fused scores this close (a share) are ordered by names, then relevance
