"""The operator console: login required, the conversation list and transcript shown as operators need them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from assistant.cli import main
from ui.operator_auth import csrf_token


@pytest.mark.views("operator")
def test_console_needs_an_operator_login(client):
    store = client.app.state.service.store
    store.operators.create_operator("maria", "correct horse battery")
    page = client.get("/operator/", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/operator/login?next=%2Foperator%2F"
    assert client.get("/operator/config").status_code == 401
    bad = client.post("/operator/login", data={"username": "maria", "password": "nope"})
    assert bad.status_code == 401 and "Wrong username or password" in bad.text and 'value="maria"' in bad.text
    good = client.post("/operator/login", data={"username": "maria", "password": "correct horse battery"},
                       follow_redirects=False)
    assert good.status_code == 303 and good.headers["location"] == "/operator/"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/;" in cookie
    token = client.cookies.get("assistant_operator")
    with store.session() as session:  # only a digest is stored
        from sqlalchemy import select

        from assistant.store.schema import OperatorSession

        assert token not in {s.digest for s in session.scalars(select(OperatorSession))}
    assert client.get("/operator/config").status_code == 200
    assert client.get("/operator/", follow_redirects=False).status_code == 200

    store.operators.end_operator_sessions(username="maria")  # e.g. idle too long: the console says the session ended
    assert client.get("/operator/config").status_code == 401
    assert client.get("/operator/", follow_redirects=False).headers["location"] == (
        "/operator/login?next=%2Foperator%2F&ended=1")
    assert "Your session has ended" in client.get("/operator/login?ended=1").text
    client.post("/operator/login", data={"username": "maria", "password": "correct horse battery"})
    assert client.get("/operator/config").status_code == 200
    signed_out = client.post("/operator/logout", data={"csrf": csrf_token(client.cookies.get("assistant_operator"))},
                             follow_redirects=False)
    assert signed_out.headers["location"] == "/operator/login"
    assert client.get("/operator/config").status_code == 401


def test_operator_sessions_end_when_idle_or_too_old(client):
    from datetime import timedelta as td

    from assistant.store.records import OperatorSessionState

    ended = OperatorSessionState(operator=None, expired=True)
    store = client.app.state.service.store
    store.operators.create_operator("maria", "correct horse battery")
    token = store.operators.open_operator_session("maria")
    hour, day = td(hours=1), td(days=1)
    assert store.operators.operator_session(token, hour, day).operator.username == "maria"
    assert store.operators.operator_session("not-a-token", hour, day) is None
    assert store.operators.operator_session(token, td(0), day) == ended  # idle too long
    assert store.operators.operator_session(token, hour, day) == ended  # and it stays ended
    second = store.operators.open_operator_session("maria")
    assert store.operators.operator_session(second, hour, td(0)) == ended  # past its absolute limit
    third, fourth = store.operators.open_operator_session("maria"), store.operators.open_operator_session("maria")
    assert store.operators.end_operator_sessions(username="maria") == 2  # sign out everywhere
    sessions = store.operators
    assert sessions.operator_session(third, hour, day) == sessions.operator_session(fourth, hour, day) == ended


def test_conversation_list_puts_the_longest_wait_first():
    from assistant.store.records import ConversationSummary
    from ui.operator_console import overview_frame

    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def row(id_, status, waiting_min=None, updated_min=0, alerts=0):
        return ConversationSummary(
            id=id_, status=status, customer_id=None, channel="web",
            updated_at=now - timedelta(minutes=updated_min), last_role="user", last_message="hi",
            sentiment="negative" if alerts else None, sentiment_score=-0.7 if alerts else None,
            handoff_reason=None, agent=None, alerts=alerts, csat=None,
            waiting_since=now - timedelta(minutes=waiting_min) if waiting_min is not None else None)

    rows = [row("a", "bot", updated_min=1), row("b", "waiting_human", waiting_min=3),
            row("c", "waiting_human", waiting_min=12, alerts=2), row("d", "closed", updated_min=30)]
    table = overview_frame(rows, now)
    assert list(table["id"]) == ["c", "b", "a", "d"]
    assert list(table["waiting"][:2]) == ["12 min", "3 min"] and table["sentiment"][0] == "negative (-0.70)"
    assert list(overview_frame(rows, now, alerts_only=True)["id"]) == ["c"]


def test_transcript_shows_agents_and_feedback(client):
    from ui.operator_console import answer_choices, transcript_messages
    from ui.text import literal

    store = client.app.state.service.store
    conversation = store.conversations.create_conversation().id
    store.conversations.add_message(conversation, "user", "Where is my parcel?")
    answer = store.conversations.add_message(conversation, "assistant", "It is on the moon.")
    store.conversations.add_feedback(answer, rating=-1, comment="wrong")
    store.conversations.add_feedback(answer, corrected_text="It arrives tomorrow.", author="maria")
    store.handoffs.take_over(conversation, "maria")
    store.handoffs.add_agent_message(conversation, "maria", "Sorry about that!")
    shown = transcript_messages(store.conversations.transcript(conversation))
    assert [m["role"] for m in shown] == ["user", "assistant", "assistant"]
    assert "👎" in shown[1]["content"] and "“wrong”" in shown[1]["content"]
    assert f"corrected to: {literal('It arrives tomorrow.')}" in shown[1]["content"]  # shown as typed
    assert shown[2]["content"].startswith("**maria** (agent)")
    assert answer_choices(store.conversations.transcript(conversation)) == [(f"#{answer}: It is on the moon.", answer)]
    [pair_source] = [c for c in store.conversations.conversations_for_alignment() if c["id"] == conversation]
    assert pair_source["feedback"][answer]["corrected_text"] == "It arrives tomorrow."


def test_transcript_shows_what_the_support_check_cut_and_why(client):
    from ui.operator_console import transcript_messages
    from ui.text import literal

    store = client.app.state.service.store
    conversation = store.conversations.create_conversation().id
    store.conversations.add_message(conversation, "user", "How long do refunds take?")
    answer = store.conversations.add_message(conversation, "assistant", "", "streaming")
    check = {"cut": [{"text": "Card refunds take 9 minutes. ", "reason": "states 9, which no source does",
                      "overlap": 0.5, "source": 1}], "fell_back": False}
    store.conversations.finish_message(answer, "We refund within 5 business days [1].", "complete",
                                       metadata={"style": "generative", "check": check})
    [_, shown] = transcript_messages(store.conversations.transcript(conversation))
    assert "We refund within 5 business days" in shown["content"]
    why = literal("states 9, which no source does")
    cut = f"✂ cut before sending: “{literal('Card refunds take 9 minutes.')}” ({why})"
    assert cut in shown["content"]


def test_operators_cli(tmp_path, capsys, monkeypatch):
    import io

    home = ["--home", str(tmp_path / "home")]
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert main(["operators", "create", "li", "--display-name", "Li Wei", "--password-stdin", *home]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["operators", "create", "kim", "--password-stdin", *home]) == 2
    assert "at least 8" in capsys.readouterr().err
    assert main(["operators", "list", *home]) == 0
    assert "li\tLi Wei" in capsys.readouterr().out
