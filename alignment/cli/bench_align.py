"""Align the default model on transcripts built from a BEIR FAQ folder (question -> gold answer as the human
agent's reply, grounded in the FAQ corpus), then compare answers on test questions it never trained on, before and
after (`assistant eval answers`); report SFT/DPO tokens/s next to this machine's forward+backward FLOP limit."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant bench align --faq ../shared/data/bank_faq_retrieval_en
  assistant bench align --faq ../shared/data/bank_faq_retrieval_en --set sft.epochs=1 --limit 50 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--engine", "--encoder"])
    parser.add_argument("--faq", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels.tsv")
    parser.add_argument("--work", default="bench/work/align", help="scratch folder (its own home and registry)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="questions kept for the test")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test questions")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--align-config", dest="align_config", metavar="ALIGN_YAML", help="align.yaml to use")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an align.yaml key")
    parser.add_argument("--out", default="bench/results", help="folder for align-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from alignment.bench.align import run_benchmark

    return run_benchmark(args)
