"""Teach retrieval the company's own questions: (question, passage) pairs from FAQ files, BEIR folders and pair files
(two texts that mean the same, CSV/TSV/JSONL, an optional 0/1 label), hard negatives mined with the encoder in use,
the bi-encoder fine-tuned (MultipleNegativesRankingLoss), judged against the encoder in use on held-out questions
(recall@5, MRR@10), registered and promoted only when it finds more (`assistant models list --retrieval`).
The dense and lexical weights of the hybrid search are chosen with the tuned encoder on validation questions; with
--reranker, a cross-encoder reranker is trained from the tuned encoder's body too, kept only when it finds more."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant align retrieval --beir ../shared/data/bank_faq_retrieval_en
  assistant align retrieval --faq data/help-center/faq.jsonl --pairs paraphrases.csv --epochs 3
  assistant align retrieval --pairs ../shared/data/bq_corpus_zh/test.csv --encoder multilingual-e5-small
  assistant align retrieval --beir my-beir/ --dry-run          # count the pairs and the split; train nothing
  assistant align retrieval --transcripts chats.jsonl --from-store   # pairs from human replies and feedback
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from alignment.retrieval_training import EncoderTrainingConfig, RerankerTrainingConfig

    defaults = EncoderTrainingConfig()
    parser.add_argument("--faq", nargs="+", default=[], metavar="FILE", help="FAQ files (question -> answer)")
    parser.add_argument("--beir", nargs="+", default=[], metavar="DIR", help="BEIR folders (queries + qrels)")
    parser.add_argument("--pairs", nargs="+", default=[], metavar="FILE",
                        help="two texts that mean the same (CSV/TSV/JSONL, optional 0/1 label)")
    parser.add_argument("--transcripts", nargs="+", default=[], metavar="FILE",
                        help="transcripts (JSONL): each customer question -> the knowledge-base passage that supports "
                             "the human agent's reply")
    parser.add_argument("--from-store", action="store_true",
                        help="answers customers rated up -> the passages they cited; operators' corrections -> the "
                             "passage that supports the correction")
    parser.add_argument("--min-support", type=float, default=0.6,
                        help="relevance (0..1) a passage needs to the reply or correction it supports (default 0.6)")
    parser.add_argument("--encoder", help="the encoder to start from when none is promoted yet (default: the "
                                          "`retrieval.encoder` setting)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--hard-negatives", type=int, default=defaults.hard_negatives,
                        help=f"mined wrong passages per question (default {defaults.hard_negatives})")
    parser.add_argument("--reranker", action="store_true",
                        help="also train a cross-encoder reranker from the tuned encoder's body (kept only when it "
                             "finds more on validation questions; without it, a reranker already in use stays)")
    parser.add_argument("--reranker-epochs", type=int, default=RerankerTrainingConfig().epochs)
    parser.add_argument("--reranker-layers", type=int, default=RerankerTrainingConfig().layers,
                        help="layers of the encoder body the reranker keeps (fewer: faster; default: all)")
    parser.add_argument("--held-out", type=float, default=0.1, help="share of the questions held out (default 0.1)")
    parser.add_argument("--no-promote", action="store_true", help="register only")
    parser.add_argument("--dry-run", action="store_true", help="read and count the pairs; train nothing")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from alignment.retrieval_align import RetrievalSources, align_retrieval
    from alignment.retrieval_training import EncoderTrainingConfig, RerankerTrainingConfig
    from assistant.cli.options import comparison_table, load_from_args
    from assistant.errors import AssistantError
    from assistant.grounding import index_settings
    from assistant.runtime import served_retrieval
    from retrieval.errors import RetrievalError
    from retrieval.knowledge_base import KnowledgeBase

    console = Console(stderr=True)
    if not (args.faq or args.beir or args.pairs or args.transcripts or args.from_store):
        console.print("error: nothing to learn from: give --faq, --beir, --pairs, --transcripts or --from-store")
        return 2
    settings = load_from_args(args).settings
    if args.encoder:  # where to start when no version is promoted yet
        settings = settings.model_copy(update={"retrieval": settings.retrieval.model_copy(
            update={"encoder": args.encoder})})
    config = EncoderTrainingConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                   hard_negatives=args.hard_negatives)
    reranker = RerankerTrainingConfig(epochs=args.reranker_epochs, layers=args.reranker_layers) if args.reranker \
        else None
    try:
        in_use = index_settings(served_retrieval(settings))
        sources = RetrievalSources([Path(p) for p in args.faq], [Path(p) for p in args.beir],
                                   [Path(p) for p in args.pairs], [Path(p) for p in args.transcripts],
                                   stored_conversations(settings) if args.from_store else [],
                                   KnowledgeBase(settings.knowledge_dir, in_use)
                                   if args.transcripts or args.from_store else None, args.min_support)
        report = align_retrieval(sources, settings.home_dir, in_use, config, reranker, promote=not args.no_promote,
                                 dry_run=args.dry_run, held_out_share=args.held_out)
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


def stored_conversations(settings) -> list[dict]:
    """Every stored conversation with its feedback and the sources of each answer."""
    from assistant.store import open_store

    store = open_store(settings)
    try:
        return store.conversations.conversations_for_alignment()
    finally:
        store.close()
