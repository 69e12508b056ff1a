"""Search the knowledge base: ranked passages with scores and sources (English or Chinese)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags, load_from_args

EXAMPLES = """examples:
  assistant search "how long do refunds take"
  assistant search "退款多久到账" -k 3 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--home", "--encoder"])
    parser.add_argument("query", help="the question to search for")
    parser.add_argument("-k", type=int, default=5, help="number of passages (default 5)")
    parser.add_argument("--json", action="store_true", help="print the hits as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from assistant.errors import AssistantError
    from assistant.grounding import Grounder, index_settings
    from assistant.prompt import CJK
    from retrieval.knowledge_base import KnowledgeBase

    settings = load_from_args(args).settings
    kb = KnowledgeBase(settings.knowledge_dir, index_settings(settings.retrieval))
    if len(kb) == 0:
        raise AssistantError(f"the knowledge base in {settings.knowledge_dir} is empty: "
                             "run `assistant ingest PATH` first")
    hits = kb.search(args.query, args.k)
    if args.json:
        print(json.dumps([h.as_dict() for h in hits], ensure_ascii=False, indent=1))
        return 0
    console = Console()
    for rank, hit in enumerate(hits, 1):
        p = hit.passage
        where = f" › {p.section}" if p.section else ""
        console.print(f"[bold]{rank}. {p.title}{where}[/bold]  [dim]{p.source}[/dim]")
        console.print(f"   relevance {hit.relevance:.2f} · cosine {hit.dense_score:.2f} · bm25 {hit.lexical_score:.2f}"
                      f" · fused {hit.score:.4f}")
        snippet = " ".join(p.text.split())
        console.print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}\n")
    bar = Grounder(settings.retrieval, settings.knowledge_dir).min_relevance(args.query)
    if hits and max(h.relevance for h in hits) < bar:
        name = "min_relevance_zh" if CJK.search(args.query) else "min_relevance"
        console.print(f"[yellow]nothing reaches retrieval.{name}={bar}: the assistant would say it does not "
                      "know[/yellow]")
    return 0
