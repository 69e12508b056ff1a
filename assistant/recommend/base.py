"""What every recommender offers (fit on histories, rank items for one history, save, load) and the one function
that loads a saved recommender of any kind."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

SETTINGS_FILE = "recommender.json"


class Recommender(Protocol):
    name: str
    items: list[str]  # the vocabulary: every item it can recommend, in its score order

    def fit(self, histories: dict[str, list[str]], progress: bool = False) -> None: ...

    def scores(self, history: Sequence[str]) -> np.ndarray:
        """A score per item of `items` (higher: better) for a customer with this history, oldest first."""
        ...

    def save(self, folder: Path) -> None: ...


def top_items(model: Recommender, history: Sequence[str], k: int = 10, exclude: Iterable[str] | None = None,
              allowed: Iterable[str] | None = None) -> list[tuple[str, float]]:
    """The best `k` (item, score) for `history`, never an item of the history or of `exclude`; only `allowed`
    items when given (in stock, in a category). Unknown items in the history are ignored."""
    scores = model.scores(history).astype(np.float64, copy=True)
    index = {item: i for i, item in enumerate(model.items)}
    banned = [index[i] for i in (*history, *(exclude or ())) if i in index]
    scores[banned] = -np.inf
    if allowed is not None:
        keep = np.zeros(len(scores), dtype=bool)
        keep[[index[i] for i in allowed if i in index]] = True
        scores[~keep] = -np.inf
    k = min(k, int(np.isfinite(scores).sum()))
    if k <= 0:
        return []
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best], kind="stable")]
    return [(model.items[i], float(scores[i])) for i in best]


def vocabulary(histories: dict[str, list[str]]) -> list[str]:
    """Every item of the histories, in order of first appearance (customers sorted): stable across runs."""
    return list(dict.fromkeys(item for customer in sorted(histories) for item in histories[customer]))


def write_settings(folder: Path, kind: str, settings: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_FILE).write_text(json.dumps({"kind": kind, **settings}, indent=1))
    # the registry checks a model folder by its config.json (assistant/registry.py)
    (folder / "config.json").write_text(json.dumps({"kind": kind}))
