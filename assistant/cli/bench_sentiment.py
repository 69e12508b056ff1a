"""Measure sentiment scoring: the packaged default scorer and a classifier (one trained here on each set's train file,
or one you trained, `--model`) on each set's dev file (accuracy, macro-F1 against the targets), and messages/s in
batches and one message at a time."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant sentiment train --recipe default && \\
    assistant bench sentiment --data ~/.assistant/sentiment-recipe --model current  # the recipe's dev sets
  assistant bench sentiment --data ../shared/data/sentiment
  assistant bench sentiment --data ../shared/data/sentiment --sets reviews_zh --no-train --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder of <set>.train.jsonl / <set>.dev.jsonl files")
    parser.add_argument("--sets", default="tweets_en,finance_forum_zh,reviews_zh,finance_news_en",
                        help="comma-separated set names (those with a dev file in --data)")
    parser.add_argument("--model", metavar="VERSION",
                        help="measure this classifier ('current', a registered version such as v2, or a folder) "
                             "instead of training one per set")
    parser.add_argument("--encoder", default="use-multilingual", help="encoder of the classifiers trained per set")
    parser.add_argument("--no-train", action="store_true", help="measure the default scorer only")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--single", type=int, default=300, help="messages scored one at a time")
    parser.add_argument("--keep-models", metavar="DIR", help="save the trained classifiers here")
    add_settings_flags(parser, ["--home"])
    parser.add_argument("--out", default="bench/results", help="folder for sentiment-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.sentiment import run_benchmark
    from assistant.cli.options import load_from_args

    return run_benchmark(args, load_from_args(args).settings.home_dir if args.model else None)
