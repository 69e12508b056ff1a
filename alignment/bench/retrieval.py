"""`assistant bench align-retrieval`: what `assistant align retrieval` gains on questions it never trained on.

- Cross-topic: train on the questions of half the classes of a BEIR FAQ folder (its queries carry a `class`), judge on
  the other half's questions over the whole corpus, then the other way round; averaged. Retrieval is judged as
  served (hybrid search, reranked) for the configured retrieval, the tuned encoder, and the tuned encoder with the
  reranker trained from its body.
- Paraphrase transfer (Chinese): train from the multilingual encoder on paraphrase pairs (bq_corpus test.csv, ATEC /
  AFQMC), judge on a BEIR folder built from other questions (bq_retrieval_zh, from bq_corpus dev.csv).
- The whole `align retrieval` on every question of the FAQ folder, timed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from alignment.retrieval_align import REPORTED, RetrievalSources, align_retrieval, train_candidate
from alignment.retrieval_pairs import PairError, PairSet, RetrievalPair, file_pairs, held_out
from alignment.retrieval_training import EncoderTrainingConfig, RerankerTrainingConfig
from assistant.bench import write_results
from retrieval.config import IndexSettings
from retrieval.evaluation import evaluate, load_beir
from retrieval.loaders import jsonl_objects

COMPARED = ("current", "candidate encoder", "candidate reranked", "candidate")  # those measured, in this order


def query_classes(folder: Path) -> dict[str, str]:
    """Each query id's `class` in the folder's queries.jsonl."""
    path = folder / "queries.jsonl"
    classes = {str(row["_id"]): row.get("class") for _, row in jsonl_objects(path.read_text("utf-8").splitlines())}
    if len({c for c in classes.values() if c}) < 2:
        raise PairError(f"{path}: cross-topic needs queries with a `class` field, in two classes at least")
    return classes


def cross_topic(folder: Path, in_use: IndexSettings, config: EncoderTrainingConfig,
                reranker: RerankerTrainingConfig | None, console: Console) -> dict:
    corpus, queries, qrels = load_beir(folder)
    texts = {p.id: f"{p.title}\n{p.text}".strip() for p in corpus}
    classes = query_classes(folder)
    names = sorted({c for c in classes.values() if c})
    halves = [set(names[: len(names) // 2]), set(names[len(names) // 2:])]

    def pairs(wanted: set[str]) -> list[RetrievalPair]:
        return [RetrievalPair(queries[q], texts[d], f"{folder}/qrels.tsv:{q}") for q, relevant in qrels.items()
                if classes.get(q) in wanted for d in relevant]

    runs = []
    for train_classes, test_classes in (halves, halves[::-1]):
        console.print(f"cross-topic: training on {sorted(train_classes)}, judging on {sorted(test_classes)}")
        collected = PairSet()
        collected.add(pairs(train_classes))
        test = pairs(test_classes)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            trained = train_candidate(collected, collected.positives, test, list(texts.values()), in_use,
                                      Path(scratch) / "model", config, reranker)
        runs.append({"train classes": sorted(train_classes), "test classes": sorted(test_classes),
                     "train pairs": len(collected.positives), "test questions": len({p.question for p in test}),
                     "seconds": round(time.perf_counter() - started, 1), "metrics": trained.metrics,
                     "fusion": [trained.settings.dense_weight, trained.settings.lexical_weight],
                     "reranker kept": trained.reranker_kept})
    average = {name: {m: round(sum(r["metrics"][name][m] for r in runs) / len(runs), 4) for m in REPORTED}
               for name in COMPARED if name in runs[0]["metrics"]}
    return {"folder": str(folder), "passages": len(corpus), "runs": runs, "average": average}


def paraphrase_transfer(pair_files: list[Path], judged_on: Path, encoder: str, limit: int,
                        config: EncoderTrainingConfig, reranker: RerankerTrainingConfig | None,
                        console: Console) -> dict:
    """Train from `encoder` on up to `limit` paraphrase pairs (a stable sample), judge on the BEIR folder."""
    collected = PairSet()
    for path in pair_files:
        collected.add(file_pairs(path))
    sample = sorted(collected.positives, key=lambda p: hashlib.sha256(p.question.encode()).hexdigest())[:limit]
    chosen = PairSet()
    chosen.add(sample)
    chosen.negatives = {q: n for q, n in collected.negatives.items()}  # label-0 pairs: hard negatives to start
    train, kept = held_out(chosen.positives, share=0.05)
    corpus = list({p.passage: None for p in chosen.positives})
    in_use = IndexSettings(encoder=encoder)
    console.print(f"paraphrases: {len(train)} pairs to train, {len(kept)} held out, judged on {judged_on}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model"
        trained = train_candidate(chosen, train, kept, corpus, in_use, out, config, reranker)
        seconds = time.perf_counter() - started
        judged = {"base": evaluate(judged_on, in_use, progress=False),
                  "candidate": evaluate(judged_on, trained.settings, progress=False)}
    return {"pairs available": len(collected.positives), "train pairs": len(train), "held-out pairs": len(kept),
            "encoder": encoder, "seconds": round(seconds, 1), "held-out metrics": trained.metrics,
            "reranker kept": trained.reranker_kept, "judged on": str(judged_on),
            "fusion": [trained.settings.dense_weight, trained.settings.lexical_weight],
            "metrics": {name: {m: result[m] for m in REPORTED} for name, result in judged.items()}}


def timed_alignment(folder: Path, home: Path, in_use: IndexSettings, config: EncoderTrainingConfig,
                    reranker: RerankerTrainingConfig | None) -> dict:
    """`assistant align retrieval --beir FOLDER` in `home` (emptied first; kept for `assistant bench retrieval`),
    timed."""
    shutil.rmtree(home, ignore_errors=True)
    started = time.perf_counter()
    report = align_retrieval(RetrievalSources(beir=[folder]), home, in_use, config, reranker)
    return {"folder": str(folder), "home": str(home), "pairs": report.data["pairs"],
            "seconds": round(time.perf_counter() - started, 1), "decision": report.decision,
            "reranker": report.data["reranker"], "metrics": report.metrics}


def markdown(result: dict) -> str:
    lines = [f"# bench align-retrieval ({result['date']}, {result['cpus']} CPUs)", ""]
    for section, title in (("cross_topic", "Cross-topic (average of both ways)"),
                           ("paraphrases_zh", "Chinese paraphrase transfer")):
        if section not in result:
            continue
        rows = result[section]["average"] if section == "cross_topic" else result[section]["metrics"]
        lines += [f"## {title}", "", "| retrieval | " + " | ".join(REPORTED) + " |",
                  "|---|" + "---:|" * len(REPORTED)]
        lines += [f"| {name} | " + " | ".join(str(m[k]) for k in REPORTED) + " |" for name, m in rows.items()]
        lines.append("")
    if "alignment" in result:
        a = result["alignment"]
        lines += ["## align retrieval on the whole FAQ folder", "",
                  f"{a['pairs']} pairs in {a['seconds']} s: {a['decision']} (reranker: {a['reranker']})", ""]
    return "\n".join(lines)


def run_benchmark(args) -> int:
    from assistant.cli.options import load_from_args
    from assistant.grounding import index_settings

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    in_use = index_settings(settings.retrieval)  # the configured retrieval, whatever is promoted
    config = EncoderTrainingConfig(epochs=args.epochs, hard_negatives=args.hard_negatives)
    reranker = RerankerTrainingConfig(epochs=args.reranker_epochs, layers=args.reranker_layers) if args.reranker \
        else None
    result: dict = {"benchmark": "align-retrieval", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "cpus": os.cpu_count(), "encoder": in_use.encoder, "encoder_training": config.__dict__,
                    "reranker_training": reranker.__dict__ if reranker else None}
    if args.faq:
        result["cross_topic"] = cross_topic(Path(args.faq), in_use, config, reranker, console)
    if args.zh_pairs and args.zh_judged_on:
        result["paraphrases_zh"] = paraphrase_transfer([Path(p) for p in args.zh_pairs], Path(args.zh_judged_on),
                                                       args.zh_encoder, args.zh_limit,
                                                       replace(config, epochs=args.zh_epochs), reranker, console)
    if args.faq and not args.skip_full:
        result["alignment"] = timed_alignment(Path(args.faq), Path(args.work) / "home", in_use, config, reranker)
    path = write_results(args.out, "align-retrieval", result, markdown(result))
    console.print(f"results: {path}")
    print(json.dumps(result) if args.json else markdown(result))
    return 0
