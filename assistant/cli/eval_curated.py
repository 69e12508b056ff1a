"""How precise curated-answer matching is, and how many questions it answers, at each similarity threshold, on a
BEIR FAQ folder (every answer curated with its first question; the other questions asked; and half the answers
curated, so the questions of the others must match nothing) or on labelled questions (a JSONL file as for `eval
topics`: the first --per-label questions of each label curated, the rest asked). Picks the lowest threshold whose
precision reaches --min-precision (with all curated); set it as `insights.curated_min_similarity`."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant eval curated ../shared/data/bank_faq_retrieval_en
  assistant eval curated faq_beir/ --min-precision 0.98 --json > bench/results/curated.json
  assistant eval curated banking77_test.jsonl --per-label 5
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="BEIR folder: corpus.jsonl (answers), queries.jsonl (questions), qrels.tsv; "
                                       "or a JSONL file of {\"text\", \"label\"}")
    parser.add_argument("--per-label", type=int, default=5, help="labelled file: questions curated per label")
    parser.add_argument("--min-precision", type=float, default=0.95, help="the precision the threshold must reach")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args
    from assistant.insights.curated_eval import evaluate_curated, evaluate_curated_labelled

    settings = load_from_args(args).settings
    where = Path(args.folder)
    if where.is_file():
        result = evaluate_curated_labelled(where, settings.retrieval.encoder, args.min_precision,
                                           settings.insights.curated_margin, args.per_label)
    else:
        result = evaluate_curated(where, settings.retrieval.encoder, args.min_precision,
                                  settings.insights.curated_margin)
    if args.json:
        import json

        print(json.dumps(result))
        return 0
    curated = f"{result['curated']} curated" if "curated" in result else f"{result['answers']} answers"
    ambiguous = ", ".join(f"{n} {rows[0]['ambiguous_in_data']}" for n, rows in result["runs"].items()
                          if "ambiguous_in_data" in rows[0])
    table = Table(title=f"{args.folder}: {curated}, {result['questions']} questions; chosen threshold "
                        f"{result['chosen_threshold']} (precision >= {args.min_precision}); margin {result['margin']}"
                        + (f"; left out as ambiguous in the data: {ambiguous}" if ambiguous else ""))
    table.add_column("threshold", justify="right")
    for name in result["runs"]:
        table.add_column(f"{name}: precision", justify="right")
        table.add_column("coverage", justify="right")
    rows = zip(*result["runs"].values(), strict=True)
    for row in rows:
        if round(row[0]["threshold"] * 100) % 5 == 0 or row[0]["threshold"] == result["chosen_threshold"]:
            table.add_row(f"{row[0]['threshold']:.2f}", *[str(cell[k]) for cell in row for k in ("precision",
                                                                                                 "coverage")])
    Console().print(table)
    return 0
