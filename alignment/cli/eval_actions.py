"""Evaluate action calling: for each decision point of FILE (the conversation so far and the actions offered), does
the model call when the human agent called, with the same action and arguments? Call/no-call accuracy, action-name
accuracy, exact match of name + all arguments, argument-value F1, unneeded calls, invalid calls.

FILE is JSONL {"id", "tools": [OpenAI tools], "messages": [...], "call": {"name", "arguments"} | null} (the
`sgd_actions` contract). Decoding is constrained by each row's decision schema, as when serving; a model trained by
`assistant align --actions` brings a call classifier that decides call or reply first, as when serving. Free-text
values are copied from the conversation and dates/times written as services take them, relative to the row's
`today` (YYYY-MM-DD); rows without it are dated by the file: the day that best explains its calls' relative dates
("tomorrow" in a call made on 2019-03-02 dates the SGD dialogues 2019-03-01)."""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags

EXAMPLES = """examples:
  assistant eval actions ../shared/data/sgd_actions/dev.jsonl                 # the model serving now
  assistant eval actions ../shared/data/sgd_actions/dev.jsonl --model base --limit 200 --json
  assistant eval actions ../shared/data/sgd_actions/dev.jsonl --model v3      # a registered version
  assistant eval actions dev.jsonl --unconstrained     # free decoding: how often would the model write nonsense?
  assistant eval actions dev.jsonl --model v3 --model-alone   # without the version's call classifier
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--engine", "--home"])
    parser.add_argument("file", help="action-evaluation JSONL")
    parser.add_argument("--model", default="current",
                        help="'current' (what serves now), 'base', a registered version (v2) or a model folder")
    parser.add_argument("--limit", type=int, default=None,
                        help="only N rows, half calls and half replies where the file allows (a seeded sample)")
    parser.add_argument("--unconstrained", action="store_true",
                        help="let the model write freely instead of constraining it to the decision schema")
    parser.add_argument("--model-alone", action="store_true",
                        help="ignore the call classifier saved with the model: the chat model decides call or reply "
                             "itself (to measure what the classifier adds)")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics on stdout")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from alignment.action_eval import evaluate_action_file
    from assistant.cli.options import load_from_args, print_metrics

    metrics = evaluate_action_file(load_from_args(args), Path(args.file), args.model, args.limit,
                                   constrained=not args.unconstrained, classifier=not args.model_alone)
    print_metrics(metrics, f"actions in {args.file} ({metrics['model']})", args.json)
    return 0
