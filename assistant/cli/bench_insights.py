"""Time the Insights view's sections (outcomes, topics, drill-down, knowledge gaps, curated answers) on a store of
many conversations (target: the page for 100k conversations in <= 2 s). The store is filled once with synthetic
conversations over a year, starting with real customer questions, and kept: a second run only times."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant bench insights                                   # 100k conversations in HOME/bench-insights.db
  assistant bench insights --conversations 10000 --store /tmp/insights.db --days 7,30
  assistant bench insights --database-url postgresql+psycopg://u:p@host/db --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.bench.insights import DEFAULT_QUESTIONS
    from assistant.cli.options import add_settings_flags

    add_settings_flags(parser, ["--home"])  # with --database-url: a database (e.g. PostgreSQL) filled the same way
    parser.add_argument("--conversations", type=int, default=100_000, help="conversations the store holds")
    parser.add_argument("--store", help="SQLite file to fill and keep (default: HOME/bench-insights.db)")
    parser.add_argument("--questions", default=str(DEFAULT_QUESTIONS),
                        help="customer questions: CSV with a 'text' column, JSONL of {\"text\"}, or one per line")
    parser.add_argument("--days", type=lambda v: [int(d) for d in v.split(",")], default=[30, 365],
                        help="periods to time, comma-separated days")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per section (after one warm run)")
    parser.add_argument("--out", default="bench/results", help="folder for insights-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.insights import run_benchmark

    return run_benchmark(args)
