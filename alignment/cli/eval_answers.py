"""Evaluate answers end to end: every question goes through retrieval, the serving prompt and the model, and the
answer is compared with the reference: token F1, ROUGE-L, the share citing a gold document, the share whose gold
document was retrieved, and the "don't know" rate.

FILE is JSONL {"question", "answer" (reference), "doc_ids": [...]}, or a BEIR folder (each judged query, its most
relevant passage as the reference; the folder is then the corpus too); CORPUS is a BEIR corpus.jsonl (or its
folder), indexed once into a cached knowledge base."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags
from assistant.errors import AssistantError

EXAMPLES = """examples:
  assistant eval answers ../shared/data/bank_faq_retrieval_en --json      # a BEIR folder: its queries and corpus
  assistant eval answers questions.jsonl --corpus ../shared/data/bank_faq_retrieval_en/corpus.jsonl
  assistant eval answers questions.jsonl --corpus corpus.jsonl --model v2 --json
  assistant eval answers questions.jsonl --corpus corpus.jsonl --model base     # the configured base model
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--engine", "--home", "--encoder"])
    parser.add_argument("file", help="answer-evaluation JSONL, or a BEIR folder")
    parser.add_argument("--corpus", help="BEIR corpus.jsonl (or the folder holding it); default: FILE when it is "
                                         "a BEIR folder")
    parser.add_argument("--model", default="current",
                        help="'current' (what serves now), 'base', a registered version (v2) or a model folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from alignment.evaluation import evaluate_answer_file
    from alignment.transcripts import InvalidLine
    from assistant.cli.options import load_from_args, print_metrics
    from assistant.registry import RegistryError
    from retrieval.evaluation import BEIRFormatError

    loaded = load_from_args(args)
    corpus = args.corpus or (args.file if Path(args.file).is_dir() else None)
    if corpus is None:
        raise AssistantError("--corpus is needed with a JSONL question file (the BEIR corpus its doc_ids name)")
    try:
        metrics = evaluate_answer_file(loaded, Path(args.file), Path(corpus), args.model, args.limit,
                                       args.max_new_tokens, progress=not args.json)
    except (InvalidLine, BEIRFormatError, RegistryError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    print_metrics(metrics, f"answers to {args.file} ({metrics['model']})", args.json)
    return 0
