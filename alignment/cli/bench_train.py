"""Measure the training throughput of `assistant align` (SFT and DPO tokens/s, LoRA) against this machine's
forward+backward FLOP limit: a few steps each on grounded FAQ prompts, on CPU or GPU."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant bench train --faq ../shared/data/bank_faq_retrieval_en
  assistant bench train --faq ../shared/data/bank_faq_retrieval_en --steps 30 --batch-size 8 --random-init --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--home"])
    parser.add_argument("--faq", required=True, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv)")
    parser.add_argument("--steps", type=int, default=8, help="training steps per stage")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--random-init", action="store_true", help="random weights, same architecture and speed")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an align.yaml key")
    parser.add_argument("--out", default="bench/results", help="folder for train-<device>-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from alignment.bench.train import run_benchmark

    return run_benchmark(args)
