"""Where vLLM's time goes (`assistant bench serve` / `bench load` report it), read from a real vLLM server: the
split into prefill and decode, and vLLM's prefix cache reusing the shared system prompt on the CPU backend."""

import httpx

from assistant.bench.engine_time import read_vllm_metrics, split_sentence, time_split
from assistant.prompt import GROUNDING_RULES

SYSTEM = ("You are the customer-support assistant of Lumen Outfitters. Answer briefly and politely. "
          + GROUNDING_RULES + " " + "Returns are accepted within 30 days of delivery for a full refund. " * 12)


def test_the_split_of_two_answers_sharing_a_system_prompt(shared_vllm_url):
    before = read_vllm_metrics(shared_vllm_url)
    for question in ("How long do I have to return a jacket?", "Can I return shoes I wore outside?"):
        reply = httpx.post(f"{shared_vllm_url}/chat/completions", timeout=120, json={
            "model": "SmolLM2-135M-Instruct", "max_tokens": 8, "temperature": 0,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]})
        reply.raise_for_status()
    split = time_split(before, read_vllm_metrics(shared_vllm_url))

    assert split["requests"] == 2
    assert split["prefill_ms"] > 0 and split["decode_ms"] > 0
    assert split["prompt_tokens"] > 200 and 1 <= split["generated_tokens"] <= 8
    # the second request found the system prompt's blocks already computed: prefix caching works on this backend
    assert split["prefix_cache_hit_rate"] > 0.3
    assert "prefill" in split_sentence(split) and "prefix cache hits" in split_sentence(split)


def test_no_split_without_readings_or_requests():
    reading = {"vllm:request_prefill_time_seconds_count": 3.0}
    assert time_split(None, reading) is None
    nothing = time_split(reading, dict(reading))  # nothing finished between the readings
    assert nothing == {"requests": 0} and "no request reached vLLM" in split_sentence(nothing)
    assert "not available" in split_sentence(None)


def test_a_system_prompt_shorter_than_vllms_cpu_block_is_reused_too(shared_vllm_url):
    """The serving prompt's shared head (the company's system prompt and the grounding rules, about 115 tokens) is
    shorter than the CPU backend's default KV block (128 tokens), which prefix caching reuses only whole: with
    32-token blocks (`vllm.block_size`) every answer after the first starts from the cached head."""
    head = "You are the customer-support assistant of Lumen Outfitters. Answer briefly and politely. " + GROUNDING_RULES
    before = read_vllm_metrics(shared_vllm_url)
    for question in ("Where is my parcel?", "Do you ship to Norway?", "Can I pay by invoice?"):
        reply = httpx.post(f"{shared_vllm_url}/chat/completions", timeout=120, json={
            "model": "SmolLM2-135M-Instruct", "max_tokens": 4, "temperature": 0,
            "messages": [{"role": "system", "content": head}, {"role": "user", "content": question}]})
        reply.raise_for_status()
    split = time_split(before, read_vllm_metrics(shared_vllm_url))
    assert split["prompt_tokens"] < 3 * 128  # each prompt shorter than one block of vLLM's CPU default
    assert split["prefix_cache_hit_rate"] > 0.3  # 0 with 128-token blocks
