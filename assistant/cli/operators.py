"""Operator accounts for the operator console (/operator): create one, list them. Passwords are stored as scrypt
hashes; the password is asked for at the prompt (or read from stdin with --password-stdin)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant operators create maria --display-name "Maria Garcia"     # asks for the password twice
  echo "$PASSWORD" | assistant operators create li --password-stdin
  assistant operators list
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common, ["--home", "--database-url"])
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", parents=[common], help="add an operator account")
    create.add_argument("username")
    create.add_argument("--display-name", help="the name customers see on the agent's replies")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    actions.add_parser("list", parents=[common], help="the accounts")


def run(args: argparse.Namespace) -> int:
    import getpass
    import sys

    from rich.console import Console
    from sqlalchemy import select

    from assistant.cli.options import load_from_args
    from assistant.store import HandoffError, open_store
    from assistant.store.schema import Operator

    store = open_store(load_from_args(args).settings)
    try:
        if args.action == "list":
            with store.session() as session:
                for operator in session.scalars(select(Operator).order_by(Operator.username)):
                    print(f"{operator.username}\t{operator.display_name}\t{'disabled' if operator.disabled else ''}")
            return 0
        if args.password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("password: ")
            if getpass.getpass("again: ") != password:
                Console(stderr=True).print("[red]error:[/red] the passwords differ")
                return 2
        store.operators.create_operator(args.username, password, args.display_name)
    except HandoffError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return 2
    finally:
        store.close()
    Console().print(f"operator '{args.username}' can now sign in at /operator/")
    return 0
