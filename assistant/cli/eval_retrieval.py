"""Evaluate retrieval on a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv): recall@1/5/10, MRR@10,
nDCG@10 and query latency p50/p95, searched as served: by default with the encoder and reranker
`assistant align retrieval` promoted (`--retriever base`: the configured ones; `--retriever v2`: a registered
version)."""

from __future__ import annotations

import argparse
import sys

from assistant.cli.options import (
    add_retriever_flag,
    add_settings_flags,
    chosen_retrieval,
    load_from_args,
    print_metrics,
)

EXAMPLES = """examples:
  assistant eval retrieval ../shared/data/bank_faq_retrieval_en
  assistant eval retrieval ./my-beir-folder --json
  assistant eval retrieval ../shared/data/bank_faq_retrieval_en --retriever base   # before any alignment
  assistant eval retrieval ../shared/data/bank_faq_retrieval_en --retriever v2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--home", "--encoder"])
    parser.add_argument("folder", help="a BEIR folder")
    add_retriever_flag(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from assistant.grounding import index_settings
    from retrieval.evaluation import evaluate

    which, retrieval = chosen_retrieval(args, load_from_args(args).settings)
    metrics = evaluate(Path(args.folder), index_settings(retrieval), progress=not args.json)
    metrics["retriever"] = which
    print_metrics(metrics, f"retrieval on {args.folder} ({which})", args.json)
    if metrics["unjudged_copies"]:
        print(f"warning: {metrics['unjudged_copies']} of {metrics['queries']} queries appear word for word in "
              f"{args.folder}/corpus.jsonl as a passage qrels.tsv does not judge relevant to them; a retriever that "
              "finds that copy is counted wrong, so recall there is a floor, not the truth", file=sys.stderr)
    return 0
