"""Feedback on bot answers through the API: stored for `assistant align --from-store`; bad input is refused."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL


def test_feedback_is_stored_and_becomes_training_data(client):
    conversation = client.post("/api/conversations").json()["id"]
    reply = client.post(f"/api/conversations/{conversation}/messages",
                        json={"content": "How long do refunds take?", "stream": False}).json()
    answer_id = reply["answer_id"]
    created = client.post(f"/api/messages/{answer_id}/feedback",
                          json={"rating": -1, "corrected_text": "Refunds take five business days.",
                                "author": "operator-1"})
    assert created.status_code == 201 and created.json()["message_id"] == answer_id
    store = client.app.state.service.store
    [stored] = [c for c in store.conversations.conversations_for_alignment() if c["id"] == conversation]
    assert stored["feedback"][answer_id] == {"rating": -1, "corrected_text": "Refunds take five business days."}


def test_bad_feedback_is_refused_with_a_reason(client):
    conversation = client.post("/api/conversations").json()["id"]
    reply = client.post(f"/api/conversations/{conversation}/messages",
                        json={"content": "hi", "stream": False}).json()
    answer_id = reply["answer_id"]
    wrong_target = client.post(f"/api/messages/{reply['message_id']}/feedback", json={"rating": 1})
    assert wrong_target.status_code == 404 and "no bot answer" in wrong_target.json()["error"]["message"]
    assert client.post("/api/messages/999999/feedback", json={"rating": 1}).status_code == 404
    bad_rating = client.post(f"/api/messages/{answer_id}/feedback", json={"rating": 5})
    assert bad_rating.status_code == 422 and "rating" in bad_rating.json()["error"]["message"]
    empty = client.post(f"/api/messages/{answer_id}/feedback", json={})
    assert empty.status_code == 400 and "rating" in empty.json()["error"]["message"]
    unknown = client.post(f"/api/messages/{answer_id}/feedback", json={"rating": 1, "stars": 5})
    assert unknown.status_code == 422
    assert client.app.state.service.store.conversations.conversations_for_alignment()[0]["feedback"] == {}
