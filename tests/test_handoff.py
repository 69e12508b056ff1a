"""Human handoff: the customer asks (words or button), an operator takes over and replies, the bot stays silent,
hands back; failed answers hand off; closing with CSAT; operator accounts; transcript export for alignment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from assistant.engines.base import EngineError
from assistant.store import HandoffError, OperatorError
from assistant.store.records import OperatorIdentity

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL


def post(client, conversation: str, text: str) -> dict:
    response = client.post(f"/api/conversations/{conversation}/messages", json={"content": text, "stream": False})
    assert response.status_code == 200, response.text
    return response.json()


def test_customer_asks_operator_takes_over_bot_stays_silent(client):
    store = client.app.state.service.store
    conversation = client.post("/api/conversations", json={"channel": "web"}).json()["id"]
    post(client, conversation, "Where is my parcel?")
    reply = post(client, conversation, "This is not helping, let me talk to a human please")
    assert reply["status"] == "waiting_for_human" and "colleague" in reply["answer"]
    again = post(client, conversation, "Hello? Anyone there? I want a real person")
    assert again["answer"] == "" and again["status"] == "waiting_for_human"  # asked once, told once
    overview = {c.id: c for c in store.handoffs.conversation_overview()}[conversation]
    assert overview.status == "waiting_human" and overview.handoff_reason == "customer_asked"
    assert overview.waiting_since is not None and overview.last_role == "user"

    last_seen = client.get(f"/api/conversations/{conversation}/messages").json()["messages"][-1]["id"]
    store.handoffs.take_over(conversation, "maria")
    with pytest.raises(HandoffError, match="maria already has"):
        store.handoffs.take_over(conversation, "li")
    store.handoffs.add_agent_message(conversation, "maria", "Hi, I'm Maria. Your parcel left our warehouse today.")
    polled = client.get(f"/api/conversations/{conversation}/messages", params={"after": last_seen}).json()
    assert polled["status"] == "human"
    assert [(m["role"], m["metadata"].get("agent")) for m in polled["messages"]] == [("agent", "maria")]
    quiet = post(client, conversation, "Thanks! When will it arrive?")
    assert quiet["answer"] == "" and quiet["status"] == "waiting_for_human"
    roles = [m["role"] for m in client.get(f"/api/conversations/{conversation}/messages").json()["messages"]]
    assert roles == ["user", "assistant", "user", "assistant", "user", "agent", "user"]  # no bot after the handoff

    store.handoffs.hand_back(conversation)
    assert client.get(f"/api/conversations/{conversation}").json()["status"] == "bot"
    assert post(client, conversation, "And can I change the address?")["status"] == "complete"


def test_handoff_button_close_and_csat(client):
    conversation = client.post("/api/conversations").json()["id"]
    asked = client.post(f"/api/conversations/{conversation}/handoff", json={})
    assert asked.status_code == 200 and asked.json()["status"] == "waiting_human"
    assert client.post(f"/api/conversations/{conversation}/handoff").json()["message_id"] is None  # once
    store = client.app.state.service.store
    with pytest.raises(HandoffError, match="take the conversation over"):
        store.handoffs.add_agent_message(conversation, "maria", "hello")
    assert client.post(f"/api/conversations/{conversation}/close", json={"csat": 9}).status_code == 422
    closed = client.post(f"/api/conversations/{conversation}/close", json={"csat": 4})
    assert closed.status_code == 200
    body = client.get(f"/api/conversations/{conversation}").json()
    assert body["status"] == "closed" and body["csat"] == 4 and body["closed_at"]
    refused = client.post(f"/api/conversations/{conversation}/messages", json={"content": "hi", "stream": False})
    assert refused.status_code == 409
    assert client.post(f"/api/conversations/{conversation}/handoff").status_code == 409
    assert client.post(f"/api/conversations/{conversation}/close", json={"csat": 5}).json()["csat"] == 5
    assert client.post("/api/conversations/nope/handoff").status_code == 404


class DeadEngine:
    """The serving engine's name and window, but every answer fails before its first word (a crashed vLLM)."""

    def __init__(self, engine):
        self.inner, self.name = engine, engine.name

    def model_names(self):
        return self.inner.model_names()

    def context_window(self):
        return self.inner.context_window()

    async def stream_chat(self, messages, params):
        raise EngineError("connection to the LLM server lost")
        yield  # an async generator, like every engine's stream


def test_two_failed_answers_in_a_row_hand_off(client):
    service = client.app.state.service
    real, service.engine = service.engine, DeadEngine(service.engine)
    try:
        conversation = client.post("/api/conversations").json()["id"]
        first = client.post(f"/api/conversations/{conversation}/messages", json={"content": "Where is my parcel?",
                                                                                 "stream": False}).json()
        assert first["status"] == "error"
        assert client.get(f"/api/conversations/{conversation}").json()["status"] == "bot"  # one failure: not yet
        second = client.post(f"/api/conversations/{conversation}/messages", json={"content": "Hello? Anyone?",
                                                                                  "stream": False}).json()
        assert second["status"] == "error"
    finally:
        service.engine = real
    [handoff] = [c for c in service.store.handoffs.conversation_overview() if c.id == conversation]
    assert handoff.status == "waiting_human" and handoff.handoff_reason == "bot_failed_twice"
    third = client.post(f"/api/conversations/{conversation}/messages", json={"content": "Still there?",
                                                                             "stream": False}).json()
    assert third["status"] == "waiting_for_human"  # the bot stays silent once a human is asked for


def test_operator_accounts(client):
    store = client.app.state.service.store
    store.operators.create_operator("maria", "correct horse battery", "Maria G.")
    assert store.operators.verify_operator("maria", "correct horse battery") == OperatorIdentity(
        username="maria", display_name="Maria G.")
    assert store.operators.verify_operator("maria", "wrong password") is None
    assert store.operators.verify_operator("nobody", "correct horse battery") is None
    with pytest.raises(OperatorError, match="already exists"):
        store.operators.create_operator("maria", "another password")
    with pytest.raises(OperatorError, match="at least 8"):
        store.operators.create_operator("li", "short")
    from sqlalchemy import select

    from assistant.store.schema import Operator

    with store.session() as session:
        stored = session.scalars(select(Operator)).one().password_hash
    assert stored.startswith("scrypt$") and "correct horse" not in stored


def test_export_is_valid_align_input(client):
    from alignment.transcripts import parse_transcript

    store = client.app.state.service.store
    conversation = client.post("/api/conversations", json={"channel": "web"}).json()["id"]
    post(client, conversation, "Where is my parcel?")
    client.post(f"/api/conversations/{conversation}/handoff")
    store.handoffs.take_over(conversation, "maria")
    store.handoffs.add_agent_message(conversation, "maria", "It arrives tomorrow.")
    now = datetime.now(UTC)
    rows = store.conversations.export_transcripts(now - timedelta(hours=1), now + timedelta(hours=1))
    [row] = [r for r in rows if r["id"] == conversation]
    parsed = parse_transcript(row, "export:1")
    roles = [m["role"] for m in parsed.messages]
    assert roles[0] == "user" and roles[-2:] == ["assistant", "agent"]  # the handoff notice, then the agent
    assert parsed.messages[-1]["content"] == "It arrives tomorrow."
    assert row["metadata"]["channel"] == "web"
    assert store.conversations.export_transcripts(now + timedelta(hours=1), now + timedelta(hours=2)) == []


def test_asking_for_a_human_in_chinese_words_hands_off(client):
    conversation = client.post("/api/conversations").json()["id"]
    reply = client.post(f"/api/conversations/{conversation}/messages",
                        json={"content": "机器人听不懂，我要转人工", "stream": False}).json()
    assert reply["status"] == "waiting_for_human" and reply["answer"].startswith("我已请")
    [row] = [c for c in client.app.state.service.store.handoffs.conversation_overview() if c.id == conversation]
    assert row.status == "waiting_human" and row.handoff_reason == "customer_asked"
