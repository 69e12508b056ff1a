"""Measure retrieval: raw encoder rate, ingestion rate, and query latency p50/p95 at a large index size.

The large index is made of the corpus' real passages and embeddings replicated with small perturbations
(text variants, vectors with noise): it exercises FAISS (HNSW above the threshold) and BM25 at that size
without hours of encoding on a CPU.
"""

from __future__ import annotations

import argparse

from assistant.cli.options import add_retriever_flag, add_settings_flags

EXAMPLES = """examples:
  assistant bench retrieval --corpus ../shared/data/bank_faq_retrieval_en --passages 100000
  assistant bench retrieval --json            # the demo help center as the base corpus
  assistant bench retrieval --corpus ../shared/data/bank_faq_retrieval_en --home bench/work/align-retrieval/home
      # searched with the encoder and reranker `assistant bench align-retrieval` promoted there
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--home", "--encoder"])
    add_retriever_flag(parser)
    parser.add_argument("--corpus", help="a BEIR folder whose corpus and queries are used (default: demo help center)")
    parser.add_argument("--passages", type=int, default=100_000, help="index size for the latency test")
    parser.add_argument("--queries", type=int, default=200, help="queries timed at that size")
    parser.add_argument("--out", default="bench/results", help="folder for retrieval-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.retrieval import run_benchmark

    return run_benchmark(args)
