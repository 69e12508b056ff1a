"""Optional cross-encoder reranking of the top candidates (any local sentence-transformers CrossEncoder folder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


class Reranker:
    def __init__(self, folder: str):
        from sentence_transformers import CrossEncoder

        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"reranker '{folder}' is not a local cross-encoder folder (no config.json)")
        self.model = CrossEncoder(str(path), device="cpu", local_files_only=True)

    def score(self, query: str, texts: list[str]) -> list[float]:
        return [float(s) for s in self.model.predict([(query, t) for t in texts], show_progress_bar=False)]


@lru_cache(maxsize=2)
def load_reranker(folder: str) -> Reranker:
    return Reranker(folder)
