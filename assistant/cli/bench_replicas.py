"""Replicas: 2 `assistant serve` processes on one PostgreSQL and one LLM server, simulated customers spread over
them, one replica SIGKILLed in the middle (assistant/bench/replicas.py). Exit status 1 when a promise is broken: a
message accepted but not stored, a conversation that did not continue, shared work on two replicas at once, a rate
limit exceeded across replicas."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags
from assistant.errors import AssistantError

EXAMPLES = """examples:
  assistant bench replicas --database-url postgresql+psycopg://user:pass@localhost/scratch
      # 30 customers, 2 minutes a phase: 1 replica, 2 replicas, 2 with one killed; one vLLM started here
  assistant bench replicas --database-url postgresql+psycopg://... --llm-url http://gpu-box:8000/v1 \\
      --customers 10 --duration 30 --phases kill --json
  assistant bench replicas --database-url postgresql+psycopg://... --phases one,two --answer-style generative
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--home", "--database-url", "--llm-url"])
    parser.add_argument("--customers", type=int, default=30, help="simulated customers (default 30)")
    parser.add_argument("--duration", type=float, default=120, help="seconds of each phase (default 120)")
    parser.add_argument("--phases", default="one,two,kill",
                        help="comma-separated: one (1 replica), two (2 replicas), kill (2, one SIGKILLed half-way)")
    parser.add_argument("--lease-ttl", type=float, default=10, help="replicas' lease time in seconds (default 10)")
    parser.add_argument("--rate-limit", type=int, default=20,
                        help="requests a minute per client address, probed across the replicas (default 20)")
    parser.add_argument("--answer-style", choices=["grounded", "generative", "auto"],
                        help="the replicas' answers.style (generative: every answer is written by the LLM server, "
                             "so the run measures generation; default: the product's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench/results", help="folder for replicas-<time>.json and .md")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from rich.console import Console

    from assistant.bench.replicas import run_replicas
    from assistant.cli.options import load_from_args

    settings = load_from_args(args).settings
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(phases) - {"one", "two", "kill"})
    if unknown or not phases:
        raise AssistantError(f"--phases: unknown phase(s) {', '.join(unknown) or '(none)'}; use one, two, kill")
    if args.customers < 1 or args.duration <= 0:
        raise AssistantError("--customers must be >= 1 and --duration > 0")
    url = settings.database_url or ""
    if not url.startswith("postgresql"):
        raise AssistantError("replicas share a PostgreSQL database: pass --database-url postgresql+psycopg://… "
                             "(a scratch database: the benchmark's conversations are stored there)")
    console = Console(stderr=True)
    vllm = None
    llm_urls, name = settings.llm_urls, ""
    if not llm_urls:
        from assistant.engines.vllm_process import VLLMProcess
        from assistant.model_files import resolve_model
        from assistant.ports import free_port

        model = resolve_model(settings.model, settings.models_dir)
        vllm = VLLMProcess(model.path, model.name, settings.vllm.model_copy(update={"port": free_port()}),
                           settings.logs_dir)
        vllm.start()
        llm_urls, name = [vllm.base_url], f"one vLLM, {model.name}"
    try:
        report = run_replicas(url, llm_urls, args.customers, args.duration, phases, Path(args.out), console,
                              seed=args.seed, lease_ttl_s=args.lease_ttl, rate_limit=args.rate_limit, llm_name=name,
                              extra_env={"ASSISTANT_ANSWERS__STYLE": args.answer_style} if args.answer_style else None)
    finally:
        if vllm is not None:
            vllm.terminate()
    if args.json:
        print(json.dumps(report))
    return 0 if report["passed"] else 1
