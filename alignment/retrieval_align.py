"""`assistant align retrieval`: the retriever learns from the company's own questions. Pairs from FAQ files, BEIR
folders and pair files; hard negatives mined with the encoder in use; a held-out share of the questions; the
bi-encoder fine-tuned; base and candidate judged on the held-out questions over every passage; the candidate
registered (`home/retrieval-registry`, the same rules as chat models) and promoted only when it finds more."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from alignment.retrieval_pairs import (
    PairError,
    PairSet,
    beir_pairs,
    faq_pairs,
    file_pairs,
    held_out,
    mine_negatives,
    text_key,
)
from alignment.retrieval_training import DenseRanker, EncoderTrainingConfig, fine_tune_encoder, held_out_metrics
from assistant.registry import ModelVersion, retrieval_registry
from retrieval.embeddings import encoder_path
from retrieval.evaluation import load_beir

GATED = ("recall@5", "mrr@10")  # the candidate must find at least as much on both, and more on one


@dataclass(frozen=True)
class RetrievalSources:
    faq: list[Path] = field(default_factory=list)
    beir: list[Path] = field(default_factory=list)
    pairs: list[Path] = field(default_factory=list)


@dataclass
class RetrievalAlignReport:
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # {"current": {...}, "candidate": {...}}
    version: str | None = None
    promoted: bool = False
    decision: str = ""


def collect(sources: RetrievalSources) -> tuple[PairSet, list[str]]:
    """Every pair of every source, and the passages to search among (the BEIR corpora and every pair's passage)."""
    collected, corpus = PairSet(), []
    for path in sources.faq:
        collected.add(faq_pairs(path))
    for folder in sources.beir:
        collected.add(beir_pairs(folder))
        corpus += [f"{p.title}\n{p.text}".strip() for p in load_beir(folder)[0]]
    for path in sources.pairs:
        collected.add(file_pairs(path))
    if not collected.positives:
        raise PairError("no (question, passage) pairs: give --faq, --beir or --pairs files that hold some")
    corpus += [p.passage for p in collected.positives] + [n for ns in collected.negatives.values() for n in ns]
    return collected, list({text_key(t): t for t in corpus}.values())


def current_encoder(home: Path, configured: str) -> tuple[str, Path]:
    """The encoder retrieval uses now: the promoted version, else the configured one (name, folder)."""
    active = retrieval_registry(home).active()
    return (active.served_name, active.model_dir) if active else (configured, encoder_path(configured))


def align_retrieval(sources: RetrievalSources, home: Path, configured_encoder: str,
                    config: EncoderTrainingConfig | None = None, promote: bool = True,
                    dry_run: bool = False, held_out_share: float = 0.1) -> RetrievalAlignReport:
    config = config or EncoderTrainingConfig()
    report = RetrievalAlignReport()
    collected, corpus = collect(sources)
    train, kept = held_out(collected.positives, share=held_out_share)
    name, base = current_encoder(home, configured_encoder)
    report.data = {"pairs": len(collected.positives), "duplicates dropped": collected.dropped.get("duplicate", 0),
                   "labelled negatives": sum(len(v) for v in collected.negatives.values()),
                   "passages": len(corpus), "train pairs": len(train), "held-out pairs": len(kept),
                   "base encoder": name}
    if dry_run:
        report.decision = "dry run: nothing trained, registered or promoted"
        return report
    in_use = DenseRanker(base, corpus)  # the passages encoded once: for mining and for judging
    mine_negatives(collected, in_use.search)
    report.metrics["current"] = held_out_metrics(in_use, kept)
    with tempfile.TemporaryDirectory() as scratch:
        candidate = fine_tune_encoder(base, train, collected, Path(scratch) / "model", config)
        report.metrics["candidate"] = held_out_metrics(DenseRanker(candidate, corpus), kept)
        before, after = report.metrics["current"], report.metrics["candidate"]
        better = all(after[m] >= before[m] for m in GATED) and any(after[m] > before[m] for m in GATED)
        said = ", ".join(f"{m} {before[m]:.3f} -> {after[m]:.3f}" for m in GATED)
        report.decision = f"{said}: " + ("promoted" if better and promote else
                                         "better, not promoted (--no-promote)" if better else f"kept {name}")
        digest = hashlib.sha256("\n".join(f"{p.question}\t{p.passage}" for p in train).encode()).hexdigest()[:16]
        registry = retrieval_registry(home)
        version = registry.register(candidate, ModelVersion(
            id="", parent=registry.active_id(), base_model=name.split("@")[0], created_at="", data_hash=digest,
            config=config.__dict__, metrics=report.metrics, data=report.data, decision=report.decision))
    report.version = version.id
    if better and promote:
        registry.promote(version.id)
        report.promoted = True
    return report

