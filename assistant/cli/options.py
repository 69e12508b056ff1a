"""Command-line flags that map onto settings keys (the highest-precedence layer)."""

from __future__ import annotations

import argparse
from typing import Any

# flag -> (settings key, help)
SETTINGS_FLAGS: dict[str, tuple[str, str]] = {
    "--model": ("model", "'default', an HF model folder, a .gguf file or a hub id"),
    "--engine": ("engine", "vllm (default) or transformers"),
    "--llm-url": ("llm_url", "use an external OpenAI-compatible server (…/v1) instead of starting vLLM; repeat "
                             "it for several (each answer goes to the least busy one that is up)"),
    "--host": ("host", "address the API listens on"),
    "--port": ("port", "port of the API and the chat page"),
    "--database-url": ("database_url", "SQLAlchemy URL (default: a SQLite file under home)"),
    "--home": ("home", "folder for the model cache, database and logs"),
    "--vllm-port": ("vllm.port", "port of the managed vLLM server (vllm.mode: server)"),
    "--encoder": ("retrieval.encoder", "sentence encoder: 'default' (all-MiniLM-L6-v2) or a model folder"),
}

REPEATABLE = {"llm_url"}  # flags that may be given several times (a list of values)


def add_config_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML settings file (default: ./assistant.yaml if present)")


def add_settings_flags(parser: argparse.ArgumentParser, flags: list[str] | None = None,
                       config_flag: bool = True) -> None:
    if config_flag:
        add_config_flag(parser)
    flags = list(flags or SETTINGS_FLAGS)
    if "--home" in flags and "--database-url" not in flags:  # a home shared by replicas has its registries there
        flags.append("--database-url")
    for flag in flags:
        key, help_text = SETTINGS_FLAGS[flag]
        parser.add_argument(flag, dest=f"setting:{key}", default=None, help=help_text,
                            metavar=key.rsplit(".", 1)[-1].upper(), type=int if key.endswith("port") else str,
                            action="append" if key in REPEATABLE else "store")


def flag_values(args: argparse.Namespace) -> dict[str, Any]:
    return {name.split(":", 1)[1]: value for name, value in vars(args).items()
            if name.startswith("setting:") and value is not None}


def load_from_args(args: argparse.Namespace):
    """Settings for a command: config file, environment, then this command's flags. A PostgreSQL database URL is
    where the registries of a home shared by replicas are found (store/shared_home.py)."""
    from assistant.config import load_settings
    from assistant.store.shared_home import declare_database

    loaded = load_settings(getattr(args, "config", None), flag_values(args))
    declare_database(loaded.settings.home_dir, loaded.settings.effective_database_url)
    return loaded


def print_metrics(metrics: dict, title: str, as_json: bool) -> None:
    """Evaluation output (DESIGN.md): one JSON object on stdout with --json, else a human table."""
    if as_json:
        import json

        print(json.dumps(metrics))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, str(value))
    Console().print(table)


def print_skipped(errors: list[str], console, limit: int = 20, what: str = "invalid lines") -> None:
    """The first `limit` skipped input lines (`file:line: reason`) and how many more there were."""
    for line in errors[:limit]:
        console.print(f"[yellow]skipped[/yellow] {line}", soft_wrap=True)
    if len(errors) > limit:
        console.print(f"[yellow]... and {len(errors) - limit} more {what}[/yellow]")


def comparison_table(metrics: dict[str, dict], title: str):
    """A training run's verdict: one row per metric, one column per model compared (current, candidate, ...)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    for name in metrics:
        table.add_column(name, justify="right")
    for key in next(iter(metrics.values()), {}):
        table.add_row(key, *(str(m.get(key)) for m in metrics.values()))
    return table


def add_retriever_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--retriever", default="current", metavar="current|base|vN",
                        help="current: the promoted retrieval version, else the configured models (default); "
                             "base: the configured models; vN: that registered version")


def chosen_retrieval(args: argparse.Namespace, settings):
    """The retrieval settings `--retriever` names (`--encoder`, when given, means the configured models with it)."""
    from assistant.runtime import served_retrieval

    which = "base" if getattr(args, "setting:retrieval.encoder", None) and args.retriever == "current" \
        else args.retriever
    return which, served_retrieval(settings, which)
