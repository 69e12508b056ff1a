"""Closed-loop load against an OpenAI-compatible endpoint: N clients, each sending requests back to back."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict, dataclass, field

import httpx

SUPPORT_QUESTIONS = [
    "How do I reset my password if I no longer have access to my email?",
    "My parcel says delivered but I cannot find it. What should I do?",
    "Can I return a jacket I bought six weeks ago without the receipt?",
    "Why was my card charged twice for the same order?",
    "How can I change the delivery address of an order that has already shipped?",
    "Do you ship to Canada, and how long does it take?",
    "How do I turn on two-factor authentication for my account?",
    "I received the wrong size. Can you send the right one before I return this one?",
]


@dataclass
class LevelResult:
    target: str
    concurrency: int
    requests: int
    errors: int
    completion_tokens: int
    wall_s: float
    tokens_per_s: float
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    first_error: str | None = None
    repeats: int = 1
    engine_time: dict | None = None  # vLLM's queue / prefill / decode split (assistant.bench.engine_time)
    api_cpu_ms: float | None = None  # CPU the front end's process used per request (bench serve)
    ttfts_ms: list[float] = field(default_factory=list, repr=False)  # each request's, for pooling runs

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "ttfts_ms"}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


async def _one_request(client: httpx.AsyncClient, url: str, model: str, question: str,
                       max_tokens: int, extra: dict) -> tuple[float | None, int]:
    body = {"model": model, "messages": [{"role": "user", "content": question}], "max_tokens": max_tokens,
            "temperature": 0.0, "stream": True, "stream_options": {"include_usage": True}, **extra}
    started = time.perf_counter()
    first = None
    tokens = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    return first, tokens


async def run_level(target: str, base_url: str, model: str, concurrency: int, requests_per_client: int,
                    max_tokens: int, extra: dict | None = None) -> LevelResult:
    """`concurrency` clients each send `requests_per_client` streamed requests; throughput over the wall time."""
    url = base_url.rstrip("/") + "/chat/completions"
    ttfts: list[float] = []
    tokens = 0
    errors = 0
    first_error: str | None = None

    async def client_loop(client: httpx.AsyncClient, index: int) -> None:
        nonlocal tokens, errors, first_error
        for k in range(requests_per_client):
            question = SUPPORT_QUESTIONS[(index + k) % len(SUPPORT_QUESTIONS)]
            try:
                first, count = await _one_request(client, url, model, question, max_tokens, extra or {})
            except httpx.HTTPError as exc:
                errors += 1
                first_error = first_error or repr(exc)
                continue
            tokens += count
            if first is not None:
                ttfts.append(first * 1000)

    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client, i) for i in range(concurrency)))
        wall = time.perf_counter() - started
    return LevelResult(target, concurrency, concurrency * requests_per_client, errors, tokens, round(wall, 3),
                       round(tokens / wall, 2), _round(percentile(ttfts, 50)), _round(percentile(ttfts, 95)),
                       first_error, ttfts_ms=ttfts)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
