"""Leave-last-out evaluation (the usual MovieLens protocol): each customer's items in time order (ties: the file's
order, `interactions.histories`); the last one is the test item, the one before it the validation item, the rest
the history. A recommender is fitted on the histories (plus the validation items when testing), then ranks every
item the customer has not had; HR@K says whether the held-out item is in the top K, NDCG@K how high.
Customers with fewer than three items only train."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from assistant.recommend.base import Recommender, top_items

LATENCY_CUSTOMERS = 200


@dataclass(frozen=True)
class Split:
    train: dict[str, list[str]]  # what the recommender is fitted on
    inputs: dict[str, list[str]]  # per evaluated customer: the history it sees
    targets: dict[str, str]  # per evaluated customer: the item it should rank high


def leave_last_out(histories: dict[str, list[str]], validation: bool = False) -> Split:
    """Test split (history + validation item -> last item), or with `validation` (history -> the item before)."""
    cut = 2 if validation else 1
    train, inputs, targets = {}, {}, {}
    for customer, items in histories.items():
        if len(items) < 3:
            train[customer] = list(items[:-cut] if len(items) > cut else items)
            continue
        train[customer] = list(items[:-cut])
        inputs[customer] = list(items[:-cut])
        targets[customer] = items[-cut]
    return Split(train, inputs, targets)


def _ranked(model: Recommender, split: Split, k: int) -> dict[str, list[str]]:
    customers = sorted(split.targets)
    if hasattr(model, "batch_scores"):  # one pass for many customers (SASRec)
        ranked = {}
        for start in range(0, len(customers), 256):
            part = customers[start:start + 256]
            scores = model.batch_scores([split.inputs[c] for c in part])
            for customer, row in zip(part, scores, strict=True):
                fixed = _Fixed(model.items, row)
                ranked[customer] = [i for i, _ in top_items(fixed, split.inputs[customer], k)]
        return ranked
    return {c: [i for i, _ in top_items(model, split.inputs[c], k)] for c in customers}


class _Fixed:
    """Scores computed already, seen through the `Recommender` interface."""

    def __init__(self, items: list[str], row: np.ndarray):
        self.items, self.row = items, row

    def scores(self, history) -> np.ndarray:
        return self.row


def ranking_metrics(ranked: dict[str, list[str]], targets: dict[str, str], n_items: int, k: int) -> dict:
    hits, gains = [], []
    for customer, target in targets.items():
        top = ranked.get(customer, [])[:k]
        rank = top.index(target) if target in top else None
        hits.append(rank is not None)
        gains.append(1.0 / math.log2(rank + 2) if rank is not None else 0.0)
    shown = {item for items in ranked.values() for item in items[:k]}
    return {f"hr@{k}": float(np.mean(hits)) if hits else 0.0, f"ndcg@{k}": float(np.mean(gains)) if gains else 0.0,
            "coverage": len(shown) / n_items if n_items else 0.0, "customers": len(targets)}


def candidate_latency(model: Recommender, split: Split, k: int) -> dict:
    """Milliseconds to rank every item for one customer, one at a time (what a conversation waits for)."""
    customers = sorted(split.targets)[:LATENCY_CUSTOMERS]
    times = []
    for customer in customers:
        started = time.perf_counter()
        top_items(model, split.inputs[customer], k)
        times.append((time.perf_counter() - started) * 1000)
    return {"candidates_ms_p50": float(np.percentile(times, 50)) if times else 0.0,
            "candidates_ms_p95": float(np.percentile(times, 95)) if times else 0.0}


def evaluate(make: Callable[[], Recommender], histories: dict[str, list[str]], k: int = 10,
             validation: bool = False, progress: bool = False) -> dict:
    """Fit a new recommender on the split and measure it: HR@k, NDCG@k, coverage, training seconds, latency."""
    split = leave_last_out(histories, validation)
    model = make()
    started = time.perf_counter()
    model.fit(split.train, progress=progress)
    trained = time.perf_counter() - started
    n_items = len({i for items in histories.values() for i in items})
    metrics = ranking_metrics(_ranked(model, split, k), split.targets, n_items, k)
    measured = {**metrics, "train_s": trained, **candidate_latency(model, split, k),
                **({"epochs": model.epochs_run} if hasattr(model, "epochs_run") else {})}
    return {key: round(value, 4) if isinstance(value, float) else value for key, value in measured.items()}
