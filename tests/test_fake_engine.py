"""The fake engine the API and UI tests run on (tests/fake_engine.py) keeps the engine interface's promises."""

from __future__ import annotations

import pytest

from assistant.engines.base import ChatMessage, EngineUnavailableError, GenerationParams, LLMEngine
from assistant.engines.context import estimated_window
from tests.fake_engine import FakeEngine, fake_answer


def params(max_new_tokens: int, stop: list[str] | None = None) -> GenerationParams:
    return GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, top_p=1.0, repetition_penalty=1.0,
                            stop=stop or [])


async def answer(engine, messages, max_new_tokens: int, stop: list[str] | None = None):
    return [d async for d in engine.stream_chat(messages, params(max_new_tokens, stop))]


async def test_streams_a_deterministic_answer_within_max_tokens_and_stops():
    engine = FakeEngine("tiny", estimated_window(1024))
    assert isinstance(engine, LLMEngine)
    asked = [ChatMessage("user", "Where is my order?")]
    with pytest.raises(EngineUnavailableError):
        await answer(engine, asked, 50)
    await engine.start()
    assert await engine.health() and engine.model_names() == ["tiny"]
    whole = await answer(engine, asked, 50)
    text = "".join(d.text for d in whole)
    assert text == fake_answer(asked) and len(whole) > 3  # streamed in pieces
    assert (whole[-1].finish_reason, whole[-1].completion_tokens) == ("stop", len(text.split()))
    assert whole[-1].prompt_tokens == engine.context_window().count(asked) > 0
    cut = await answer(engine, asked, 4)
    assert "".join(d.text for d in cut) == " ".join(text.split()[:4])
    assert (cut[-1].finish_reason, cut[-1].completion_tokens) == ("length", 4)
    stopped = await answer(engine, asked, 50, stop=[" message"])
    assert "".join(d.text for d in stopped) == text[:text.index(" message")]
    assert stopped[-1].finish_reason == "stop"
    assert engine.prompts[0] == asked
    await engine.stop()
    assert not await engine.health()
