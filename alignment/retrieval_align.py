"""`assistant align retrieval`: retrieval learns from the company's own questions. Pairs from FAQ files, BEIR
folders, pair files, transcripts and the store; hard negatives mined with the encoder in use; a held-out share of
the questions; the bi-encoder fine-tuned, its fusion weights chosen (and, asked for, a cross-encoder reranker trained
from its body); the retrieval in use and the candidate judged as served (hybrid search, reranked) on the held-out
questions over every passage; the candidate registered (`home/retrieval-registry`, the same rules as chat models)
and promoted only when it finds more."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from alignment.retrieval_pairs import (
    MIN_SUPPORT,
    PairError,
    PairSet,
    RetrievalPair,
    beir_pairs,
    faq_pairs,
    file_pairs,
    held_out,
    mine_negatives,
    store_pairs,
    text_key,
    transcript_pairs,
)
from alignment.retrieval_training import (
    DenseRanker,
    EncoderTrainingConfig,
    RerankerTrainingConfig,
    fine_tune_encoder,
    fine_tune_reranker,
)
from assistant.registry import RERANKER_FOLDER, SEARCH_FILE, ModelVersion, retrieval_registry
from retrieval.config import IndexSettings
from retrieval.documents import Passage
from retrieval.embeddings import encoder_path
from retrieval.evaluation import load_beir, query_metrics
from retrieval.knowledge_base import KnowledgeBase

GATED = ("recall@5", "mrr@10")  # the candidate must find at least as much on both, and more on one
FUSIONS = ((1.0, 1.0), (2.0, 1.0), (3.0, 1.0), (1.0, 0.0))  # (dense, lexical) weights a candidate chooses among
REPORTED = ("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "latency_p50_ms")


@dataclass(frozen=True)
class RetrievalSources:
    faq: list[Path] = field(default_factory=list)
    beir: list[Path] = field(default_factory=list)
    pairs: list[Path] = field(default_factory=list)
    transcripts: list[Path] = field(default_factory=list)
    conversations: list[dict] = field(default_factory=list)  # from the store (`conversations_for_alignment`)
    knowledge_base: KnowledgeBase | None = None  # what transcript and store pairs point to; searched among too
    min_support: float = MIN_SUPPORT


@dataclass
class RetrievalAlignReport:
    data: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)  # {"current": {...}, "candidate": {...}}
    version: str | None = None
    promoted: bool = False
    decision: str = ""


def collect(sources: RetrievalSources) -> tuple[PairSet, list[str]]:
    """Every pair of every source, and the passages to search among (the BEIR corpora, the knowledge base's
    passages when transcripts or the store are used, and every pair's passage)."""
    collected, corpus = PairSet(), []
    for path in sources.faq:
        collected.add(faq_pairs(path))
    for folder in sources.beir:
        collected.add(beir_pairs(folder))
        corpus += [f"{p.title}\n{p.text}".strip() for p in load_beir(folder)[0]]
    for path in sources.pairs:
        collected.add(file_pairs(path))
    kb = sources.knowledge_base
    if sources.transcripts or sources.conversations:
        if kb is None or len(kb) == 0:
            raise PairError("transcript and store pairs point to knowledge-base passages, and the knowledge base is "
                            "empty: `assistant ingest` the company's documents first")
        for path in sources.transcripts:
            collected.add(transcript_pairs(path, kb, sources.min_support))
        collected.add(store_pairs(sources.conversations, kb, sources.min_support))
        corpus += [p.indexed_text() for p in kb.passages]
    if not collected.positives:
        raise PairError("no (question, passage) pairs: give --faq, --beir, --pairs or --transcripts files that hold "
                        "some, or --from-store once customers have rated answers up or operators corrected some")
    corpus += [p.passage for p in collected.positives] + [n for ns in collected.negatives.values() for n in ns]
    return collected, list({text_key(t): t for t in corpus}.values())


def finds_more(after: dict[str, float], before: dict[str, float]) -> bool:
    """At least as good on every gated metric and better on one."""
    return all(after[m] >= before[m] for m in GATED) and any(after[m] > before[m] for m in GATED)


def as_queries(corpus: list[str], pairs: list[RetrievalPair]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The pairs' questions, and their relevant passages as ids (rows of `corpus`)."""
    ids = {text_key(text): str(i) for i, text in enumerate(corpus)}
    questions: dict[str, dict[str, int]] = {}
    for pair in pairs:
        questions.setdefault(pair.question, {})[ids[text_key(pair.passage)]] = 1
    queries = {f"q{i}": text for i, text in enumerate(questions)}
    return queries, {qid: questions[text] for qid, text in queries.items()}


@contextmanager
def scratch_index(settings: IndexSettings, corpus: list[str]) -> Iterator[KnowledgeBase]:
    """`corpus` encoded once with the settings' encoder, in a scratch knowledge base; `measure` searches it with
    other fusion weights or rerankers without encoding it again."""
    with tempfile.TemporaryDirectory() as scratch:
        kb = KnowledgeBase(Path(scratch), settings)
        kb.replace_all([Passage(id=str(i), source="pairs", title="", text=text) for i, text in enumerate(corpus)],
                       progress=False)
        yield kb


def measure(kb: KnowledgeBase, settings: IndexSettings, corpus: list[str],
            pairs: list[RetrievalPair]) -> dict[str, float]:
    """Retrieval as served with `settings` (hybrid, reranked when a reranker is set) of the pairs' questions over
    every passage of `kb` (a `scratch_index` of `corpus` with the same encoder)."""
    kb.config = settings
    metrics = query_metrics(kb, *as_queries(corpus, pairs))
    return {name: metrics[name] for name in REPORTED}


def judge(settings: IndexSettings, corpus: list[str], pairs: list[RetrievalPair]) -> dict[str, float]:
    """`measure` in an index of its own."""
    with scratch_index(settings, corpus) as kb:
        return measure(kb, settings, corpus, pairs)


def best_fusion(kb: KnowledgeBase, corpus: list[str],
                pairs: list[RetrievalPair]) -> tuple[IndexSettings, dict[str, float]]:
    """The dense and lexical weights that find the most for these questions in `kb` (a tuned encoder often deserves
    more weight than BM25), with what they find; on a tie, the index's own."""
    settings, scored = kb.config, []
    for rank, (dense, lexical) in enumerate([(settings.dense_weight, settings.lexical_weight), *FUSIONS]):
        weighted = replace(settings, dense_weight=dense, lexical_weight=lexical)
        metrics = measure(kb, weighted, corpus, pairs)
        scored.append((sum(metrics[m] for m in GATED), -rank, weighted, metrics))
    best = max(scored, key=lambda s: s[:2])
    return best[2], best[3]


@dataclass
class TrainedCandidate:
    metrics: dict[str, dict[str, float]]  # current, candidate encoder, candidate reranked, candidate (the one kept)
    reranker_kept: bool
    settings: IndexSettings  # the candidate's encoder, fusion weights and reranker


def train_candidate(collected: PairSet, train: list[RetrievalPair], kept: list[RetrievalPair], corpus: list[str],
                    in_use: IndexSettings, out: Path, config: EncoderTrainingConfig,
                    reranker: RerankerTrainingConfig | None) -> TrainedCandidate:
    """Mine hard negatives with the encoder in use; fine-tune the encoder from it into `out` on most of `train`; on
    the rest, choose the fusion weights (saved in `out/search.json`) and whether a reranker trained from the tuned
    body (`out/reranker`) stays; judge the retrieval in use and the candidate as served on `kept`."""
    fit, check = held_out(train, share=0.1, minimum=5)
    base = encoder_path(in_use.encoder)
    mine_negatives(collected, lambda questions, depth: DenseRanker(base, corpus).search(questions, depth),
                   per_question=max(config.hard_negatives, reranker.negatives if reranker else 0))  # encoded if asked
    metrics = {"current": judge(in_use, corpus, kept)}
    fine_tune_encoder(base, fit, collected, out, config)
    with scratch_index(replace(in_use, encoder=str(out), reranker=None), corpus) as kb:
        tuned, found = best_fusion(kb, corpus, check)
        (out / SEARCH_FILE).write_text(json.dumps({"dense_weight": tuned.dense_weight,
                                                     "lexical_weight": tuned.lexical_weight}))
        metrics["candidate encoder"] = measure(kb, tuned, corpus, kept)
        keep = False
        if reranker is not None:
            ranked = fine_tune_reranker(out, fit, collected, out / RERANKER_FOLDER, reranker)
            reranked = replace(tuned, reranker=str(ranked))
            keep = finds_more(measure(kb, reranked, corpus, check), found)
            metrics["candidate reranked"] = measure(kb, reranked, corpus, kept)
            if keep:
                tuned = reranked
    if reranker is not None and not keep:  # a reranker that puts the right passages lower is not kept
        shutil.rmtree(out / RERANKER_FOLDER)
    metrics["candidate"] = metrics["candidate reranked" if keep else "candidate encoder"]
    return TrainedCandidate(metrics, keep, tuned)


def align_retrieval(sources: RetrievalSources, home: Path, in_use: IndexSettings,
                    config: EncoderTrainingConfig | None = None,
                    reranker: RerankerTrainingConfig | None = None, promote: bool = True,
                    dry_run: bool = False, held_out_share: float = 0.1) -> RetrievalAlignReport:
    """`in_use`: the retrieval served now (`assistant.runtime.served_retrieval`: the promoted version, else the
    configured models). `reranker`: also train a cross-encoder reranker (kept only when it finds more); None: the
    reranker in use, if any, stays."""
    config = config or EncoderTrainingConfig()
    report = RetrievalAlignReport()
    collected, corpus = collect(sources)
    train, kept = held_out(collected.positives, share=held_out_share)
    registry = retrieval_registry(home)
    name = registry.active().served_name if registry.active_id() else in_use.encoder
    report.data = {"pairs": len(collected.positives), "duplicates dropped": collected.dropped.get("duplicate", 0),
                   "labelled negatives": sum(len(v) for v in collected.negatives.values()),
                   "passages": len(corpus), "train pairs": len(train), "held-out pairs": len(kept),
                   "base encoder": name, "reranker": "trained" if reranker else in_use.reranker or "none"}
    if dry_run:
        report.decision = "dry run: nothing trained, registered or promoted"
        return report
    with tempfile.TemporaryDirectory() as scratch:
        candidate = Path(scratch) / "model"
        trained = train_candidate(collected, train, kept, corpus, in_use, candidate, config, reranker)
        report.metrics = trained.metrics
        if reranker is not None and not trained.reranker_kept:
            report.data["reranker"] = "not kept: it ranked the validation questions' passages lower"
        report.data["fusion"] = f"dense {trained.settings.dense_weight:g}, lexical {trained.settings.lexical_weight:g}"
        before, after = report.metrics["current"], report.metrics["candidate"]
        better = finds_more(after, before)
        said = ", ".join(f"{m} {before[m]:.3f} -> {after[m]:.3f}" for m in GATED)
        report.decision = f"{said}: " + ("promoted" if better and promote else
                                         "better, not promoted (--no-promote)" if better else f"kept {name}")
        digest = hashlib.sha256("\n".join(f"{p.question}\t{p.passage}" for p in train).encode()).hexdigest()[:16]
        version = registry.register(candidate, ModelVersion(
            id="", parent=registry.active_id(), base_model=name.split("@")[0], created_at="", data_hash=digest,
            config={"encoder": config.__dict__, "reranker": reranker.__dict__ if reranker else None},
            metrics=report.metrics, data=report.data, decision=report.decision))
    report.version = version.id
    if better and promote:
        registry.promote(version.id)
        report.promoted = True
    return report
