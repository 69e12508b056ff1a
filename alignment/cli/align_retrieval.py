"""Teach retrieval the company's own questions: (question, passage) pairs from FAQ files, BEIR folders and pair files
(two texts that mean the same, CSV/TSV/JSONL, an optional 0/1 label), hard negatives mined with the encoder in use,
the bi-encoder fine-tuned (MultipleNegativesRankingLoss), judged against the encoder in use on held-out questions
(recall@5, MRR@10), registered and promoted only when it finds more (`assistant models list --retrieval`)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant align retrieval --beir ../shared/data/bank_faq_retrieval_en
  assistant align retrieval --faq data/help-center/faq.jsonl --pairs paraphrases.csv --epochs 3
  assistant align retrieval --pairs ../shared/data/bq_corpus_zh/test.csv --encoder multilingual-e5-small
  assistant align retrieval --beir my-beir/ --dry-run          # count the pairs and the split; train nothing
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alignment.retrieval_training import EncoderTrainingConfig

    defaults = EncoderTrainingConfig()
    parser.add_argument("--faq", nargs="+", default=[], metavar="FILE", help="FAQ files (question -> answer)")
    parser.add_argument("--beir", nargs="+", default=[], metavar="DIR", help="BEIR folders (queries + qrels)")
    parser.add_argument("--pairs", nargs="+", default=[], metavar="FILE",
                        help="two texts that mean the same (CSV/TSV/JSONL, optional 0/1 label)")
    parser.add_argument("--encoder", help="the encoder to start from when none is promoted yet (default: the "
                                          "`retrieval.encoder` setting)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--held-out", type=float, default=0.1, help="share of the questions held out (default 0.1)")
    parser.add_argument("--no-promote", action="store_true", help="register only")
    parser.add_argument("--dry-run", action="store_true", help="read and count the pairs; train nothing")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from alignment.retrieval_align import RetrievalSources, align_retrieval
    from alignment.retrieval_training import EncoderTrainingConfig
    from assistant.cli.options import comparison_table, load_from_args
    from assistant.errors import AssistantError
    from retrieval.errors import RetrievalError

    console = Console(stderr=True)
    if not (args.faq or args.beir or args.pairs):
        console.print("error: nothing to learn from: give --faq, --beir or --pairs")
        return 2
    settings = load_from_args(args).settings
    sources = RetrievalSources([Path(p) for p in args.faq], [Path(p) for p in args.beir], [Path(p) for p in args.pairs])
    config = EncoderTrainingConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate)
    try:
        report = align_retrieval(sources, settings.home_dir, args.encoder or settings.retrieval.encoder, config,
                                 promote=not args.no_promote, dry_run=args.dry_run, held_out_share=args.held_out)
    except (AssistantError, RetrievalError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}\nnothing was registered or promoted", soft_wrap=True)
        return 2
    out = Console()
    data = Table(title="data", show_header=False)
    for key, value in report.data.items():
        data.add_row(key, str(value))
    out.print(data)
    if report.metrics:
        out.print(comparison_table(report.metrics, "held-out questions, every passage"))
    if report.version:
        out.print(f"version [bold]{report.version}[/bold] " + ("promoted" if report.promoted else "registered"))
    out.print(f"decision: {report.decision}")
    return 0
