"""Measure sentiment scoring: the packaged default scorer and a classifier trained on each set's train file, on the
set's dev file (accuracy, macro-F1 against the targets), and messages/s in batches and one message at a time."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant bench sentiment --data ../shared/data/sentiment
  assistant bench sentiment --data ../shared/data/sentiment --sets reviews_zh --no-train --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of <set>.train.jsonl / <set>.dev.jsonl files")
    parser.add_argument("--sets", default="tweets_en,finance_forum_zh,reviews_zh", help="comma-separated set names")
    parser.add_argument("--encoder", default="use-multilingual", help="encoder of the trained classifier")
    parser.add_argument("--no-train", action="store_true", help="measure the default scorer only")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--single", type=int, default=300, help="messages scored one at a time")
    parser.add_argument("--keep-models", metavar="DIR", help="save the trained classifiers here")
    parser.add_argument("--out", default="bench/results", help="folder for sentiment-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.sentiment import run_benchmark

    return run_benchmark(args)
