"""Print the effective settings and where each value came from (default, file, env or flag)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags, load_from_args

EXAMPLES = """example:
  ASSISTANT_VLLM__PORT=8100 assistant config show --config assistant.yaml --port 9000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args: argparse.Namespace) -> int:
    import json

    from assistant.config import settings_table

    loaded = load_from_args(args)
    rows = settings_table(loaded)
    if args.json:
        print(json.dumps({key: {"value": value, "source": source} for key, value, source in rows}, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="assistant settings")
    for column in ("key", "value", "source"):
        table.add_column(column)
    for key, value, source in rows:
        shown = repr(value) if isinstance(value, str) else json.dumps(value)
        table.add_row(key, shown, source, style=None if source == "default" else "bold")
    Console().print(table)
    return 0
