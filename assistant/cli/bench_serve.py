"""Measure serving: tokens/s and time-to-first-token p50/p95 at several concurrency levels.

Compares (a) our API over vLLM, (b) vLLM called directly, (c) our API over the transformers engine and
(d) sequential `model.generate`, on the configured model. Writes JSON and a markdown table under bench/results/.
"""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant bench serve --concurrency 1,4,16 --json
  assistant bench serve --targets a,b --requests-per-client 2 --max-tokens 64
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--home", "--vllm-port"])
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated client counts (default 1,4,16)")
    parser.add_argument("--targets", default="a,b,c,d",
                        help="a=API over vLLM, b=vLLM direct, c=API over transformers, d=sequential generate")
    parser.add_argument("--requests-per-client", type=int, default=2, help="requests each client sends per level")
    parser.add_argument("--repeats", type=int, default=3, help="runs per level, alternating targets; median kept")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens generated per request (fixed length)")
    parser.add_argument("--out", default="bench/results", help="folder for serve-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")


def run(args: argparse.Namespace) -> int:
    from assistant.bench.serve import run_benchmark

    return run_benchmark(args)
