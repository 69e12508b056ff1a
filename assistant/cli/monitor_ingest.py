"""Ingest a feed of timestamped texts (news headlines, forum posts, reviews): every text is scored with the current
sentiment scorer and stored; per-window aggregates are checked and new alerts are printed.

FILE: .csv (header with a `text` column) or .jsonl; each row needs `text` and a time (`timestamp`, `time`,
`date`, `published_at` or `created_at`) and may have `source`, `entity`, `topic`. Bad rows are skipped and
reported with file:line; rows stored before are not stored twice."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant monitor ingest headlines.csv --source news
  assistant monitor ingest posts.jsonl --source forum --entity ACME --window 6h
  assistant monitor trends --feeds --by entity
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="feed files (.csv or .jsonl)")
    parser.add_argument("--source", help="source of rows that name none (news, forum, reviews...)")
    parser.add_argument("--entity", help="entity of rows that name none (a company, product, ticker)")
    parser.add_argument("--topic", help="topic of rows that name none")
    parser.add_argument("--window", help="aggregation window for the alert rules (default sentiment.feed_window)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from assistant.cli.options import load_from_args, print_skipped
    from assistant.registry import RegistryError
    from assistant.sentiment.encoders import EncoderError
    from assistant.sentiment.feeds import FeedError, ingest_feed
    from assistant.sentiment.scorers import load_scorer
    from assistant.store import open_store

    console, out = Console(stderr=True), Console()
    settings = load_from_args(args).settings
    sentiment = settings.sentiment.model_copy(update={"feed_window": args.window} if args.window else {})
    defaults = {"source": args.source, "entity": args.entity, "topic": args.topic}
    store = open_store(settings)
    try:
        scorer = load_scorer(sentiment.scorer, settings.home_dir)
        for path in args.files:
            report = ingest_feed(store, scorer, Path(path), sentiment, defaults, args.strict)
            print_skipped(report.errors, console, what="bad rows")
            out.print(f"{path}: {report.read} rows read, {report.added} stored, {report.duplicates} already stored, "
                      f"{len(report.errors)} skipped; labels {report.labels} ({scorer.name})", soft_wrap=True)
            for alert in report.alerts:
                out.print(f"[red]alert[/red] {alert}", soft_wrap=True)
    except (FeedError, RegistryError, EncoderError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    finally:
        store.close()
    return 0
