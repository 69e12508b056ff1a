"""Evaluate recommenders offline, leave-last-out: each customer's items in time order (ties: the file's order), the
last one held out (or with `--validation`, the one before it: what settings are chosen on), every item they have not
had ranked. HR@K, NDCG@K, coverage (share of items in anyone's top K), training seconds and the time to rank the
catalogue for one customer (p50/p95), with popularity and item-to-item co-occurrence measured in the same run.

DIR: a MovieLens folder (`u.data`: every rating is an interaction) or a folder with `interactions.csv` /
`interactions.jsonl` in the product's contract (views, carts, purchases, ratings above 2)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant eval recommend ../shared/data/movielens_100k
  assistant eval recommend ../shared/data/movielens_100k --models transitions,sasrec --json
  assistant eval recommend ../shared/data/movielens_100k --validation     # choose settings here, never on the test
  assistant eval recommend data/catalog --save-results
"""

BASELINES = ("popularity", "cooccurrence (whole history)", "cooccurrence (recent items)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", metavar="DIR", help="MovieLens folder or a folder with interactions.csv/.jsonl")
    parser.add_argument("--models", default="transitions", help="learned models to measure, comma-separated: "
                                                                 "transitions (default), sasrec")
    parser.add_argument("-k", type=int, default=10, help="cut-off of HR and NDCG (default 10)")
    parser.add_argument("--validation", action="store_true", help="hold out the item before the last instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    parser.add_argument("--save-results", action="store_true",
                        help="also write bench/results/recommend-DATE.json and .md")


def read_histories(folder):
    from pathlib import Path

    from assistant.recommend.interactions import (
        InteractionDataError,
        histories,
        load_interactions,
        read_movielens,
    )

    folder = Path(folder)
    if not folder.is_dir():
        raise InteractionDataError(f"{folder}: not a folder (a MovieLens folder with u.data, or one with "
                                   "interactions.csv/.jsonl)")
    if (folder / "u.data").is_file():
        return histories(read_movielens(folder), positive_only=False), "movielens"
    for name in ("interactions.jsonl", "interactions.csv"):
        if (folder / name).is_file():
            found = load_interactions(folder / name, strict=True)
            return histories(found.rows), name
    raise InteractionDataError(f"{folder}: no u.data, interactions.csv or interactions.jsonl")


def run(args: argparse.Namespace) -> int:
    import json
    import time
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from assistant.recommend.cooccurrence import CooccurrenceConfig, CooccurrenceRecommender
    from assistant.recommend.evaluation import evaluate
    from assistant.recommend.training import RecommendTrainingError, recommender_kinds

    found, source = read_histories(args.folder)
    kinds = recommender_kinds()
    learned = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in learned if m not in ("transitions", "sasrec")]
    if unknown:
        raise RecommendTrainingError(f"--models: unknown {', '.join(unknown)}; choose transitions, sasrec")
    makers = {"popularity": kinds["popularity"],
              "cooccurrence (whole history)": lambda: CooccurrenceRecommender(CooccurrenceConfig(recent=10**9,
                                                                                                  decay=1.0)),
              "cooccurrence (recent items)": kinds["cooccurrence"],
              **{m: kinds[m] for m in learned}}
    results = {}
    for name, make in makers.items():
        results[name] = evaluate(make, found, args.k, args.validation, progress=not args.json)
    ndcg = f"ndcg@{args.k}"
    for name in learned:
        for base in BASELINES:
            if results[base][ndcg]:
                results[name][f"x {base}"] = round(results[name][ndcg] / results[base][ndcg], 3)
    report = {"data": str(args.folder), "source": source, "split": "validation" if args.validation else "test",
              "customers": len(found), "interactions": sum(map(len, found.values())),
              "items": len({i for items in found.values() for i in items}), "k": args.k, "models": results}
    if args.save_results:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path("bench/results")
        out.mkdir(parents=True, exist_ok=True)
        (out / f"recommend-{stamp}.json").write_text(json.dumps(report, indent=1))
        (out / f"recommend-{stamp}.md").write_text(markdown(report))
    if args.json:
        print(json.dumps(report))
        return 0
    table = Table(title=f"{args.folder} ({report['split']}: {report['customers']} customers, {report['items']} items)")
    columns = [f"hr@{args.k}", ndcg, "coverage", "train_s", "candidates_ms_p50", "candidates_ms_p95"]
    for column in ["model", *columns, "NDCG ratios"]:
        table.add_column(column, justify="left" if column in ("model", "NDCG ratios") else "right")
    for name, metrics in results.items():
        ratios = ", ".join(f"{v}{k}" for k, v in metrics.items() if k.startswith("x "))
        table.add_row(name, *(f"{metrics[c]:.4f}" if c in (f"hr@{args.k}", ndcg, "coverage") else f"{metrics[c]:.2f}"
                              for c in columns), ratios)
    Console().print(table)
    return 0


def markdown(report: dict) -> str:
    k = report["k"]
    lines = [f"# assistant eval recommend {report['data']} ({report['split']} items)", "",
             f"{report['customers']} customers, {report['items']} items, {report['interactions']} interactions; "
             "leave-last-out, all items the customer has not had ranked.", "",
             f"| model | HR@{k} | NDCG@{k} | coverage | training s | candidates ms p50 / p95 | NDCG ratios |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for name, m in report["models"].items():
        ratios = ", ".join(f"{v}{key}" for key, v in m.items() if key.startswith("x "))
        lines.append(f"| {name} | {m[f'hr@{k}']:.4f} | {m[f'ndcg@{k}']:.4f} | {m['coverage']:.3f} | "
                     f"{m['train_s']:.1f} | {m['candidates_ms_p50']:.2f} / {m['candidates_ms_p95']:.2f} | {ratios} |")
    return "\n".join(lines) + "\n"
