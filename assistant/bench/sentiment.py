"""`assistant bench sentiment`: the default scorer and a classifier (trained on each set's train file, or the one given
with `--model`), side by side on each dev file (accuracy, macro-F1), and messages/s in batches and one at a time."""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from assistant.bench import write_results
from assistant.errors import AssistantError

TARGETS = {"tweets_en": ("macro_f1", 0.72), "finance_forum_zh": ("macro_f1", 0.80), "reviews_zh": ("accuracy", 0.92),
           "finance_news_en": ("accuracy", 0.85)}
TARGET_MESSAGES_PER_S = {"default": 500, "trained": 150}  # lexicon path; the transformer classifier


def _speed(scorer, texts: list[str], batch_size: int, single: int) -> dict:
    from assistant.sentiment.evaluation import per_message_rate

    scorer.score(texts[:8])  # warm-up (lazy model loading)
    return {"batch": per_message_rate(scorer, texts, batch_size),
            "single": per_message_rate(scorer, texts[:single], 1)}


def run_benchmark(args: argparse.Namespace, home: Path | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from assistant.sentiment.classifier import train_classifier
    from assistant.sentiment.data import read_labelled
    from assistant.sentiment.evaluation import evaluate_scorer
    from assistant.sentiment.lexicon import LexiconScorer
    from assistant.sentiment.options import TrainingOptions
    from assistant.sentiment.scorers import load_scorer

    folder = Path(args.data)
    given = load_scorer(args.model, home) if args.model else None
    names = [n for n in args.sets.split(",") if (folder / f"{n}.dev.jsonl").is_file()]
    if not names:
        raise AssistantError(f"no <set>.dev.jsonl for {args.sets} in {folder}")
    default = LexiconScorer()
    results: dict = {"machine": {"cpu": platform.processor() or platform.machine()},
                     "trained": given.name if given else f"per set, encoder {args.encoder}", "sets": {}}
    for name in names:
        dev = read_labelled(folder / f"{name}.dev.jsonl")
        entry = {"default": evaluate_scorer(default, dev)}
        entry["default"]["speed"] = _speed(default, dev.texts, args.batch_size, args.single)
        train_file = folder / f"{name}.train.jsonl"
        if given is not None:
            entry["trained"] = evaluate_scorer(given, dev)
            entry["trained"]["speed"] = _speed(given, dev.texts, args.batch_size, args.single)
        elif not args.no_train and train_file.is_file():
            train = read_labelled(train_file)
            started = time.perf_counter()
            model = train_classifier(train, TrainingOptions(encoder=args.encoder))
            entry["trained"] = evaluate_scorer(model, dev)
            seconds = round(time.perf_counter() - started)
            entry["trained"].update({"train_examples": len(train), "train_seconds": seconds,
                                     "ngram_weight": model.ngram_weight,
                                     "speed": _speed(model, dev.texts, args.batch_size, args.single)})
            if args.keep_models:
                model.save(Path(args.keep_models) / name)
        results["sets"][name] = entry
        Console(stderr=True).print(f"{name}: " + json.dumps({k: (v["accuracy"], v["macro_f1"])
                                                            for k, v in entry.items()}))
    table = Table(title="sentiment: default scorer vs trained classifier (dev sets)")
    for column in ("set", "scorer", "accuracy", "macro-F1", "target", "msg/s batch", "msg/s single"):
        table.add_column(column, justify="right")
    lines = ["# assistant bench sentiment", "", f"trained classifier: {results['trained']}", "",
             "| set | scorer | accuracy | macro-F1 | target | met | msg/s batch | msg/s single |",
             "|---|---|---:|---:|---|---|---:|---:|"]
    for name, entry in results["sets"].items():
        metric, goal = TARGETS.get(name, ("macro_f1", None))
        for kind, m in entry.items():
            batch = m["speed"]["batch"]["median_messages_per_s"]
            single = m["speed"]["single"]["median_messages_per_s"]
            met = "" if goal is None else ("yes" if m[metric] >= goal else "no")
            target = "" if goal is None else f"{metric} >= {goal}"
            table.add_row(name, f"{kind} ({m['scorer']})", str(m["accuracy"]), str(m["macro_f1"]), target,
                          str(batch), str(single))
            lines.append(f"| {name} | {kind} | {m['accuracy']} | {m['macro_f1']} | {target} | {met} | {batch} | "
                         f"{single} |")
    lines += ["", f"Speed targets: >= {TARGET_MESSAGES_PER_S['default']} messages/s for the lexicon default and >= "
              f"{TARGET_MESSAGES_PER_S['trained']} for the transformer classifier, in batches of {args.batch_size} "
              "(median of per-batch rates over the dev set; single = one message per call).", ""]
    path = write_results(args.out, "sentiment", results, "\n".join(lines) + "\n")
    if args.json:
        print(json.dumps(results))
    else:
        Console().print(table)
        Console().print(f"results: {path} (+ .md)")
    return 0
