"""`assistant bench retrieval`: encoder rate, ingestion rate, query latency at scale."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from assistant.bench import write_results
from assistant.grounding import DEMO_HELP_CENTER, index_settings
from retrieval.chunking import chunk_document
from retrieval.documents import Passage
from retrieval.knowledge_base import KnowledgeBase
from retrieval.lexical import tokenize
from retrieval.loaders import SkippedFile, discover, load_file

DEMO_QUESTIONS = ["how long do refunds take", "parcel delivered but missing", "reset my password",
                  "free shipping threshold", "two-factor authentication", "退款多久到账", "return without receipt"]


def base_corpus(corpus: str | None) -> tuple[list[Passage], list[str]]:
    if corpus:
        from retrieval.evaluation import load_beir

        passages, queries, _ = load_beir(Path(corpus))
        return passages, list(queries.values())
    passages = []
    for file, root in discover([DEMO_HELP_CENTER]):
        try:
            docs = load_file(file, str(file.relative_to(root.parent)))
        except SkippedFile:
            continue
        passages += [p for d in docs for p in chunk_document(d)]
    return passages, DEMO_QUESTIONS


def scaled(passages: list[Passage], vectors: np.ndarray, size: int, seed: int = 0) -> tuple[list, np.ndarray]:
    """`size` passages: the real ones, then variants (a numbered suffix, vectors with small noise)."""
    rng = np.random.default_rng(seed)
    rows = np.arange(size) % len(passages)
    out_vectors = vectors[rows] + rng.normal(0, 0.02, size=(size, vectors.shape[1])).astype(np.float32)
    out_vectors[: len(passages)] = vectors[: min(size, len(passages))]
    out_vectors /= np.linalg.norm(out_vectors, axis=1, keepdims=True)
    out = [p if i < len(passages) else Passage(id=f"{p.id}-{i}", source=p.source, title=p.title,
                                                text=f"{p.text} (variant {i})")
           for i, p in ((i, passages[r]) for i, r in enumerate(rows))]
    return out, np.ascontiguousarray(out_vectors, dtype=np.float32)


def run_benchmark(args) -> int:
    from assistant.cli.options import chosen_retrieval, load_from_args

    console = Console(stderr=True)
    which, retrieval = chosen_retrieval(args, load_from_args(args).settings)
    config = index_settings(retrieval)
    passages, queries = base_corpus(args.corpus)
    queries = (queries * (args.queries // max(1, len(queries)) + 1))[: args.queries]
    with tempfile.TemporaryDirectory() as scratch:
        kb = KnowledgeBase(Path(scratch) / "small", config)
        texts = [p.indexed_text() for p in passages]
        kb.encoder.encode(texts[:16])  # warm-up
        tokenize(texts[0])  # once per process, like loading the encoder: jieba loads its dictionary (~1 s)
        started = time.perf_counter()
        vectors = kb.encoder.encode(texts)
        encode_rate = len(texts) / (time.perf_counter() - started)
        console.print(f"encoder: {encode_rate:.0f} passages/s raw ({len(texts)} passages)")
        started = time.perf_counter()
        kb.replace_all(passages, progress=False)
        ingest_rate = len(passages) / (time.perf_counter() - started)
        console.print(f"ingestion (encode + index + save): {ingest_rate:.0f} passages/s")

        big_passages, big_vectors = scaled(passages, vectors, args.passages)
        big = KnowledgeBase(Path(scratch) / "big", config)
        big._encoder = kb.encoder
        with console.status(f"building a {args.passages}-passage index"):
            started = time.perf_counter()
            big.replace_all(big_passages, progress=False, vectors=big_vectors)
            build_seconds = time.perf_counter() - started
        console.print(f"{args.passages} passages indexed ({big.dense.kind}) in {build_seconds:.1f}s")
        for q in queries[:5]:
            big.search(q, 5)  # warm-up
        latencies = []
        for q in queries:
            started = time.perf_counter()
            big.search(q, 5)
            latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    result = {
        "benchmark": "retrieval", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
        "retriever": which, "encoder": config.encoder, "reranker": config.reranker, "rerank_top": config.rerank_top,
        "base_corpus": args.corpus or "demo help center", "base_passages": len(passages),
        "encoder_passages_per_s": round(encode_rate, 1), "ingest_passages_per_s": round(ingest_rate, 1),
        "index_passages": args.passages, "index_type": big.manifest["index_type"],
        "index_build_s": round(build_seconds, 1), "queries": len(latencies),
        "query_p50_ms": round(statistics.median(latencies), 2),
        "query_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
    }
    table = "\n".join(["| metric | value |", "|---|---:|", *(f"| {k} | {v} |" for k, v in result.items())]) + "\n"
    write_results(args.out, "retrieval", result, f"# bench retrieval\n\n{table}")
    print(json.dumps(result) if args.json else table)
    return 0
