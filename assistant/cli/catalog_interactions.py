"""Import what customers did with catalogue items (views, carts, purchases, ratings) into the store, where the
recommenders learn from it (`assistant align recommend`). Rows naming items the catalogue does not have, unknown
kinds or bad times are reported with file:line and skipped (`--strict`: stop at the first one, store nothing).

FILE: .csv (header) or .jsonl with `customer`, `item`, `kind` (view | cart | purchase | rating), `time` (ISO-8601 or
unix seconds) and optionally `rating` (1-5). `customer` is the id the widget's signed identity token carries."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant catalog interactions data/catalog/interactions.csv
  assistant catalog interactions history.jsonl --strict
  assistant align recommend                       # retrain the recommender on them
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="interactions file (.csv or .jsonl)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad row and store nothing")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from assistant.cli.options import load_from_args, print_skipped
    from assistant.recommend.ingest import import_interactions
    from assistant.store import open_store

    settings = load_from_args(args).settings
    store = open_store(settings)
    try:
        found = import_interactions(store, Path(args.file), strict=args.strict)
        counts = store.interactions.counts()
    finally:
        store.close()
    print_skipped(found.errors, Console(stderr=True), what="bad rows")
    Console().print(f"{args.file}: {len(found.rows)} interactions read, {found.stored} new stored, "
                    f"{len(found.errors)} skipped; "
                    f"in the store: {counts}", soft_wrap=True)
    return 0
