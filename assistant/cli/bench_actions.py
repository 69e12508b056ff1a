"""Measure what our code adds around an action's HTTP call (target: p95 <= 20 ms) against the demo company's real
order service, one call at a time and with concurrent customers; with --turns, whole customer turns too: the call
classifier, the model's constrained decision, the call and the reply, with the model serving now."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant bench actions
  assistant bench actions --calls 500 --concurrency 32 --json
  assistant bench actions --turns 20 --model v2          # + whole turns ("where is my order 1043?") with v2
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.cli.options import add_settings_flags

    add_settings_flags(parser, ["--engine", "--home"])
    parser.add_argument("--turns", type=int, default=0,
                        help="also time N whole customer turns that call an action (starts the model; 0: skip)")
    parser.add_argument("--model", default="current",
                        help="for --turns: 'current', 'base', a registered version (v2) or a model folder")
    parser.add_argument("--calls", type=int, default=200, help="calls per run")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent calls in the second run")
    parser.add_argument("--out", default="bench/results", help="folder for actions-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.actions import run_benchmark

    return run_benchmark(args)
