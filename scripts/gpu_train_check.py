"""Time `assistant align`'s training stages on a GPU (the device machine), as `alignment.training.train_stage` runs
them: SFT in float32 and with `training.precision: auto` (bf16 there), SFT on the top 15 layers, and DPO.

It needs no model download: a randomly initialised copy of the default model's architecture (same speed) is built
from its config and tokenizer, and the rows are grounded bank-FAQ prompts (four numbered passages, the gold one
answered), the length of a served prompt.

    python scripts/gpu_train_check.py MODEL_CONFIG_DIR BEIR_FAQ_DIR OUT_DIR [STEPS] [BATCH] [RUNS]

RUNS: comma-separated stage:precision[:top_layers], precision auto, float32, bfloat16 or autocast (bf16 matmuls
over float32 weights); default sft:float32,sft:auto,sft:auto:15,dpo:float32,dpo:auto.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path


def faq_rows(folder: Path, count: int) -> tuple[list[dict], list[dict]]:
    """(SFT rows, DPO rows): each judged query with its gold passage and three others under a short system prompt
    (the product's prompt builder needs more packages than the device machine carries)."""
    from retrieval.evaluation import load_beir

    passages, queries, qrels = load_beir(folder)
    corpus = {p.id: p.text for p in passages}
    gold = {query: next(iter(docs)) for query, docs in qrels.items()}
    rng, ids, sft, dpo = random.Random(0), list(corpus), [], []
    for query in [q for q in queries if q in gold][:count]:
        others = rng.sample([d for d in ids if d != gold[query]], 3)
        order = [gold[query], *others]
        rng.shuffle(order)
        sources = "\n\n".join(f"[{n}] {corpus[d]}" for n, d in enumerate(order, 1))
        prompt = [{"role": "system", "content": "You are the bank's support assistant. Answer from the sources and "
                                                f"cite them as [n].\n\nSources:\n{sources}"},
                  {"role": "user", "content": queries[query]}]
        answer = [{"role": "assistant", "content": f"{corpus[gold[query]]} [{order.index(gold[query]) + 1}]"}]
        sft.append({"prompt": prompt, "completion": answer})
        dpo.append({"prompt": prompt, "chosen": answer,
                    "rejected": [{"role": "assistant", "content": corpus[others[0]]}]})
    return sft, dpo


def main() -> int:
    import torch
    from transformers import AutoModelForCausalLM

    from alignment.bench.train import random_copy
    from alignment.config import load_align_settings
    from alignment.training import train_stage

    config_dir, faq, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 20
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    work = Path(tempfile.mkdtemp())
    model_dir = random_copy(config_dir, work / "model")
    sft, dpo = faq_rows(faq, batch * (steps + 1))
    # "autocast": precision bfloat16 with float32 weights (bf16 matmuls under autocast), as on a CPU
    runs = [(s.split(":")[0], s.split(":")[1], int(s.split(":")[2]) if s.count(":") == 2 else None)
            for s in (sys.argv[6] if len(sys.argv) > 6 else
                      "sft:float32,sft:auto,sft:auto:15,dpo:float32,dpo:auto").split(",")]
    results = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
               "torch": torch.__version__, "steps": steps, "batch": batch, "runs": []}
    for stage, precision, top in runs:
        config = load_align_settings(None, {f"{stage}.max_steps": steps, f"{stage}.batch_size": batch,
                                            "training.precision": "bfloat16" if precision == "autocast" else
                                            precision, "lora.top_layers": top, "training.save_steps": 100_000})
        started = time.perf_counter()
        load = AutoModelForCausalLM.from_pretrained
        if precision == "autocast":  # keep the weights in float32
            def float32_weights(*args, _load=load, **kwargs):
                return _load(*args, **(kwargs | {"dtype": torch.float32}))

            AutoModelForCausalLM.from_pretrained = float32_weights
        try:
            result = train_stage(stage, model_dir, sft if stage == "sft" else dpo, config,
                                 work / f"{stage}-{precision}-{top}-{len(results['runs'])}", progress=False)
        finally:
            AutoModelForCausalLM.from_pretrained = load
        row = {"stage": stage, "precision": precision, "top_layers": top,
               "wall_s": round(time.perf_counter() - started, 1)} | result.summary()
        results["runs"].append(row)
        print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-train.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
