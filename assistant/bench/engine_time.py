"""Where the engine's time goes during a benchmark run: vLLM's own per-request histograms (waiting in its queue,
prefill, decode) and its prefix-cache counters, read from its `/metrics` before and after the run."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

STAGES = {"queue": "vllm:request_queue_time_seconds", "prefill": "vllm:request_prefill_time_seconds",
          "decode": "vllm:request_decode_time_seconds"}
COUNTERS = ("vllm:prefix_cache_queries", "vllm:prefix_cache_hits", "vllm:prompt_tokens", "vllm:generation_tokens")


def read_vllm_metrics(vllm_url: str) -> dict[str, float] | None:
    """The stage sums, request count and counters (summed over label sets), or None when vLLM does not answer."""
    root = vllm_url.removesuffix("/").removesuffix("/v1")
    try:
        text = httpx.get(f"{root}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    wanted = {f"{name}_sum" for name in STAGES.values()} | {f"{STAGES['prefill']}_count"}
    wanted |= {f"{name}_total" for name in COUNTERS}
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in wanted:
                values[sample.name] = values.get(sample.name, 0.0) + sample.value
    return values or None


def time_split(before: dict[str, float] | None, after: dict[str, float] | None) -> dict | None:
    """Per finished request between two readings: mean ms queued, in prefill and in decode, prompt and generated
    tokens, and the share of prompt tokens found in vLLM's prefix cache ({"requests": 0} when none finished; None
    without both readings)."""
    if not before or not after:
        return None

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    requests = delta(f"{STAGES['prefill']}_count")
    if requests <= 0:
        return {"requests": 0}
    split = {"requests": int(requests)}
    for stage, name in STAGES.items():
        split[f"{stage}_ms"] = round(delta(f"{name}_sum") / requests * 1000, 1)
    split["prompt_tokens"] = round(delta("vllm:prompt_tokens_total") / requests, 1)
    split["generated_tokens"] = round(delta("vllm:generation_tokens_total") / requests, 1)
    queries = delta("vllm:prefix_cache_queries_total")
    split["prefix_cache_hit_rate"] = round(delta("vllm:prefix_cache_hits_total") / queries, 3) if queries else None
    return split


def split_sentence(split: dict | None) -> str:
    """The split as one line of a report."""
    if not split:
        return "engine time: not available (vLLM's /metrics did not answer)"
    if not split["requests"]:
        return "engine time: no request reached vLLM during the run"
    hits = split["prefix_cache_hit_rate"]
    return (f"engine time per request ({split['requests']} requests, vLLM's own histograms): queued "
            f"{split['queue_ms']} ms, prefill {split['prefill_ms']} ms, decode {split['decode_ms']} ms; "
            f"{split['prompt_tokens']} prompt tokens and {split['generated_tokens']} generated per request; prefix "
            f"cache hits {'-' if hits is None else f'{hits:.1%}'} of prompt tokens")
