"""Evaluate a sentiment scorer on a labelled file: accuracy, macro-F1, per-class precision/recall/F1, messages/s.
A binary file (two labels) is judged on its two labels.

FILE: JSONL {"text": str, "label": "negative"|"neutral"|"positive"}."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant eval sentiment ../shared/data/sentiment/tweets_en.dev.jsonl
  assistant eval sentiment reviews.jsonl --scorer lexicon --json     # the packaged default
  assistant eval sentiment reviews.jsonl --scorer v2                 # a registered classifier
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="labelled JSONL")
    parser.add_argument("--scorer", default="current",
                        help="'current' (what scores messages now), 'lexicon', a version (v2) or a classifier folder")
    parser.add_argument("--strict", action="store_true", help="stop at the first invalid line instead of skipping")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args, print_skipped
    from assistant.registry import RegistryError
    from assistant.sentiment.data import SentimentDataError, read_labelled
    from assistant.sentiment.encoders import EncoderError
    from assistant.sentiment.evaluation import evaluate_scorer
    from assistant.sentiment.scorers import load_scorer

    console = Console(stderr=True)
    try:
        data = read_labelled(Path(args.file), args.strict)
        scorer = load_scorer(args.scorer, load_from_args(args).settings.home_dir)
    except (SentimentDataError, RegistryError, EncoderError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    print_skipped(data.errors, console)
    metrics = evaluate_scorer(scorer, data)
    if args.json:
        import json

        print(json.dumps(metrics))
        return 0
    table = Table(title=f"{args.file} ({metrics['scorer']}): accuracy {metrics['accuracy']}, "
                        f"macro-F1 {metrics['macro_f1']}, {metrics['messages_per_s']} messages/s")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="right")
    for label, row in metrics["per_class"].items():
        table.add_row(label, *(str(row[k]) for k in ("precision", "recall", "f1", "support")))
    Console().print(table)
    return 0
