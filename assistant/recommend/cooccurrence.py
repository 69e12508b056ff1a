"""Item-to-item co-occurrence: items chosen by the same customers, cosine-normalised, scored from the customer's
latest items with a recency decay, popularity breaking ties (and answering a customer without history).

Tuned as a fair baseline, not a straw man, on MovieLens-100K's validation items (NDCG@10): the last 5 items with a
decay of 0.5 score 0.115 (10 items, 0.7: 0.115; 20 items, 0.8: 0.110), against 0.071 for the textbook version (the
whole history, equal weights)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from assistant.recommend.base import SETTINGS_FILE, top_items, vocabulary, write_settings


@dataclass
class CooccurrenceConfig:
    recent: int = 5  # the customer's latest items that vote
    decay: float = 0.5  # each older item's vote weighs this much of the next newer one's
    popularity_weight: float = 1e-6  # ties and empty histories fall back to popularity


class CooccurrenceRecommender:
    name = "cooccurrence"

    def __init__(self, config: CooccurrenceConfig | None = None):
        self.config = config or CooccurrenceConfig()
        self.items: list[str] = []
        self.similarity = np.zeros((0, 0), dtype=np.float32)
        self.popularity = np.zeros(0, dtype=np.float32)

    def fit(self, histories: dict[str, list[str]], progress: bool = False) -> None:
        self.items = vocabulary(histories)
        index = {item: i for i, item in enumerate(self.items)}
        matrix = np.zeros((len(histories), len(self.items)), dtype=np.float32)
        for row, customer in enumerate(sorted(histories)):
            matrix[row, [index[i] for i in histories[customer]]] = 1.0
        counts = matrix.T @ matrix
        np.fill_diagonal(counts, 0.0)
        popularity = matrix.sum(axis=0)
        norm = np.sqrt(np.maximum(popularity, 1.0))
        self.similarity = (counts / norm[:, None] / norm[None, :]).astype(np.float32)
        self.popularity = (popularity / max(popularity.max(), 1.0)).astype(np.float32)

    def scores(self, history: Sequence[str]) -> np.ndarray:
        index = {item: i for i, item in enumerate(self.items)}
        known = [index[i] for i in history if i in index][-self.config.recent:]
        scores = self.config.popularity_weight * self.popularity
        if known:
            weights = self.config.decay ** np.arange(len(known) - 1, -1, -1, dtype=np.float32)
            scores = scores + weights @ self.similarity[known]
        return scores

    def recommend(self, history: Sequence[str], k: int = 10, exclude=None, allowed=None) -> list[tuple[str, float]]:
        return top_items(self, history, k, exclude, allowed)

    def save(self, folder: Path) -> None:
        write_settings(folder, "cooccurrence", {"config": asdict(self.config), "items": self.items})
        np.savez(folder / "cooccurrence.npz", similarity=self.similarity, popularity=self.popularity)

    @classmethod
    def load(cls, folder: Path) -> CooccurrenceRecommender:
        saved = json.loads((folder / SETTINGS_FILE).read_text())
        model = cls(CooccurrenceConfig(**saved["config"]))
        model.items = saved["items"]
        with np.load(folder / "cooccurrence.npz") as arrays:
            model.similarity, model.popularity = arrays["similarity"], arrays["popularity"]
        return model
