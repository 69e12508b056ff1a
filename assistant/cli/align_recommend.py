"""Retrain the recommender on every interaction in the store (imported history and what customers did with
recommendations: clicks count, dismissals do not), compare it with the one serving on each customer's last item,
register it, and promote it when it ranks those items better (NDCG@10). A running server picks up the promotion
at its next recommendation."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant align recommend
  assistant align recommend --kind sasrec --no-promote
  assistant models list --recommend
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", default="transitions", help="transitions (default), sasrec, cooccurrence or "
                                                               "popularity")
    parser.add_argument("--margin", type=float, default=0.0, help="promote only when NDCG@10 gains more than this")
    parser.add_argument("--no-promote", action="store_true", help="register without promoting")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_settings_flags(parser, ["--home", "--database-url"])


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from assistant.cli.options import comparison_table, load_from_args
    from assistant.recommend.training import align_recommender
    from assistant.store import open_store

    settings = load_from_args(args).settings
    store = open_store(settings)
    try:
        interactions = store.interactions.all()
    finally:
        store.close()
    report = align_recommender(interactions, settings.home_dir, args.kind, args.margin, not args.no_promote,
                               progress=not args.json)
    if args.json:
        print(json.dumps({"data": report.data, "metrics": report.metrics, "version": report.version,
                          "promoted": report.promoted, "decision": report.decision}))
        return 0
    out = Console()
    out.print(report.data)
    out.print(comparison_table(report.metrics, "held-out last items"))
    out.print(f"registered {report.version}: {report.decision}")
    return 0
