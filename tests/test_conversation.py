"""Answers are stored as they end: complete, or partial/error when the stream breaks."""

from contextlib import aclosing

import pytest

from assistant.engines.base import EngineError
from assistant.prompt import build_chat_messages
from assistant.runtime import build_service


class BreaksAfter:
    """Fault injection around the real engine: the stream dies after `n` pieces, as when vLLM crashes."""

    def __init__(self, engine, n: int):
        self.inner, self.n = engine, n
        self.name = engine.name

    def model_names(self):
        return self.inner.model_names()

    def context_window(self):
        return self.inner.context_window()

    async def stream_chat(self, messages, params):
        count = 0
        async with aclosing(self.inner.stream_chat(messages, params)) as deltas:
            async for delta in deltas:
                if count == self.n:
                    raise EngineError("connection to the LLM server lost")
                count += 1
                yield delta


@pytest.fixture
async def service(make_settings):
    service = build_service(make_settings(**{"generation.max_new_tokens": 20}))
    await service.engine.start()
    yield service
    await service.engine.stop()
    service.store.close()


async def collect(events):
    return [event async for event in events]


async def answer_through_broken_engine(service, breaks_after: int, text: str):
    """Ask in a new conversation while the engine's stream dies after `breaks_after` pieces."""
    real = service.engine
    service.engine = BreaksAfter(real, breaks_after)
    try:
        cid = (await service.create_conversation()).id
        return cid, await collect(service.answer(cid, text))
    finally:
        service.engine = real


async def test_broken_stream_keeps_partial_answer(service):
    cid, events = await answer_through_broken_engine(service, 2, "Where is my refund?")
    assert [e.type for e in events][-1] == "error"
    streamed = "".join(e.data["text"] for e in events if e.type == "delta")
    user, answer = service.store.conversations.messages(cid)
    assert user.content == "Where is my refund?" and user.status == "complete"
    assert answer.status == "partial" and answer.content == streamed
    assert "connection to the LLM server lost" in answer.error
    # the conversation goes on after a broken answer
    events = await collect(service.answer(cid, "Hello?"))
    assert events[-1].type == "done"
    assert len(service.store.conversations.messages(cid)) == 4


async def test_failure_before_any_text_is_an_error_message(service):
    cid, events = await answer_through_broken_engine(service, 0, "hi")
    assert events[-1].type == "error" and events[-1].data["status"] == "error"
    assert service.store.conversations.messages(cid)[1].status == "error"


async def test_client_gone_mid_answer_leaves_partial(service):
    cid = (await service.create_conversation()).id
    stream = service.answer(cid, "Tell me about shipping")
    async for event in stream:
        if event.type == "delta":
            break
    await stream.aclose()  # what the server does when the customer's connection drops
    answer = service.store.conversations.messages(cid)[1]
    assert answer.status == "partial" and answer.content


async def test_bot_stays_silent_when_a_human_has_the_conversation(service):
    from assistant.store.schema import Conversation

    cid = (await service.create_conversation()).id
    with service.store.session() as session, session.begin():
        session.get(Conversation, cid).status = "human"
    events = await collect(service.answer(cid, "Are you a person?"))
    assert events[-1].data["status"] == "waiting_for_human"
    assert [m.role for m in service.store.conversations.messages(cid)] == ["user"]


def test_prompt_keeps_history_and_maps_agent_to_assistant():
    history = [
        {"role": "user", "content": "Hi", "status": "complete"},
        {"role": "agent", "content": "Hello, this is Sam.", "status": "complete"},
        {"role": "assistant", "content": "", "status": "error"},
        {"role": "user", "content": "Where is my order?", "status": "complete"},
    ]
    messages = build_chat_messages("You are helpful.", history)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "You are helpful."), ("user", "Hi"), ("assistant", "Hello, this is Sam."),
        ("user", "Where is my order?"),
    ]
