"""Evaluate recommenders offline, leave-last-out: each customer's items in time order (ties: the file's order), the
last one held out (or with `--validation`, the one before it: what settings are chosen on), every item they have not
had ranked. HR@K, NDCG@K, coverage (share of items in anyone's top K), training seconds and the time to rank the
catalogue for one customer (p50/p95), with popularity and item-to-item co-occurrence measured in the same run.

DIR: a MovieLens folder (`u.data`: every rating is an interaction) or a folder with `interactions.csv` /
`interactions.jsonl` in the product's contract (views, carts, purchases, ratings above 2).

`--rerank N` also measures the chat model's pick on N sampled customers (`alignment.pick_eval`): among the first
learned model's shortlist, its own top 3 vs the chat model's 3 (needs item names: MovieLens `u.item`, or a
`catalog.csv`/`.jsonl` in DIR)."""

from __future__ import annotations

import argparse

EXAMPLES = """examples:
  assistant eval recommend ../shared/data/movielens_100k
  assistant eval recommend ../shared/data/movielens_100k --models transitions,sasrec --json
  assistant eval recommend ../shared/data/movielens_100k --validation     # choose settings here, never on the test
  assistant eval recommend data/catalog --save-results
  assistant eval recommend ../shared/data/movielens_100k --rerank 300 --engine transformers   # does the pick help?
"""

BASELINES = ("popularity", "cooccurrence (whole history)", "cooccurrence (recent items)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from assistant.cli.options import add_settings_flags

    add_settings_flags(parser, ["--engine", "--home"])
    parser.add_argument("folder", metavar="DIR", help="MovieLens folder or a folder with interactions.csv/.jsonl")
    parser.add_argument("--models", default="transitions", help="learned models to measure, comma-separated: "
                                                                 "transitions (default), sasrec")
    parser.add_argument("-k", type=int, default=10, help="cut-off of HR and NDCG (default 10)")
    parser.add_argument("--validation", action="store_true", help="hold out the item before the last instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object of metrics")
    parser.add_argument("--save-results", action="store_true",
                        help="also write bench/results/recommend-DATE.json and .md")
    parser.add_argument("--rerank", type=int, default=0, metavar="N",
                        help="also measure the chat model's pick among the learned model's shortlist on N customers")
    parser.add_argument("--model", default="current",
                        help="the chat model that picks with --rerank: 'current' (what serves now), 'base', a "
                             "registered version (v2) or a model folder")


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
    from assistant.recommend.kinds import recommender_kinds
    from assistant.recommend.training import RecommendTrainingError

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
    results, fitted = {}, {}
    for name, make in makers.items():
        results[name] = evaluate(lambda make=make, name=name: fitted.setdefault(name, make()), found, args.k,
                                 args.validation, progress=not args.json)
    ndcg = f"ndcg@{args.k}"
    for name in learned:
        for base in BASELINES:
            if results[base][ndcg]:
                results[name][f"x {base}"] = round(results[name][ndcg] / results[base][ndcg], 3)
    report = {"data": str(args.folder), "source": source, "split": "validation" if args.validation else "test",
              "customers": len(found), "interactions": sum(map(len, found.values())),
              "items": len({i for items in found.values() for i in items}), "k": args.k, "models": results}
    if args.rerank > 0:
        report["rerank"] = rerank(args, found, fitted[learned[0] if learned else "cooccurrence (recent items)"])
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
    if "rerank" in report:
        Console().print(rerank_line(report["rerank"]))
    return 0


def item_names(folder) -> dict:
    """Names for the pick's prompt: MovieLens `u.item`, else the folder's catalogue file."""
    from pathlib import Path

    from assistant.recommend.catalog import load_catalog, read_movielens_items

    names = read_movielens_items(Path(folder))
    if names:
        return names
    for name in ("catalog.jsonl", "catalog.csv"):
        if (Path(folder) / name).is_file():
            return {item.id: item for item in load_catalog(Path(folder) / name)}
    return {}


def rerank(args: argparse.Namespace, histories: dict, model) -> dict:
    from alignment.pick_eval import evaluate_picks
    from assistant.cli.options import load_from_args
    from assistant.recommend.evaluation import leave_last_out

    split = leave_last_out(histories, args.validation)
    return {"recommender": model.name,
            **evaluate_picks(load_from_args(args), args.model, model, split, item_names(args.folder), args.rerank)}


def rerank_line(found: dict) -> str:
    most = found["most"]
    own, picked = found["recommender_order"], found["chat_model_pick"]
    return (f"chat model's pick ({found['model']}, {found['customers']} customers, top {most} of "
            f"{found['recommender']}'s {found['shortlist']}): HR@{most} {picked[f'hr@{most}']:.4f} vs "
            f"{own[f'hr@{most}']:.4f} in the recommender's order, NDCG@{most} {picked[f'ndcg@{most}']:.4f} vs "
            f"{own[f'ndcg@{most}']:.4f}; held-out item in the shortlist {found['target_in_shortlist']:.3f}, "
            f"usable picks {found['valid_picks']:.3f}")


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
    if "rerank" in report:
        lines += ["", rerank_line(report["rerank"])]
    return "\n".join(lines) + "\n"
