"""Ingest documents into the knowledge base: folders (recursive) of .md/.txt/.html/.pdf and FAQ .jsonl/.csv files.

Re-ingesting is incremental: unchanged files cost nothing, a changed file replaces its passages, a file deleted
from an ingested folder loses its passages. Unusable files are skipped with the reason.
"""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags, load_from_args

EXAMPLES = """examples:
  assistant ingest data/help-center
  assistant ingest ./docs ./faq.csv --json
  assistant ingest --rebuild ./docs          # recompute everything (e.g. after changing the encoder)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--home", "--encoder"])
    parser.add_argument("paths", nargs="+", help="files or folders to ingest")
    parser.add_argument("--rebuild", action="store_true", help="re-read and re-encode every file")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    import json
    from dataclasses import asdict
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.errors import AssistantError
    from assistant.grounding import index_settings
    from retrieval.knowledge_base import KnowledgeBase

    settings = load_from_args(args).settings
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        raise AssistantError(f"no such file or folder: {', '.join(missing)}")
    kb = KnowledgeBase(settings.knowledge_dir, index_settings(settings.retrieval))
    report = kb.ingest([Path(p) for p in args.paths], rebuild=args.rebuild, progress=not args.json)
    if args.json:
        print(json.dumps(asdict(report), ensure_ascii=False))
        return 0
    console = Console()
    if report.rebuilt_for_encoder:
        console.print("[yellow]the index was built with another encoder: every passage was re-encoded[/yellow]")
    console.print(
        f"[bold]{report.files_seen}[/bold] files: {report.files_added} new, {report.files_changed} changed, "
        f"{report.files_unchanged} unchanged, {report.files_deleted} deleted, {len(report.skipped)} skipped. "
        f"Passages: +{report.passages_added} −{report.passages_removed} = {report.passages_total} "
        f"({report.duplicates} duplicates dropped, {report.encoded} encoded, {report.index_type} index) "
        f"in {report.seconds:.1f}s.")
    if report.skipped:
        table = Table(title="skipped files")
        table.add_column("file")
        table.add_column("reason")
        for file, reason in report.skipped:
            table.add_row(file, reason)
        console.print(table)
    return 0
