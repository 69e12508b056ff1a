"""Load test: simulated customers chat with the default stack (`assistant serve` in its own process) over loopback
for a bounded time; answer latency p50/p95, error rate, and messages accepted vs stored (they must be equal).
Exit status 1 when a message the server accepted is missing from the store."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags
from assistant.errors import AssistantError

EXAMPLES = """examples:
  assistant bench load                                   # 50 customers for 2 minutes
  assistant bench load --customers 10 --duration 30 --max-tokens 64 --json
  assistant bench load --answer-style generative --max-wait 0       # every answer written by the model, no shedding
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--home"])
    parser.add_argument("--customers", type=int, default=50, help="simulated customers (default 50)")
    parser.add_argument("--duration", type=float, default=120, help="seconds new messages are sent (default 120)")
    parser.add_argument("--engine", choices=["vllm", "transformers"], help="default: vllm when installed")
    parser.add_argument("--max-tokens", type=int, help="cap answer length (default: the generation setting)")
    parser.add_argument("--answer-style", choices=["grounded", "generative", "auto"],
                        help="answers.style for the run (default: the product's, auto)")
    parser.add_argument("--max-wait", type=float, help="answers.max_wait_s for the run: past this estimated wait "
                                                       "for the model's first word an answer is composed from the "
                                                       "sources at once (0: always wait; default: the setting)")
    parser.add_argument("--seed", type=int, default=0, help="questions and pauses are drawn from this seed")
    parser.add_argument("--out", default="bench/results", help="folder for load-<time>.json, .md and .log")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.customers import run_load

    if args.customers < 1 or args.duration <= 0:
        raise AssistantError("--customers must be >= 1 and --duration > 0")
    return run_load(args)
