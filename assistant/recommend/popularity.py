"""The most chosen items first: the baseline, and what a customer without history gets."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.recommend.base import SETTINGS_FILE, top_items, vocabulary, write_settings


class PopularityRecommender:
    name = "popularity"

    def __init__(self):
        self.items: list[str] = []
        self.counts = np.zeros(0, dtype=np.float32)

    def fit(self, histories: dict[str, list[str]], progress: bool = False) -> None:
        self.items = vocabulary(histories)
        counted = Counter(item for history in histories.values() for item in set(history))
        self.counts = np.array([counted[i] for i in self.items], dtype=np.float32)

    def scores(self, history: Sequence[str]) -> np.ndarray:
        return self.counts

    def recommend(self, history: Sequence[str], k: int = 10, exclude=None, allowed=None) -> list[tuple[str, float]]:
        return top_items(self, history, k, exclude, allowed)

    def save(self, folder: Path) -> None:
        write_settings(folder, "popularity", {"items": self.items, "counts": self.counts.tolist()})

    @classmethod
    def load(cls, folder: Path) -> PopularityRecommender:
        saved = json.loads((folder / SETTINGS_FILE).read_text())
        model = cls()
        model.items, model.counts = saved["items"], np.array(saved["counts"], dtype=np.float32)
        return model
