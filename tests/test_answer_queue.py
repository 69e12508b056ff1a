"""A customer is not left in silence while the model's queue drains: past `answers.max_wait_s` the answer is composed
from the sources at once (or, with none, a short busy reply offers a human); the wait is estimated from the recent
answers and shown on /healthz and /metrics."""

from __future__ import annotations

import asyncio

import httpx

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.bench.customers import send_message
from assistant.chat_serving import ChatServing
from assistant.engines.base import ChatMessage, ContextWindow
from assistant.runtime import build_service
from tests.fake_engine import FakeEngine


class QueuedEngine(FakeEngine):
    """A model that starts an answer later the more answers it is writing (a queue on a small CPU)."""

    writing = 0

    async def stream_chat(self, messages, params):
        QueuedEngine.writing += 1
        try:
            await asyncio.sleep(0.25 * QueuedEngine.writing)
            async for delta in super().stream_chat(messages, params):
                yield delta
        finally:
            QueuedEngine.writing -= 1



def one_then_eight_at_once(url: str) -> tuple:
    """One customer asks alone (the model's time is measured), then eight at once: their outcomes."""
    async def customers() -> tuple:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async def one(index: int):
                conversation = (await client.post("/api/conversations", json={
                    "customer_id": f"c{index}", "channel": "test"})).json()["id"]
                return await send_message(client, conversation, "How long does a refund take?", "m")

            alone = await one(0)
            return alone, await asyncio.gather(*(one(i) for i in range(1, 9)))

    return asyncio.run(customers())

def test_a_long_queue_answers_from_the_sources_at_once(make_settings):
    settings = make_settings(**{"retrieval.enabled": True, "answers.style": "generative", "answers.max_wait_s": 1.5})
    service = build_service(settings, make_engine=QueuedEngine.build)
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        alone, crowd = one_then_eight_at_once(url)
        outcomes = [alone, *crowd]
        health = httpx.get(f"{url}/healthz").json()
        metrics = httpx.get(f"{url}/metrics").text
    assert all(o.complete and not o.errors for o in outcomes)
    counts = health["answers"]
    assert counts["written"] >= 3 and counts["busy"] >= 2  # some waited for the model, the rest got the sources
    assert counts["busy"] == counts["composed"]  # each busy answer was composed from the sources
    assert health["queue"]["writing"] == 0 and health["queue"]["estimated_wait_s"] > 0
    assert "assistant_answer_wait_estimate_seconds" in metrics and 'assistant_answers_total{kind="busy"}' in metrics
    assert max(o.first_token_ms for o in outcomes) < 2500  # nobody waited much beyond the allowed 1.5 s



class SlowUnsupportedEngine(FakeEngine):
    """A model whose first word comes at once but which then writes slowly (more slowly the more answers it writes),
    sentences the sources do not support: the customer sees nothing until the answer composed from the sources
    replaces it at the end."""

    writing = 0

    async def stream_chat(self, messages, params):
        SlowUnsupportedEngine.writing += 1
        try:
            async for delta in super().stream_chat(messages, params):
                yield delta
                await asyncio.sleep(0.05 * SlowUnsupportedEngine.writing)
        finally:
            SlowUnsupportedEngine.writing -= 1


def test_the_wait_counted_is_the_customers_not_the_models_first_word(make_settings):
    """With prefix caching the model's first word comes fast, but a customer of a model the support check cuts
    waits for the whole answer: that is the wait the queue must count, or every customer is sent to the model."""
    settings = make_settings(**{"retrieval.enabled": True, "answers.style": "generative", "answers.max_wait_s": 1.0})
    service = build_service(settings, make_engine=SlowUnsupportedEngine.build)
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        alone, crowd = one_then_eight_at_once(url)  # alone: about 0.8 s to the replaced answer
        counts = httpx.get(f"{url}/healthz").json()["answers"]
    assert all(o.complete and not o.errors for o in (alone, *crowd))
    assert alone.first_token_ms > 500  # the customer waited for the whole answer
    assert counts["written"] <= 2 and counts["busy"] >= 7  # the crowd got the sources at once
    assert max(o.first_token_ms for o in crowd) < 1500

def test_without_sources_a_busy_model_gets_a_polite_reply(make_settings):
    settings = make_settings(**{"answers.style": "generative", "answers.max_wait_s": 5}).settings
    engine = FakeEngine("fake", ContextWindow(2048, lambda text: len(text.split())))
    engine.running = True
    serving = ChatServing(settings, engine)
    serving.queue.estimated_wait_s = lambda: 12.0  # twelve seconds to the model's first word
    turns = [ChatMessage("user", "Where is my parcel?")]
    prepared = asyncio.run(serving.prepare(turns, busy_fallback=True))
    assert prepared.canned_reason == "busy" and "human agent" in prepared.canned
    chinese = asyncio.run(serving.prepare([ChatMessage("user", "我的包裹在哪里？")], busy_fallback=True))
    assert "人工客服" in chinese.canned
    serving.queue.estimated_wait_s = lambda: 3.0  # within the allowed wait: the model is asked
    assert asyncio.run(serving.prepare(turns, busy_fallback=True)).canned is None
