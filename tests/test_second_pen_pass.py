"""What a second penetration pass found after the first fixes (each test fails without its fix): a conversation's
channel shown as markdown in the console, calls for a human not rate limited, page addresses and redirects taken
from `X-Forwarded-Host`, lone surrogates and odd types as 500s, CORS for look-alike origins, cacheable transcripts."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.gradio_calls import function_indexes, gradio_call
from ui.text import literal

PASSWORD = "correct horse battery"


@pytest.fixture
def served(make_client):
    """A live server with the chat page and the console, an operator, and a tight address limit."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer

    client = make_client(**{"auth.ip_requests_per_minute": 3})
    service = client.app.state.service
    service.store.operators.create_operator("maria", PASSWORD)
    with BackgroundServer(create_app(service, mount_views={"chat", "operator"})) as url:
        yield url, service


def signed_in(url: str) -> dict:
    reply = httpx.post(f"{url}/operator/login", data={"username": "maria", "password": PASSWORD})
    return {"assistant_operator": reply.history[0].cookies["assistant_operator"] if reply.history
            else reply.cookies["assistant_operator"]}


def test_the_console_shows_a_conversations_channel_as_text(served):
    from ui.operator_console import build_operator_console

    url, service = served
    channel = "![](http://evil.example/ch.png)"
    conversation = httpx.post(f"{url}/api/conversations", json={"channel": channel}).json()["id"]
    show = function_indexes(build_operator_console(service))["show"]
    *_, heading = gradio_call(f"{url}/operator", show, [conversation], cookies=signed_in(url))
    heading = heading["value"] if isinstance(heading, dict) else heading
    assert conversation in heading and literal(channel) in heading  # shown as it was sent, not as an image


def test_calls_for_a_human_count_against_the_address_limit(served):
    from ui.chat_page import build_chat_page

    url, service = served
    ask_for_human = function_indexes(build_chat_page(service, "en"))["ask_for_human"]
    proxy = {"X-Forwarded-For": "203.0.113.9"}
    for _ in range(3):
        httpx.get(f"{url}/api/conversations/0", headers=proxy)
    before = len(service.store.handoffs.conversation_overview("waiting_human"))
    refused = gradio_call(f"{url}/chat", ask_for_human, [None], headers=proxy)
    assert "Too many messages" in json.dumps(refused)
    assert len(service.store.handoffs.conversation_overview("waiting_human")) == before  # the queue is not flooded


def test_pages_and_redirects_ignore_x_forwarded_host(served):
    url, _ = served
    evil = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    page = httpx.get(f"{url}/chat/", headers=evil)
    assert page.status_code == 200 and "evil.example" not in page.text
    assert page.headers["cache-control"] == "no-store"
    for path in ("/chat/logout", "/operator/logout", "/operator/"):
        moved = httpx.get(f"{url}{path}", headers=evil, follow_redirects=False)
        assert "evil.example" not in moved.headers.get("location", "") and "evil.example" not in moved.text


def test_lone_surrogates_and_odd_types_are_client_errors(served):
    from ui.chat_page import build_chat_page

    url, service = served
    conversation = httpx.post(f"{url}/api/conversations", json={}).json()["id"]
    body = '{"content": "\\ud800 hi", "stream": false}'
    sent = httpx.post(f"{url}/api/conversations/{conversation}/messages", content=body,
                      headers={"content-type": "application/json"})
    assert sent.status_code == 400 and "surrogate" in sent.json()["error"]["message"]
    model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
    v1 = httpx.post(f"{url}/v1/chat/completions", headers={"content-type": "application/json"},
                    content=json.dumps({"model": model, "messages": [{"role": "user", "content": "\ud800"}]}))
    assert v1.status_code == 400
    functions = function_indexes(build_chat_page(service, "en"))
    gradio_call(f"{url}/chat", functions["respond"], [{"a": 1}, [], {"a": 1}, None, None])  # completes: no error
    gradio_call(f"{url}/chat", functions["restore"], [{"a": 1}])


def test_no_cross_site_reading_and_no_caching_of_transcripts(served):
    url, _ = served
    cookies = signed_in(url)
    for origin in ("http://127.0.0.1.evil.example", "http://localhost:3000"):
        config = httpx.get(f"{url}/operator/config", cookies=cookies, headers={"Origin": origin})
        assert "access-control-allow-origin" not in config.headers
    assert httpx.get(f"{url}/operator/", cookies=cookies).headers["cache-control"] == "no-store"
    conversation = httpx.post(f"{url}/api/conversations", json={}).json()["id"]
    assert httpx.get(f"{url}/api/conversations/{conversation}").headers["cache-control"] == "no-store"
