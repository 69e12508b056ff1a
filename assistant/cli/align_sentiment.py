"""Train the sentiment classifier on labelled texts: a pretrained sentence encoder (the packaged multilingual USE,
or a sentence-transformers folder, fine-tuned; SetFit-style when a label has few examples) with a softmax head,
fused with a character/word n-gram head. It is evaluated against the scorer in use, registered, and promoted when
its macro-F1 is higher. A running server picks up the promoted classifier within a few seconds.

FILE: JSONL {"text": str, "label": "negative"|"neutral"|"positive"} (binary sets use two labels)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant sentiment train --train ../shared/data/sentiment/tweets_en.train.jsonl \\
      --eval ../shared/data/sentiment/tweets_en.dev.jsonl
  assistant sentiment train --train labelled.jsonl                  # evaluates on 10% of the rows
  assistant sentiment train --train few.jsonl --encoder my-st-model/ --epochs 3   # fine-tune an encoder folder
  assistant models list --sentiment                                 # what is registered and promoted
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.sentiment.options import TrainingOptions

    defaults = TrainingOptions()
    parser.add_argument("--train", nargs="+", required=True, metavar="FILE", help="labelled JSONL files")
    parser.add_argument("--eval", nargs="+", default=[], metavar="FILE",
                        help="labelled JSONL to compare on (default: 10%% of the training rows)")
    parser.add_argument("--encoder", default=defaults.encoder,
                        help="'use-multilingual' (packaged, frozen), 'none' (n-grams only) or a "
                             "sentence-transformers folder to fine-tune")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="fine-tuning epochs (encoder folder)")
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--few-shot-below", type=int, default=defaults.few_shot_below,
                        help="SetFit-style training when some label has fewer examples than this")
    parser.add_argument("--margin", type=float, default=0.0, help="macro-F1 gain required to promote")
    parser.add_argument("--no-promote", action="store_true", help="register only")
    parser.add_argument("--strict", action="store_true", help="stop at the first invalid line instead of skipping")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args, print_skipped
    from assistant.registry import RegistryError
    from assistant.sentiment.align_run import align_sentiment
    from assistant.sentiment.data import SentimentDataError
    from assistant.sentiment.encoders import EncoderError
    from assistant.sentiment.options import TrainingOptions

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    options = TrainingOptions(encoder=args.encoder, epochs=args.epochs, learning_rate=args.learning_rate,
                              batch_size=args.batch_size, few_shot_below=args.few_shot_below)
    try:
        report = align_sentiment([Path(p) for p in args.train], [Path(p) for p in args.eval], settings.home_dir,
                                 options, args.margin, not args.no_promote, args.strict)
    except (SentimentDataError, EncoderError, RegistryError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    print_skipped(report.errors, console)
    data = Table(title="data", show_header=False)
    for key, value in report.data.items():
        data.add_row(key, str(value))
    metrics = Table(title="evaluation")
    metrics.add_column("metric")
    names = list(report.metrics)
    for name in names:
        metrics.add_column(f"{name} ({report.metrics[name]['scorer']})", justify="right")
    for key in ("accuracy", "macro_f1", "messages_per_s"):
        metrics.add_row(key, *(str(report.metrics[n][key]) for n in names))
    out = Console()
    out.print(data)
    out.print(metrics)
    out.print(f"registered [bold]{report.version}[/bold]: {report.decision}")
    return 0
