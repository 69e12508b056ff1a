"""Customers' data rights: erase one customer everywhere this server keeps their words (conversations with their
messages, ratings, handoffs and sentiment alerts; rows of transcript exports under the home folder), or apply the
retention period now. Data already trained into a model version is not in any dataset any more and cannot be
taken out of the weights: train a new version after an erasure if that matters."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant gdpr delete --customer c-1042
  assistant gdpr delete --customer c-1042 --yes --json
  assistant gdpr purge --older-than 365
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common, ["--home", "--database-url"])
    common.add_argument("--json", action="store_true", help="print what was deleted as JSON")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    delete = actions.add_parser("delete", parents=[common], help="erase one customer's data")
    delete.add_argument("--customer", required=True, help="the customer id conversations were opened with")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge = actions.add_parser("purge", parents=[common], help="delete conversations past the retention period")
    purge.add_argument("--older-than", type=float, metavar="DAYS",
                       help="no activity for this many days (default: the privacy.retention_days setting)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from rich.console import Console

    from assistant.cli.options import load_from_args
    from assistant.privacy import erase_customer, purge_expired
    from assistant.store import open_store

    settings = load_from_args(args).settings
    err = Console(stderr=True)
    if args.action == "purge":
        days = args.older_than or settings.privacy.retention_days
        if not days or days <= 0:
            err.print("[red]error:[/red] give --older-than DAYS (> 0) or set privacy.retention_days")
            return 2
    elif not args.customer.strip():
        err.print("[red]error:[/red] --customer must not be empty")
        return 2
    elif not args.yes and sys.stdin.isatty():
        answer = input(f"erase every conversation of customer {args.customer!r}? type 'yes': ")
        if answer.strip().lower() != "yes":
            err.print("nothing deleted")
            return 1
    store = open_store(settings)
    try:
        if args.action == "delete":
            deleted = erase_customer(store, settings.exports_dir, args.customer)
        else:
            deleted = purge_expired(store, settings.exports_dir, days)
    finally:
        store.close()
    if args.json:
        print(json.dumps(deleted))
    else:
        print(f"deleted {deleted['conversations']} conversations ({deleted['messages']} messages, "
              f"{deleted['feedback']} ratings/corrections) and {deleted['export_rows']} rows in "
              f"{deleted['export_files']} export files")
    return 0
