"""`assistant sentiment train` (formerly `assistant align sentiment`): train a classifier, compare it with the
scorer in use on an evaluation set, register it, and promote it only when it scores better (macro-F1)."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant.registry import ModelVersion
from assistant.sentiment.classifier import train_classifier
from assistant.sentiment.data import LabelledSet, hash_fraction, read_many
from assistant.sentiment.evaluation import evaluate_scorer
from assistant.sentiment.options import TrainingOptions
from assistant.sentiment.scorers import load_scorer, sentiment_registry


@dataclass
class SentimentAlignReport:
    data: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)  # {"current": {...}, "candidate": {...}}
    version: str | None = None
    promoted: bool = False
    decision: str = ""


def _split_eval(data: LabelledSet, share: float = 0.1) -> tuple[LabelledSet, LabelledSet]:
    """A stable held-out share of the training rows (by text hash) when no evaluation file is given."""
    train, held = LabelledSet(errors=data.errors), LabelledSet()
    for text, label in zip(data.texts, data.labels, strict=True):
        target = held if hash_fraction(text, part=1) < share else train
        target.texts.append(text)
        target.labels.append(label)
    return train, held


def align_sentiment(train_files: list[Path], eval_files: list[Path], home: Path, options: TrainingOptions,
                    margin: float = 0.0, promote: bool = True, strict: bool = False) -> SentimentAlignReport:
    report = SentimentAlignReport()
    train = read_many(train_files, strict)
    if eval_files:
        evaluation = read_many(eval_files, strict)
    else:
        train, evaluation = _split_eval(train)
    report.errors = train.errors + evaluation.errors
    report.data = {"train examples": len(train), "train labels": train.counts(), "eval examples": len(evaluation),
                   "eval from": ", ".join(map(str, eval_files)) or "10% of the training rows",
                   "skipped lines": len(report.errors)}
    if len(evaluation) == 0:
        raise ValueError("the evaluation set is empty; give --eval FILE")
    current = load_scorer("current", home)
    report.metrics["current"] = evaluate_scorer(current, evaluation)
    candidate = train_classifier(train, options)
    report.metrics["candidate"] = evaluate_scorer(candidate, evaluation)
    before, after = report.metrics["current"]["macro_f1"], report.metrics["candidate"]["macro_f1"]
    better = after > before + margin
    report.decision = (f"macro-F1 {before:.4f} -> {after:.4f}: "
                       + ("promoted" if better and promote else "better, not promoted (--no-promote)" if better
                          else f"not better by more than {margin}: kept {current.name}"))
    registry = sentiment_registry(home)
    digest = hashlib.sha256("\n".join(f"{t}\t{y}" for t, y in zip(train.texts, train.labels, strict=True))
                            .encode()).hexdigest()[:16]
    with tempfile.TemporaryDirectory() as tmp:
        candidate.save(Path(tmp) / "model")
        version = registry.register(Path(tmp) / "model", ModelVersion(
            id="", parent=registry.active_id(), base_model=options.encoder, created_at="", data_hash=digest,
            config=candidate.info.get("options", {}), metrics=report.metrics, data=report.data,
            decision=report.decision))
    report.version = version.id
    if better and promote:
        registry.promote(version.id)
        report.promoted = True
    return report
