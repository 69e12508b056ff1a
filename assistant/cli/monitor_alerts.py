"""List sentiment alerts: conversations that turned negative and feed windows whose negative share passed its
threshold or jumped against its baseline."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant monitor alerts
  assistant monitor alerts --scope feed --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", choices=["conversation", "feed"], help="only alerts of this kind")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print the alerts as JSON")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args
    from assistant.store import open_store

    store = open_store(load_from_args(args).settings)
    try:
        alerts = store.sentiment.sentiment_alerts(args.limit, args.scope)
    finally:
        store.close()
    if args.json:
        print(json.dumps([asdict(a) for a in alerts], default=str))
        return 0
    table = Table(title=f"{len(alerts)} sentiment alerts (newest first)")
    for column in ("created", "scope", "rule", "where", "detail"):
        table.add_column(column)
    for a in alerts:
        where = a.conversation_id or a.entity or "all"
        table.add_row(a.created_at.strftime("%Y-%m-%d %H:%M"), a.scope, a.rule, where, a.detail)
    Console().print(table)
    return 0
