"""Model versions made by `assistant align` (or, with --sentiment, --retrieval or --recommend, the sentiment
classifiers, retrieval encoders or recommenders its subcommands make): list them, show one, promote one, roll back.

A running `assistant serve` switches to the promoted version by itself: the new model starts next to the old one,
which keeps answering until the new one is healthy (no request is dropped)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant models list
  assistant models show v2
  assistant models promote v2        # serve v2 (a running server switches once it has loaded v2)
  assistant models rollback          # back to the previously active version (or the base model)
  assistant models list --sentiment  # sentiment classifiers (rollback past v1: the packaged lexicon scorer)
  assistant models list --retrieval  # retrieval encoders made by `assistant align retrieval`
  assistant models list --recommend  # recommenders made by `assistant align recommend`
  assistant models link /data/served-model   # for an external vLLM: the folder of what should serve now
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    add_settings_flags(common, ["--home"])
    kinds = common.add_mutually_exclusive_group()
    kinds.add_argument("--sentiment", action="store_true", help="sentiment classifiers instead of chat models")
    kinds.add_argument("--retrieval", action="store_true", help="retrieval encoders (`assistant align retrieval`)")
    kinds.add_argument("--recommend", action="store_true", help="recommenders (`assistant align recommend`)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[common], help="every version with parent, data hash, metrics and date")
    show = actions.add_parser("show", parents=[common], help="everything recorded about one version (JSON)")
    show.add_argument("version")
    promote = actions.add_parser("promote", parents=[common], help="serve this version")
    promote.add_argument("version")
    actions.add_parser("rollback", parents=[common], help="serve the previously active version again")
    link = actions.add_parser("link", parents=[common], help="point PATH at the chat model folder that should "
                              "serve now (the promoted version, else the configured model, converted once): what an "
                              "external vLLM serves (deploy/); restart it after a promotion")
    link.add_argument("path", metavar="PATH")


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args
    from assistant.registry import RegistryError
    from assistant.runtime import model_registry

    settings = load_from_args(args).settings
    if args.action == "link":
        return link_served_model(settings, args.path)
    if args.sentiment:
        from assistant.sentiment.scorers import sentiment_registry

        registry, base = sentiment_registry(settings.home_dir), "the packaged lexicon scorer"
    elif args.retrieval:
        from assistant.registry import retrieval_registry

        registry, base = retrieval_registry(settings.home_dir), f"the configured encoder ({settings.retrieval.encoder})"
    elif args.recommend:
        from assistant.recommend.service import recommend_registry

        registry, base = recommend_registry(settings.home_dir), "co-occurrence fitted on the stored interactions"
    else:
        registry, base = model_registry(settings), f"the configured base model ({settings.model})"
    console = Console()
    try:
        if args.action == "list":
            active = registry.active()
            table = Table(title=f"model versions in {registry.root}")
            for column in ("version", "active", "parent", "base", "data", "gate metric", "created", "decision"):
                table.add_column(column)
            for v in registry.list():
                metric = ("macro_f1" if args.sentiment else "recall@5" if args.retrieval else "ndcg@10"
                          if args.recommend else v.config.get("gate", {}).get("metric", "token_f1"))
                score = v.metrics.get("candidate", {}).get(metric)
                table.add_row(v.id, "*" if active and active.id == v.id else "", v.parent or "base", v.base_model,
                              v.data_hash, f"{metric} {score}", v.created_at, v.decision)
            console.print(table)
            if active is None:
                console.print(f"serving: {base}")
        elif args.action == "show":
            print(json.dumps(registry.get(args.version).as_dict(), indent=2, ensure_ascii=False))
        elif args.action == "promote":
            version = registry.promote(args.version)
            console.print(f"promoted {version.id}: a running server switches to it as soon as it has started")
        else:
            version = registry.rollback()
            console.print(f"rolled back: now serving {version.id if version else base}")
    except RegistryError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    return 0


def link_served_model(settings, path: str) -> int:
    """`PATH` becomes a symbolic link to the folder of the chat model that should serve (replaced atomically)."""
    import os
    from pathlib import Path

    from rich.console import Console

    from assistant.errors import AssistantError
    from assistant.runtime import serving_model

    model, version = serving_model(settings)
    link = Path(path).expanduser()
    if link.exists() and not link.is_symlink():
        raise AssistantError(f"{link} exists and is not a link: choose another path or remove it")
    link.parent.mkdir(parents=True, exist_ok=True)
    staged = link.with_name(f".{link.name}.{os.getpid()}")
    staged.unlink(missing_ok=True)
    staged.symlink_to(Path(model.path).resolve(), target_is_directory=True)
    os.replace(staged, link)
    Console().print(f"{link} -> {Path(model.path).resolve()} ({version or 'the configured model'}, served as "
                    f"{model.name})", soft_wrap=True)
    return 0
