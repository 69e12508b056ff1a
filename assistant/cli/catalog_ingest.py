"""Ingest the company's catalogue into the store, incrementally: new ids are added, changed items rewritten, equal
ones left alone (`--prune` also removes items the file no longer lists). All or nothing: a file with a bad row
(a duplicate id, a price that is not a number, a missing title) is reported with file:line and changes nothing.

FILE: .csv (header) or .jsonl with `id`, `title` and optionally `description`, `category`, `price`, `currency`,
`attributes`, `available`, `url`, `image` (README "Recommendations")."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant catalog ingest data/catalog/lumen-catalog.csv
  assistant catalog ingest products.jsonl --prune          # the file is the whole catalogue now
  assistant catalog interactions orders-history.csv
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="catalogue file (.csv or .jsonl)")
    parser.add_argument("--prune", action="store_true", help="remove stored items the file does not list")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from assistant.cli.options import load_from_args
    from assistant.recommend.ingest import ingest_catalog
    from assistant.store import open_store

    settings = load_from_args(args).settings
    store = open_store(settings)
    try:
        report = ingest_catalog(store, Path(args.file), prune=args.prune)
        total = len(store.catalog.ids())
    finally:
        store.close()
    Console().print(f"{args.file}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
                    f"{report.removed} removed; {total} items in the catalogue", soft_wrap=True)
    return 0
