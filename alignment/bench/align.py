"""`assistant bench align`: align the default model on transcripts built from a BEIR FAQ folder and measure what
it gained on questions it never trained on, plus SFT/DPO throughput against this machine's FLOP limit.

Transcripts: customer question -> the gold answer as the human agent's reply. The split is by question id
(stable); the test questions go to `assistant eval answers` before and after, with the model writing every answer
(`answers.style: generative`): the gain is that of what the model writes, before the support check cuts it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path

from rich.console import Console

from assistant.bench import write_results


def split_faq(folder: Path, work: Path, test_fraction: float) -> tuple[Path, Path, int, int]:
    """(train transcripts, test answer file) written under `work`, split by a hash of the query id."""
    from retrieval.evaluation import load_beir

    corpus, queries, qrels = load_beir(folder)
    texts = {p.id: p.text for p in corpus}
    train, test = [], []
    for qid, question in queries.items():
        gold = sorted(qrels.get(qid, {}).items(), key=lambda item: -item[1])
        if not gold:
            continue
        answer = texts[gold[0][0]]
        bucket = int(hashlib.sha256(qid.encode()).hexdigest(), 16) % 1000 / 1000
        if bucket < test_fraction:
            test.append({"question": question, "answer": answer, "doc_ids": [d for d, _ in gold]})
        else:
            train.append({"id": qid, "messages": [{"role": "user", "content": question},
                                                  {"role": "agent", "content": answer}], "metadata": {}})
    work.mkdir(parents=True, exist_ok=True)
    train_path, test_path = work / "train-transcripts.jsonl", work / "test-questions.jsonl"
    train_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train), encoding="utf-8")
    test_path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in test), encoding="utf-8")
    return train_path, test_path, len(train), len(test)


ROW_TOKENS_NOTE = ("tokens/s counts every token of the training rows, as the data holds them. A DPO pair's prompt "
                   "runs once for both answers (and with `training.prompt_gradient: false` no prompt is "
                   "back-propagated through), so a share of the FLOP limit counts the work saved as well.")


def matmul_gflops(bf16: bool, repeats: int = 10) -> float:
    """Peak matrix-multiply rate with torch (the FLOP limit) in the precision training computes in (`bf16`: as
    `alignment.training.uses_bf16` decides), torch's threads on a CPU."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    size = 8192 if device == "cuda" else 1024
    dtype = torch.bfloat16 if bf16 else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        rates.append(2 * size**3 / (time.perf_counter() - started) / 1e9)
    return sorted(rates)[len(rates) // 2]


def parameter_count(model_dir: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in Path(model_dir).glob("*.safetensors"):
        with safe_open(str(file), "pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                total += math.prod(handle.get_slice(name).get_shape())
    return total



def run_benchmark(args) -> int:
    from alignment.answering import Answerer
    from alignment.cli.align import overrides, print_report
    from alignment.config import load_align_settings
    from alignment.evaluation import evaluate_answer_file
    from alignment.pipeline import AlignPipeline, AlignRequest
    from alignment.training import uses_bf16
    from assistant.cli.options import load_from_args
    from assistant.runtime import choose_engine
    from retrieval.evaluation import load_corpus
    from retrieval.knowledge_base import KnowledgeBase

    console = Console(stderr=True)
    folder = Path(args.faq)
    work = Path(args.work).resolve()
    loaded = load_from_args(args)
    loaded.settings.home = work / "home"
    loaded.settings.answers.style = "generative"  # what the model writes is measured, not answers composed for it
    settings = loaded.settings
    train_path, test_path, n_train, n_test = split_faq(folder, work, args.test_fraction)
    console.print(f"{n_train} training conversations, {n_test} test questions (never trained on)")
    knowledge = KnowledgeBase(settings.knowledge_dir)
    if len(knowledge) == 0:  # the company documents the answers are grounded in: the FAQ corpus itself
        knowledge.replace_all(load_corpus(folder / "corpus.jsonl"))
    config = load_align_settings(args.align_config, overrides(args.set))
    started = time.perf_counter()
    # one engine start per model: the base model answers the test questions and then align's pair and held-out
    # prompts; the candidate its held-out prompts and then, registered, the test questions
    with Answerer(settings, choose_engine(loaded)) as answerer:
        before = evaluate_answer_file(loaded, test_path, folder, "base", args.limit, args.max_new_tokens,
                                      answerer=answerer)
        before_s = time.perf_counter() - started
        console.print(f"base model: {before}")
        report = AlignPipeline(loaded, config, console, answerer).run(AlignRequest([train_path]))
        print_report(report, console)
        clock = time.perf_counter()
        after = evaluate_answer_file(loaded, test_path, folder, "current", args.limit, args.max_new_tokens,
                                     answerer=answerer)
    seconds = {"test questions, base model": round(before_s, 1), **report.seconds,
               "test questions, aligned model": round(time.perf_counter() - clock, 1)}
    console.print(f"aligned model: {after}")
    bf16 = uses_bf16(config.training.precision)
    gflops = matmul_gflops(bf16)
    params = parameter_count(Path(report.version.model_dir)) if report.version else 0
    limit = gflops * 1e9 / (6 * params) if params else 0.0  # forward + backward of every weight: 6 FLOP/param/token
    result = {
        "faq": str(folder), "train_conversations": n_train, "test_questions": n_test, "threads": os.cpu_count(),
        "before": before, "after": after,
        "token_f1_gain": round(after["written_token_f1"] - before["written_token_f1"], 4),
        "answer_token_f1_gain": round(after["token_f1"] - before["token_f1"], 4),
        "promoted": report.promoted, "decision": report.decision, "version": report.version.id if report.version
        else None, "stages": report.stages, "heldout_gate": report.metrics, "data": {
            k: v for k, v in report.data.items() if k != "files"},
        "matmul_gflops": round(gflops, 1), "matmul_dtype": "bfloat16" if bf16 else "float32", "parameters": params,
        "flop_limit_tokens_per_s": round(limit, 1),
        "utilisation": {s: round(r["tokens_per_s"] / limit, 3) if limit else None for s, r in report.stages.items()},
        "minutes": round((time.perf_counter() - started) / 60, 1), "seconds": seconds,
    }
    saved = write_results(args.out, "align", result, markdown(result))
    console.print(f"results: {saved} and .md")
    print(json.dumps(result) if args.json else markdown(result))
    return 0


def markdown(r: dict) -> str:
    lines = [f"# assistant bench align ({r['faq']})", "",
             f"{r['train_conversations']} training conversations, {r['test_questions']} test questions never "
             f"trained on; {r['minutes']} min in all.", "",
             "| model | token F1 of what it wrote | its sentences supported | token F1 of what a customer reads "
             "(after the support check) | ROUGE-L | gold cited | gold retrieved | don't know |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("before", "after"):
        m = r[name]
        lines.append(f"| {name} ({m['model']}) | {m.get('written_token_f1')} | {m.get('written_supported_rate')} | "
                     f"{m['token_f1']} | {m['rouge_l']} | {m.get('gold_citation_rate')} | "
                     f"{m.get('gold_retrieved_rate')} | {m['dont_know_rate']} |")
    lines += ["", f"token F1 gain of what the model writes: **{r['token_f1_gain']:+.4f}** (of what a customer reads: "
                  f"{r.get('answer_token_f1_gain', 0):+.4f}); gate: {r['decision']}; promoted: {r['promoted']}",
              "", "| stage | examples | steps | loss | seconds | tokens/s | share of FLOP limit |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for stage, s in r["stages"].items():
        lines.append(f"| {stage} | {s['examples']} | {s['steps']} | {s['loss']} | {s['seconds']} | "
                     f"{s['tokens_per_s']} | {r['utilisation'][stage]} |")
    if r.get("seconds"):
        lines += ["", "| phase | seconds |", "|---|---:|", *[f"| {k} | {v} |" for k, v in r["seconds"].items()]]
    lines += ["", f"FLOP limit: {r['matmul_gflops']} GFLOP/s (median {r.get('matmul_dtype', 'float32')} 1024² matmul) "
                  f"/ (6 × {r['parameters']:,} "
                  f"parameters) = {r['flop_limit_tokens_per_s']} tokens/s for forward+backward of every weight.",
              "", ROW_TOKENS_NOTE]
    return "\n".join(lines) + "\n"
