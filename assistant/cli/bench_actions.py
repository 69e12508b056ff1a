"""Measure what our code adds around an action's HTTP call (target: p95 <= 20 ms) against the demo company's real
order service, one call at a time and with concurrent customers."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant bench actions
  assistant bench actions --calls 500 --concurrency 32 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=200, help="calls per run")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent calls in the second run")
    parser.add_argument("--out", default="bench/results", help="folder for actions-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.actions import run_benchmark

    return run_benchmark(args)
