"""`assistant bench train`: SFT and DPO throughput (tokens/s) of the training stages `assistant align` runs, next to
this machine's forward+backward FLOP limit. Fast (a few steps each), on CPU or GPU, no evaluation.

Rows come from a BEIR FAQ folder: question -> gold answer, with the gold passage and three other corpus passages as
numbered sources in the serving prompt (the length of a grounded prompt without needing an encoder); DPO pairs
reject a wrong passage. `--random-init` trains a randomly initialised copy of the model's architecture (same
speed, for machines that lack the weights).
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from alignment.bench.align import ROW_TOKENS_NOTE, matmul_gflops, parameter_count
from assistant.bench import write_results


def faq_rows(folder: Path, system_prompt: str, count: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(SFT rows, DPO rows) in TRL conversational format."""
    from alignment.examples import PromptBuilder
    from assistant.grounding import Source
    from retrieval.evaluation import load_beir

    corpus, queries, qrels = load_beir(folder)
    texts = {p.id: p.text for p in corpus}
    rng = random.Random(seed)
    builder = PromptBuilder(system_prompt)
    sft, dpo = [], []
    judged = [q for q in queries if q in qrels][:count]
    for qid in judged:
        gold = next(iter(qrels[qid]))
        others = rng.sample([p.id for p in corpus if p.id != gold], 3)
        order = [gold, *others]
        rng.shuffle(order)
        sources = [Source(i, f"FAQ {d}", d, None, None, texts[d], 1.0) for i, d in enumerate(order, 1)]
        prompt = builder.prompt([{"role": "user", "content": queries[qid]}], sources)
        answer = f"{texts[gold]} [{order.index(gold) + 1}]"
        sft.append({"prompt": prompt, "completion": [{"role": "assistant", "content": answer}]})
        dpo.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": answer}],
                    "rejected": [{"role": "assistant", "content": texts[others[0]]}]})
    return sft, dpo


def random_copy(model_dir: Path, target: Path) -> Path:
    """The same architecture and tokenizer with random weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).to(torch.float32).save_pretrained(target)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(target)
    return target


def run_benchmark(args) -> int:
    import torch

    from alignment.cli.align import overrides
    from alignment.config import load_align_settings
    from alignment.training import train_stage, uses_bf16
    from assistant.cli.options import load_from_args
    from assistant.model_files import resolve_model

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    model_dir = Path(resolve_model(settings.model, settings.models_dir).path)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        if args.random_init:
            model_dir = random_copy(model_dir, work / "random-model")
        config = load_align_settings(None, {"sft.max_steps": args.steps, "dpo.max_steps": args.steps,
                                          "sft.batch_size": args.batch_size, "dpo.batch_size": args.batch_size,
                                          "training.save_steps": 10_000} | overrides(args.set))
        batch = max(config.sft.batch_size, config.dpo.batch_size)
        sft_rows, dpo_rows = faq_rows(Path(args.faq), settings.rendered_system_prompt(),
                                      batch * (args.steps + 1))
        stages = {}
        for stage, rows in (("sft", sft_rows), ("dpo", dpo_rows)):
            console.rule(f"{stage}: {args.steps} steps on {device}")
            stages[stage] = train_stage(stage, model_dir, rows, config, work, progress=True).summary()
        params = parameter_count(model_dir)
        bf16 = uses_bf16(config.training.precision)
        gflops = matmul_gflops(bf16)
    limit_full = gflops * 1e9 / (6 * params)
    limit_lora = gflops * 1e9 / (4 * params)
    result = {
        "device": device, "model": str(settings.model), "random_init": args.random_init, "parameters": params,
        "steps": args.steps, "batch_size": batch, "matmul_gflops": round(gflops, 1),
        "matmul_dtype": "bfloat16" if bf16 else "float32", "top_layers": config.lora.top_layers,
        "flop_limit_tokens_per_s_6n": round(limit_full, 1), "flop_limit_tokens_per_s_4n": round(limit_lora, 1),
        "stages": stages,
        "share_of_6n_limit": {s: round((r["steady_tokens_per_s"] or r["tokens_per_s"]) / limit_full, 3)
                              for s, r in stages.items()},
    }
    tag = "gpu" if torch.cuda.is_available() else "cpu"
    write_results(args.out, f"train-{tag}", result, markdown(result))
    print(json.dumps(result) if args.json else markdown(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def markdown(r: dict) -> str:
    lines = [f"# assistant bench train ({r['device']})", "",
             f"model {r['model']} ({r['parameters']:,} parameters{', random weights' if r['random_init'] else ''}), "
             f"{r['steps']} steps, batch {r['batch_size']}, LoRA as in `assistant align`.", "",
             "| stage | steps | tokens | seconds | tokens/s (all) | tokens/s (after step 1) | share of 6N limit |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for stage, s in r["stages"].items():
        lines.append(f"| {stage} | {s['steps']} | {s['tokens']} | {s['seconds']} | {s['tokens_per_s']} | "
                     f"{s['steady_tokens_per_s']} | {r['share_of_6n_limit'][stage]} |")
    lines += ["", f"FLOP limit: {r['matmul_gflops']} GFLOP/s (median {r.get('matmul_dtype', 'float32')} matmul; "
                  f"LoRA on the top {r.get('top_layers') or 'all'} layers) → {r['flop_limit_tokens_per_s_6n']} "
                  f"tokens/s at 6 FLOP/parameter/token (forward+backward, every weight trained); "
                  f"{r['flop_limit_tokens_per_s_4n']} tokens/s at 4 (LoRA: frozen weights need no weight gradient).",
              "", ROW_TOKENS_NOTE]
    return "\n".join(lines) + "\n"
