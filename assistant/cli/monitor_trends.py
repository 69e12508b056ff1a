"""Print sentiment per time window over customer chats or ingested feeds: items, label shares, mean score."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant monitor trends                       # customer messages per day
  assistant monitor trends --feeds --by entity --window 6h
  assistant monitor trends --feeds --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--feeds", action="store_true", help="ingested feed items instead of customer messages")
    parser.add_argument("--window", default="1D", help="pandas offset: 1h, 6h, 1D, 7D (default 1D)")
    parser.add_argument("--by", choices=["entity", "topic", "source"], help="one line per entity, topic or source")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args
    from assistant.sentiment.trends import window_table
    from assistant.store import open_store

    store = open_store(load_from_args(args).settings)
    try:
        rows = store.sentiment.feed_items() if args.feeds else store.sentiment.scored_messages()
    finally:
        store.close()
    try:
        table = window_table(rows, args.window, args.by)
    except ValueError as exc:
        Console(stderr=True).print(f"[red]error:[/red] --window {args.window!r}: {exc}")
        return 2
    table["window"] = table["window"].astype(str)
    if args.json:
        print(json.dumps(table.to_dict(orient="records")))
        return 0
    view = Table(title=f"sentiment of {'feeds' if args.feeds else 'customer messages'} per {args.window}")
    for column in table.columns:
        view.add_column(column, justify="right")
    for row in table.itertuples(index=False):
        view.add_row(*map(str, row))
    Console().print(view)
    return 0
