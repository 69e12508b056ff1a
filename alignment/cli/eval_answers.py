"""Evaluate answers end to end: every question goes through the serving layer as a customer's would (retrieval, the
answer style, the model when it writes, the support check), and what a customer would read is compared with the
reference: token F1, ROUGE-L, required facts stated, supported sentences, answers with an unsupported number,
language match, gold documents cited and retrieved, and "don't know" (rate, and precision/recall when some
questions are unanswerable).

FILE is JSONL {"question", "answer" (reference), "doc_ids": [...], "facts": [...], "answerable": bool}, a BEIR
folder (each judged query, its most relevant passage as the reference; the folder is then the corpus too), or a
clinc150-style JSON file (its out-of-scope utterances, as unanswerable questions). CORPUS is a BEIR corpus.jsonl
(or its folder), indexed once into a cached knowledge base; without it, the deployment's own knowledge base."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant eval answers data/eval/help-center-golden.jsonl     # the demo company's golden set, own knowledge base
  assistant eval answers ../shared/data/clinc150/data_full.json --limit 300   # out-of-scope: should be don't-know
  assistant eval answers ../shared/data/bank_faq_retrieval_en --json      # a BEIR folder: its queries and corpus
  assistant eval answers ../shared/data/bank_faq_retrieval_en --style generative --json   # the model writes
  assistant eval answers questions.jsonl --corpus ../shared/data/bank_faq_retrieval_en/corpus.jsonl
  assistant eval answers questions.jsonl --corpus corpus.jsonl --model v2 --json
  assistant eval answers questions.jsonl --corpus corpus.jsonl --model base     # the configured base model
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--engine", "--home", "--encoder"])
    parser.add_argument("file", help="answer-evaluation JSONL, or a BEIR folder")
    parser.add_argument("--corpus", help="BEIR corpus.jsonl (or the folder holding it); default: FILE when it is "
                                         "a BEIR folder, else the deployment's knowledge base")
    parser.add_argument("--style", choices=["grounded", "generative", "auto"],
                        help="the answer style to evaluate (default: the setting answers.style)")
    parser.add_argument("--model", default="current",
                        help="'current' (what serves now), 'base', a registered version (v2) or a model folder")
    parser.add_argument("--limit", type=int, default=None, help="only the first N questions")
    parser.add_argument("--max-new-tokens", type=int, default=None,
                        help="longest written answer in tokens (default: the setting generation.max_new_tokens)")
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
    if args.style:
        answers = loaded.settings.answers.model_copy(update={"style": args.style})
        loaded = loaded.model_copy(update={"settings": loaded.settings.model_copy(update={"answers": answers})})
    corpus = args.corpus or (args.file if Path(args.file).is_dir() else None)
    longest = args.max_new_tokens or loaded.settings.generation.max_new_tokens
    try:
        metrics = evaluate_answer_file(loaded, Path(args.file), Path(corpus) if corpus else None, args.model,
                                       args.limit, longest, progress=not args.json)
    except (InvalidLine, BEIRFormatError, RegistryError, OSError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    print_metrics(metrics, f"answers to {args.file} ({metrics['model']})", args.json)
    return 0
