"""Evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv): recall@1/5/10, MRR@10,
nDCG@10 and query latency p50/p95, with the configured encoder and fusion."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags, load_from_args, print_metrics

EXAMPLES = """examples:
  assistant eval retrieval ../shared/data/bank_faq_retrieval_en
  assistant eval retrieval ./my-beir-folder --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--home", "--encoder"])
    parser.add_argument("folder", help="a BEIR folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assistant.grounding import index_settings
    from retrieval.evaluation import evaluate

    settings = load_from_args(args).settings
    metrics = evaluate(Path(args.folder), index_settings(settings.retrieval), progress=not args.json)
    print_metrics(metrics, f"retrieval on {args.folder}", args.json)
    return 0
