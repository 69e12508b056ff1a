"""Align the chat model on support transcripts and feedback: validate and redact the data, SFT then DPO
(TRL + LoRA), evaluate against the model serving now on held-out conversations, register the new version and
promote it only if it is at least as good (the gate). A running server switches to a promoted version by itself.

Transcripts: JSONL {"id", "messages": [{"role": user|assistant|agent|system, "content"}], "metadata"}.
Preferences: JSONL {"prompt": [...], "chosen": [{"role": "assistant", ...}], "rejected": [...]}.
Settings come from assistant.yaml / ASSISTANT_* as for `serve` (model, engine, home, retrieval)."""

from __future__ import annotations

import argparse

from alignment.config import PROFILES
from assistant.cli.options import add_settings_flags, comparison_table, flag_values, print_skipped
from assistant.errors import AssistantError

EXAMPLES = """examples:
  assistant align --transcripts data/transcripts/lumen-support.jsonl      # the demo company, a few minutes on CPU
  assistant align --transcripts data/transcripts/lumen-support.jsonl --profile quick   # a demo: fewer steps
  assistant align --transcripts new.jsonl --preferences pairs.jsonl --align-config data/align.yaml
  assistant align --from-store --kto           # corrections, handoffs and ratings collected since the last run
  assistant align --actions ../shared/data/sgd_actions/train.jsonl --set dpo.enabled=false   # learn to act
  assistant align --transcripts new.jsonl --dry-run                      # validate and show what would happen
  accelerate launch -m assistant align --transcripts big.jsonl --set dpo.pairs_from_model=0   # several GPUs
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transcripts", nargs="+", default=[], metavar="FILE", help="transcript JSONL files")
    parser.add_argument("--preferences", nargs="+", default=[], metavar="FILE", help="preference JSONL files")
    parser.add_argument("--actions", nargs="+", default=[], metavar="FILE",
                        help="action-decision JSONL (conversation so far + OpenAI tools -> the call, or null): "
                             "teaches when to act, which action and which arguments")
    parser.add_argument("--from-store", action="store_true",
                        help="also use the conversations, corrections and ratings stored since the last version")
    parser.add_argument("--kto", action="store_true", help="run KTO on single ratings (thumbs up/down) too")
    parser.add_argument("--align-config", metavar="ALIGN_YAML", help="alignment settings (see data/align.yaml)")
    parser.add_argument("--profile", default="default", choices=sorted(PROFILES),
                        help="a named set of align.yaml overrides over the file (--set still wins): 'quick' = "
                             + ", ".join(f"{k}={v}" for k, v in PROFILES["quick"].items()))
    parser.add_argument("--config", dest="old_align_config", help=argparse.SUPPRESS)  # before --align-config
    parser.add_argument("--settings", metavar="FILE", dest="config_file",
                        help="assistant settings YAML (default: ./assistant.yaml if present)")
    parser.add_argument("--strict", action="store_true", help="stop at the first invalid line instead of skipping")
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; train nothing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override one align.yaml key, e.g. --set sft.max_steps=10 (repeatable)")
    add_settings_flags(parser, ["--model", "--engine", "--home", "--database-url"], config_flag=False)


def overrides(pairs: list[str]) -> dict:
    import yaml

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise AssistantError(f"--set expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def print_report(report, console) -> None:
    """The end-of-run summary: data counts, losses and throughput, metrics before/after, the decision."""
    from rich.table import Table

    print_skipped(report.errors, console)
    data = Table(title="data", show_header=False)
    for key, value in report.data.items():
        if key != "files":
            data.add_row(key, str(value))
    console.print(data)
    if report.stages:
        stages = Table(title="training")
        for column in ("stage", "examples", "steps", "loss", "seconds", "tokens/s", "too long"):
            stages.add_column(column, justify="right")
        for stage, s in report.stages.items():
            stages.add_row(stage, str(s["examples"]), str(s["steps"]), str(s["loss"]), str(s["seconds"]),
                           str(s["tokens_per_s"]), str(s["dropped_too_long"]))
        console.print(stages)
    if report.seconds:
        phases = Table(title=f"time: {sum(report.seconds.values()) / 60:.1f} min in these phases")
        phases.add_column("phase")
        phases.add_column("seconds", justify="right")
        for phase, seconds in report.seconds.items():
            phases.add_row(phase, f"{seconds:.1f}")
        console.print(phases)
    if report.metrics:
        console.print(comparison_table(report.metrics, "held-out answers"))
    if report.version is not None:
        state = "promoted: it serves now" if report.promoted else "registered, not promoted"
        console.print(f"version [bold]{report.version.id}[/bold] {state}")
    console.print(f"decision: {report.decision}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from alignment.config import load_align_settings
    from alignment.pipeline import AlignPipeline, AlignRequest
    from assistant.config import load_settings
    from assistant.engines.base import EngineError

    console = Console(stderr=True)
    if not (args.transcripts or args.preferences or args.actions or args.from_store):
        console.print("error: nothing to train on: give --transcripts, --preferences, --actions or --from-store")
        return 2
    loaded = load_settings(args.config_file, flag_values(args))
    if args.old_align_config:
        console.print("note: `assistant align --config` is now `--align-config` (--config still works for now)")
    config = load_align_settings(args.align_config or args.old_align_config, overrides(args.set), args.profile)
    request = AlignRequest([Path(p) for p in args.transcripts], [Path(p) for p in args.preferences],
                           [Path(p) for p in args.actions], args.from_store, args.kto, args.strict, args.dry_run)
    try:
        report = AlignPipeline(loaded, config, console).run(request)
    except (ValueError, EngineError) as exc:  # bad data or settings, a damaged registry, a model that won't start
        console.print(f"[red]error:[/red] {exc}\nnothing was registered or promoted", soft_wrap=True)
        return 2
    print_report(report, Console())
    return 0
