"""Group labelled questions into topics exactly as the Insights view does and compare with the labels: NMI, ARI,
the number of topics, seconds to group, and milliseconds to assign one new question.

FILE: JSONL {"text": str, "label": str}."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant eval topics questions.jsonl
  assistant eval topics questions.jsonl --json > bench/results/topics.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="labelled JSONL: {\"text\": ..., \"label\": ...} per line")
    parser.add_argument("--strict", action="store_true", help="stop at the first invalid line instead of skipping")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")
    add_settings_flags(parser, ["--home"])


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.cli.options import load_from_args, print_skipped
    from assistant.insights.topic_eval import evaluate_topics, read_topic_file

    console = Console(stderr=True)
    data = read_topic_file(Path(args.file), args.strict)
    print_skipped(data.errors, console)
    metrics = evaluate_topics(data, load_from_args(args).settings.retrieval.encoder)
    if args.json:
        import json

        print(json.dumps(metrics, ensure_ascii=False))
        return 0
    console.print(f"{args.file}: {metrics['texts']} texts, {metrics['labels']} labels -> {metrics['topics']} topics "
                  f"({metrics['topics_of_3_or_more']} of 3+) in {metrics['seconds']} s; NMI {metrics['nmi']}, "
                  f"ARI {metrics['ari']}; assigning one question: p50 {metrics['assign_ms_p50']} ms, "
                  f"p95 {metrics['assign_ms_p95']} ms")
    table = Table(title="largest topics")
    table.add_column("topic")
    table.add_column("questions", justify="right")
    for row in metrics["largest_topics"]:
        table.add_row(row["label"], str(row["size"]))
    Console().print(table)
    return 0
