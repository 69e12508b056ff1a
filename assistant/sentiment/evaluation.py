"""Sentiment evaluation: accuracy, macro-F1 and a per-class precision/recall/F1 report (plain metric dicts)."""

from __future__ import annotations

import time

import numpy as np

from assistant.sentiment.data import LabelledSet


def predict_labels(scorer, texts: list[str], allowed: list[str], batch_size: int = 256,
                   entities: list[str | None] | None = None) -> list[str]:
    """Labels restricted to `allowed` (a binary file is judged on its two labels: the likelier of them wins);
    with `entities`, each text's sentiment about its entity."""
    predicted = []
    for start in range(0, len(texts), batch_size):
        about = entities[start:start + batch_size] if entities else None
        for result in scorer.score(texts[start:start + batch_size], about):
            probabilities = result.probabilities
            predicted.append(max(allowed, key=lambda label, p=probabilities: p.get(label, 0.0)))
    return predicted


def classification_report(truth: list[str], predicted: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels,
                                                                     zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)), 4),
        "per_class": {label: {"precision": round(float(p), 4), "recall": round(float(r), 4),
                              "f1": round(float(f), 4), "support": int(s)}
                      for label, p, r, f, s in zip(labels, precision, recall, f1, support, strict=True)},
    }


def _allowed(labels: list[str]) -> list[str]:
    return sorted(set(labels), key=["negative", "neutral", "positive"].index)


def evaluate_scorer(scorer, data: LabelledSet) -> dict:
    """Metrics of `scorer` on a labelled set, with messages/s of the whole pass."""
    return evaluate_sets(scorer, {"": data})[0]


def evaluate_sets(scorer, sets: dict[str, LabelledSet]) -> tuple[dict, dict[str, dict]]:
    """Metrics on all the sets' rows together and on each set (each judged on its own labels), one pass each."""
    truth, predicted, per_set, seconds = [], [], {}, 0.0
    for name, data in sets.items():
        start = time.perf_counter()
        labels = predict_labels(scorer, data.texts, _allowed(data.labels), entities=data.entities or None)
        elapsed = time.perf_counter() - start
        per_set[name] = _report(data.labels, labels, data, scorer, elapsed)
        truth += data.labels
        predicted += labels
        seconds += elapsed
    combined = LabelledSet(errors=[e for data in sets.values() for e in data.errors])
    combined.texts = [""] * len(truth)
    return _report(truth, predicted, combined, scorer, seconds), per_set


def _report(truth: list[str], predicted: list[str], data: LabelledSet, scorer, seconds: float) -> dict:
    report = classification_report(truth, predicted, _allowed(truth))
    report.update({"examples": len(truth), "skipped_lines": len(data.errors), "scorer": scorer.name,
                   "messages_per_s": round(len(truth) / seconds, 1) if seconds else None})
    return report


def per_message_rate(scorer, texts: list[str], batch_size: int) -> dict:
    """Messages/s scoring `texts` in batches of `batch_size` (1 = one message at a time); median of per-batch rates."""
    rates = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start:start + batch_size]
        began = time.perf_counter()
        scorer.score(batch)
        rates.append(len(batch) / max(time.perf_counter() - began, 1e-9))
    return {"batch_size": batch_size, "messages": len(texts),
            "median_messages_per_s": round(float(np.median(rates)), 1)}
