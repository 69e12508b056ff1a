"""Each conversation belongs to the key or the browser that made it (pen-test findings 1 and 2): another key, or an
anonymous caller who knows an id, can neither read it, write into it, close it nor give feedback on its answers;
feedback is signed by the key, and only keys allowed to correct may send corrections (training data)."""

from __future__ import annotations

import json

import pytest

from tests.gradio_calls import function_indexes, gradio_call

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def keyed(make_client):
    client = make_client(**{"auth.required": True})
    keys = client.app.state.service.store.keys
    made = {scope: keys.create_api_key(scope) for scope in ("api", "feedback:write", "admin")}
    made["other"] = keys.create_api_key("api")
    return client, {name: {"Authorization": f"Bearer {key}"} for name, key in made.items()}


def test_another_key_cannot_touch_a_conversation(keyed):
    client, keys = keyed
    mine = client.post("/api/conversations", json={}, headers=keys["api"]).json()["id"]
    asked = client.post(f"/api/conversations/{mine}/messages", headers=keys["api"],
                        json={"content": "How long do refunds take?", "stream": False})
    assert asked.status_code == 200
    before = client.get(f"/api/conversations/{mine}", headers=keys["api"]).json()
    attempts = {
        "read": client.get(f"/api/conversations/{mine}", headers=keys["other"]),
        "poll": client.get(f"/api/conversations/{mine}/messages?after=0", headers=keys["other"]),
        "write": client.post(f"/api/conversations/{mine}/messages", headers=keys["other"],
                             json={"content": "injected", "stream": False}),
        "hand off": client.post(f"/api/conversations/{mine}/handoff", json={}, headers=keys["other"]),
        "close": client.post(f"/api/conversations/{mine}/close", json={"csat": 1}, headers=keys["other"]),
    }
    assert {name: r.status_code for name, r in attempts.items()} == dict.fromkeys(attempts, 404)
    assert "injected" not in json.dumps(attempts["read"].json())
    after = client.get(f"/api/conversations/{mine}", headers=keys["api"]).json()
    assert after == before and after["status"] == "bot"  # nothing written, nothing closed
    assert client.get(f"/api/conversations/{mine}", headers=keys["admin"]).status_code == 200  # admins see all


def test_feedback_only_on_own_answers_signed_by_the_key(keyed):
    client, keys = keyed
    mine = client.post("/api/conversations", json={}, headers=keys["api"]).json()["id"]
    answer = client.post(f"/api/conversations/{mine}/messages", headers=keys["api"],
                         json={"content": "How long do refunds take?", "stream": False}).json()["answer_id"]
    foreign = client.post(f"/api/messages/{answer}/feedback", json={"rating": -1}, headers=keys["other"])
    assert foreign.status_code == 404
    corrected = client.post(f"/api/messages/{answer}/feedback", headers=keys["api"],
                            json={"rating": -1, "corrected_text": "Refunds take a year."})
    assert corrected.status_code == 403 and "feedback:write" in corrected.json()["error"]["message"]
    rated = client.post(f"/api/messages/{answer}/feedback", headers=keys["api"],
                        json={"rating": -1, "author": "operator-anna"})
    assert rated.status_code == 201
    store = client.app.state.service.store
    [entry] = [e for e in store.conversations.transcript(mine) if e.id == answer]
    assert entry.feedback.rating == -1 and entry.feedback.corrected_text is None
    with store.session() as session:
        from sqlalchemy import select

        from assistant.store.schema import Feedback
        authors = session.scalars(select(Feedback.author)).all()
    assert authors == [f"key:{keys['api']['Authorization'][7:17]}"]  # the key, not the name the caller chose


def test_a_feedback_write_key_corrects_its_own_answers(keyed):
    client, keys = keyed
    own = client.post("/api/conversations", json={}, headers=keys["feedback:write"]).json()["id"]
    answer = client.post(f"/api/conversations/{own}/messages", headers=keys["feedback:write"],
                         json={"content": "How long do refunds take?", "stream": False}).json()["answer_id"]
    fixed = client.post(f"/api/messages/{answer}/feedback", headers=keys["feedback:write"],
                        json={"corrected_text": "Refunds take 5 business days."})
    assert fixed.status_code == 201
    store = client.app.state.service.store
    [entry] = [e for e in store.conversations.transcript(own) if e.id == answer]
    assert entry.feedback.corrected_text == "Refunds take 5 business days."


def test_conversation_ids_are_validated(keyed):
    client, keys = keyed
    for bad in ("%00abc", "a" * 200, "abc%2Fdef"):
        assert client.get(f"/api/conversations/{bad}", headers=keys["api"]).status_code in (404, 422)


@pytest.mark.views("chat")
def test_the_chat_page_opens_only_with_its_browser_pass(make_client):
    """The chat page's Gradio endpoints (what `queue/join` with an `fn_index` reaches) take the browser's secret
    pass: a caller who knows only the conversation id can neither read, write into nor close it."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from ui.chat_page import build_chat_page

    client = make_client()
    service = client.app.state.service
    functions = function_indexes(build_chat_page(service, "en"))
    with BackgroundServer(create_app(service, mount_views={"chat"})) as url:
        hello = gradio_call(f"{url}/chat", functions["respond"], ["How long do refunds take?", [], None, None, None])
        chat_pass = hello[1]
        conversation_id = chat_pass.split(".")[0]
        assert service.store.conversations.messages(conversation_id)[0].content == "How long do refunds take?"
        shown = gradio_call(f"{url}/chat", functions["restore"], [chat_pass])
        assert "refunds" in json.dumps(shown[0]).lower()  # the browser's own pass restores the chat
        for forged in (conversation_id, f"{conversation_id}.{'x' * 32}"):
            assert gradio_call(f"{url}/chat", functions["restore"], [forged])[0] == []  # nothing read
            gradio_call(f"{url}/chat", functions["end_chat"], [forged])
            gradio_call(f"{url}/chat", functions["respond"], ["injected", [], forged, None, None])
        stored = service.store.conversations.messages(conversation_id)
        assert "injected" not in [m.content for m in stored]
        assert service.store.conversations.get_conversation(conversation_id).status == "bot"
