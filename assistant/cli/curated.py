"""Curated answers: answers the support team approved, served before the model to the questions that match them
(marked as curated in the conversation), versioned, withdrawn when no longer true, and exported as transcripts for
the next `assistant align`."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant curated add --question "How long do refunds take?" \\
      --answer "Refunds reach your card within 5 working days of our receiving the return." --author maria
  assistant curated add --replaces 3 --question "How long do refunds take?" --answer "..." --author maria  # version 2
  assistant curated list --all
  assistant curated withdraw 3 --author maria
  assistant curated export curated.jsonl      # transcripts for: assistant align --transcripts curated.jsonl
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common, ["--home", "--database-url"])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", parents=[common], help="approve an answer for a question")
    add.add_argument("--question", required=True, help="the customer question it answers")
    add.add_argument("--answer", required=True, help="the answer customers get, as written")
    add.add_argument("--author", required=True, help="who approved it (kept with it)")
    add.add_argument("--replaces", type=int, help="the id of the curated answer this is a new version of")
    listing = actions.add_parser("list", parents=[common], help="the curated answers served now")
    listing.add_argument("--all", action="store_true", help="withdrawn versions too")
    withdraw = actions.add_parser("withdraw", parents=[common], help="stop serving a curated answer")
    withdraw.add_argument("id", type=int)
    withdraw.add_argument("--author", required=True, help="who withdrew it (kept with it)")
    export = actions.add_parser("export", parents=[common], help="the served answers as SFT transcripts (JSONL)")
    export.add_argument("file", help="where to write them")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console

    from assistant.cli.options import load_from_args
    from assistant.insights.curated import curated_answers
    from assistant.store import open_store

    settings = load_from_args(args).settings
    store = open_store(settings)
    console = Console()
    try:
        curated = curated_answers(store, settings)
        if args.action == "add":
            record = curated.add(args.question, args.answer, args.author, replaces=args.replaces)
            console.print(f"curated answer {record.id} (version {record.version}) is served from now on")
        elif args.action == "withdraw":
            record = curated.withdraw(args.id, args.author)
            console.print(f"curated answer {record.id} is no longer served")
        elif args.action == "list":
            for record in store.curated.listed(include_withdrawn=args.all):
                state = ("served" if record.active
                         else f"withdrawn {record.withdrawn_at:%Y-%m-%d} by {record.withdrawn_by}")
                print(f"{record.id}\tv{record.version}\t{state}\tserved {record.served}x\t{record.question}\t"
                      f"{record.answer}")
        else:
            served = store.curated.listed()
            lines = [json.dumps({"id": f"curated-{r.id}-v{r.version}",
                                 "messages": [{"role": "user", "content": r.question},
                                              {"role": "agent", "content": r.answer}],
                                 "metadata": {"source": "curated", "author": r.created_by}}, ensure_ascii=False)
                     for r in served]
            Path(args.file).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
            console.print(f"{len(lines)} curated answers written to {args.file}")
    finally:
        store.close()
    return 0
