"""Retrieval evaluation on a BEIR folder: recall@1/5/10, MRR@10, nDCG@10 and query latency."""

from __future__ import annotations

import math
import re
import statistics
import tempfile
import time
from pathlib import Path

from retrieval.config import IndexSettings
from retrieval.documents import Passage
from retrieval.errors import RetrievalError
from retrieval.loaders import BadLine, jsonl_objects


class BEIRFormatError(RetrievalError, ValueError):
    pass


def _jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        try:
            for line_no, row in jsonl_objects(handle):
                missing = [f for f in required if f not in row]
                if missing:
                    raise BEIRFormatError(f"{path}:{line_no}: missing field(s) {', '.join(missing)}")
                rows.append(row)
        except BadLine as exc:
            raise BEIRFormatError(f"{path}:{exc.line_no}: {exc.reason}") from exc
    return rows


def load_corpus(path: Path) -> list[Passage]:
    """A BEIR corpus.jsonl as passages whose `source` is the document id."""
    if not Path(path).is_file():
        raise BEIRFormatError(f"{path} not found: expected a BEIR corpus.jsonl (_id, text, optional title)")
    return [Passage(id=str(r["_id"]), source=str(r["_id"]), title=r.get("title") or "", text=r["text"])
            for r in _jsonl(Path(path), ("_id", "text"))]


def load_beir(folder: Path) -> tuple[list[Passage], dict[str, str], dict[str, dict[str, int]]]:
    """(corpus passages, queries by id, qrels: query id -> {doc id: relevance})."""
    folder = Path(folder)
    qrels_path = next((p for p in (folder / "qrels.tsv", folder / "qrels" / "test.tsv") if p.is_file()), None)
    for needed in (folder / "corpus.jsonl", folder / "queries.jsonl"):
        if not needed.is_file():
            raise BEIRFormatError(f"{needed} not found: a BEIR folder has corpus.jsonl, queries.jsonl, qrels.tsv")
    if qrels_path is None:
        raise BEIRFormatError(f"no qrels.tsv (or qrels/test.tsv) in {folder}")
    corpus = load_corpus(folder / "corpus.jsonl")
    queries = {str(r["_id"]): r["text"] for r in _jsonl(folder / "queries.jsonl", ("_id", "text"))}
    qrels: dict[str, dict[str, int]] = {}
    for line_no, line in enumerate(qrels_path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if line_no == 1 and not parts[-1].strip().lstrip("-").isdigit():
            continue  # header
        if len(parts) < 3:
            raise BEIRFormatError(f"{qrels_path}:{line_no}: expected 'query-id<TAB>corpus-id<TAB>score'")
        if int(parts[2]) > 0:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return corpus, queries, qrels


def ranking_metrics(ranked: list[str], relevant: dict[str, int]) -> dict[str, float]:
    """Metrics of one query's ranked document ids against its relevant ids."""
    metrics = {}
    for k in (1, 5, 10):
        metrics[f"recall@{k}"] = len(set(ranked[:k]) & set(relevant)) / len(relevant)
    metrics["mrr@10"] = next((1 / rank for rank, doc in enumerate(ranked[:10], 1) if doc in relevant), 0.0)
    dcg = sum((2 ** relevant.get(doc, 0) - 1) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:10], 1))
    ideal = sorted(relevant.values(), reverse=True)[:10]
    idcg = sum((2 ** rel - 1) / math.log2(rank + 1) for rank, rel in enumerate(ideal, 1))
    metrics["ndcg@10"] = dcg / idcg if idcg else 0.0
    return metrics


def evaluate(folder: Path, config: IndexSettings | None = None, progress: bool = True,
             work_dir: Path | None = None) -> dict:
    """Index the BEIR folder's corpus in a scratch knowledge base, run every judged query, average the metrics."""
    corpus, queries, qrels = load_beir(folder)
    judged = {qid: queries[qid] for qid in queries if qid in qrels}
    if not judged:
        raise BEIRFormatError(f"no query in {folder}/queries.jsonl has a relevance judgement in qrels")
    result = evaluate_queries(corpus, judged, qrels, config, progress, work_dir)
    result["unjudged_copies"] = len(unjudged_copies(corpus, judged, qrels))
    return result


def unjudged_copies(corpus: list[Passage], queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> list[str]:
    """Ids of the queries whose own text (punctuation, case and spacing aside) is a corpus passage not judged
    relevant to them: the judgements are incomplete there, and a retriever that finds the copy is counted wrong."""
    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", text).casefold()

    by_text: dict[str, set[str]] = {}
    for passage in corpus:
        by_text.setdefault(key(passage.text), set()).add(passage.id)
    return [qid for qid, text in queries.items()
            if key(text) and by_text.get(key(text), set()) - set(qrels.get(qid, {}))]


def evaluate_queries(corpus: list[Passage], queries: dict[str, str], qrels: dict[str, dict[str, int]],
                     config: IndexSettings | None = None, progress: bool = True,
                     work_dir: Path | None = None) -> dict:
    """Search `corpus` (indexed in a scratch knowledge base, as served: hybrid, reranked when a reranker is set)
    with each query; the averaged metrics against `qrels`, query latency and indexing time."""
    from retrieval.knowledge_base import KnowledgeBase

    with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
        kb = KnowledgeBase(Path(scratch), config)
        started = time.perf_counter()
        kb.replace_all(corpus, progress=progress)
        index_seconds = time.perf_counter() - started
        result = query_metrics(kb, queries, qrels, progress)
        index_type = kb.dense.kind
    result.update({"corpus": len(corpus), "index_type": index_type, "index_seconds": round(index_seconds, 2),
                   "encoder": (config or IndexSettings()).encoder})
    if (config or IndexSettings()).reranker:
        result["reranker"] = config.reranker
    return result


def query_metrics(kb, queries: dict[str, str], qrels: dict[str, dict[str, int]], progress: bool = False) -> dict:
    """Search the knowledge base `kb` with each query (as its settings say); averaged metrics and latency."""
    from tqdm import tqdm

    kb.search(next(iter(queries.values())), 10)  # warm-up
    totals: dict[str, float] = {}
    latencies = []
    for qid, text in tqdm(queries.items(), desc="queries", unit="q", disable=not progress):
        started = time.perf_counter()
        hits = kb.search(text, 10)
        latencies.append((time.perf_counter() - started) * 1000)
        for name, value in ranking_metrics([h.passage.id for h in hits], qrels[qid]).items():
            totals[name] = totals.get(name, 0.0) + value
    latencies.sort()
    result = {name: round(value / len(queries), 4) for name, value in totals.items()}
    result.update({
        "queries": len(queries),
        "latency_p50_ms": round(statistics.median(latencies), 2),
        "latency_p95_ms": round(latencies[min(len(latencies) - 1, math.ceil(0.95 * len(latencies)) - 1)], 2),
    })
    return result
