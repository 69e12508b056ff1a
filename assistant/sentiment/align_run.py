"""`assistant sentiment train` (formerly `assistant align sentiment`): train a classifier, compare it with the
scorer in use on evaluation sets, register it, and promote it only when it scores better (macro-F1 of all the
evaluation rows together)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant.registry import ModelVersion
from assistant.sentiment.by_language import train_scorer
from assistant.sentiment.data import LabelledSet, hash_fraction
from assistant.sentiment.evaluation import evaluate_sets
from assistant.sentiment.options import TrainingOptions
from assistant.sentiment.scorers import load_scorer, sentiment_registry

HELD_OUT = "10% of the training rows"


@dataclass
class SentimentAlignReport:
    data: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # {"current": {...}, "candidate": {...}} on all evaluation rows
    per_set: dict = field(default_factory=dict)  # evaluation set -> {"current": {...}, "candidate": {...}}
    version: str | None = None
    promoted: bool = False
    decision: str = ""


def split_eval(data: LabelledSet, share: float = 0.1) -> tuple[LabelledSet, LabelledSet]:
    """A stable held-out share of the training rows (by text hash) when no evaluation file is given."""
    indices = [hash_fraction(text, part=1) < share for text in data.texts]
    train = data.subset([i for i, held in enumerate(indices) if not held])
    train.errors = data.errors
    return train, data.subset([i for i, held in enumerate(indices) if held])


def align_sentiment(train: LabelledSet, evaluation: dict[str, LabelledSet], home: Path, options: TrainingOptions,
                    margin: float = 0.0, promote: bool = True) -> SentimentAlignReport:
    """`evaluation` maps a name (a file, a recipe part) to its rows; empty: a held-out share of `train`."""
    report = SentimentAlignReport()
    if not evaluation:
        train, held = split_eval(train)
        evaluation = {HELD_OUT: held}
    rows = sum(len(part) for part in evaluation.values())
    report.errors = train.errors + [e for part in evaluation.values() for e in part.errors]
    report.data = {"train examples": len(train), "train labels": train.counts(), "eval examples": rows,
                   "eval from": ", ".join(evaluation), "skipped lines": len(report.errors)}
    if rows == 0:
        raise ValueError("the evaluation set is empty; give --eval FILE")
    current = load_scorer("current", home)
    candidate = train_scorer(train, options)
    for name, scorer in (("current", current), ("candidate", candidate)):
        report.metrics[name], per_set = evaluate_sets(scorer, evaluation)
        if len(evaluation) > 1:
            for part_name, metrics in per_set.items():
                report.per_set.setdefault(part_name, {})[name] = metrics
    before, after = report.metrics["current"]["macro_f1"], report.metrics["candidate"]["macro_f1"]
    better = after > before + margin
    report.decision = (f"macro-F1 {before:.4f} -> {after:.4f}: "
                       + ("promoted" if better and promote else "better, not promoted (--no-promote)" if better
                          else f"not better by more than {margin}: kept {current.name}"))
    registry = sentiment_registry(home)
    entities = train.entities or [None] * len(train)
    digest = hashlib.sha256("\n".join(f"{t}\t{y}\t{e or ''}" for t, y, e in
                                      zip(train.texts, train.labels, entities, strict=True)).encode()).hexdigest()[:16]
    metrics = {**report.metrics, **({"per_set": report.per_set} if report.per_set else {})}
    with tempfile.TemporaryDirectory() as tmp:
        candidate.save(Path(tmp) / "model")
        version = registry.register(Path(tmp) / "model", ModelVersion(
            id="", parent=registry.active_id(), base_model=options.encoder, created_at="", data_hash=digest,
            config=candidate.info.get("options", {}), metrics=metrics, data=report.data,
            decision=report.decision))
    report.version = version.id
    if better and promote:
        registry.promote(version.id)
        report.promoted = True
    return report
