"""Property-based fuzzing (hypothesis): every endpoint and every file loader, fed arbitrary and almost-valid input,
answers with a clear 4xx or a documented error, never a 500, a crash or a hang."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=12)


def objects(fields: list[str]) -> st.SearchStrategy[dict]:
    """Almost-valid JSON objects: the expected field names (and some others) with values of any type."""
    return st.dictionaries(st.sampled_from(fields) | text, json_values, max_size=len(fields) + 1)


@pytest.fixture
def fuzzed(make_client):
    # limits far above what the fuzzer sends: every input reaches its handler (a 429 would hide it)
    client = make_client(**{"auth.ip_requests_per_minute": 10**6, "auth.key_requests_per_minute": 10**6,
                            "auth.login_attempts_per_minute": 10**6,
                            "console.sign_in_attempts_before_pause": 10**6})
    store = client.app.state.service.store
    conversation = client.post("/api/conversations", json={}).json()["id"]
    answer = client.post(f"/api/conversations/{conversation}/messages",
                         json={"content": "hello", "stream": False}).json()["answer_id"]
    store.operators.create_operator("maria", "correct horse battery")
    return client, conversation, answer


def assert_clear(response) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code != 429, response.request.url  # rate limits never hide an input from its handler
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        assert body.get("error", {}).get("message") or body.get("detail"), body


ENDPOINTS = [
    ("POST", "/api/conversations", ["customer_id", "channel", "metadata"]),
    ("POST", "/api/conversations/{c}/messages", ["content", "stream", "client_message_id"]),
    ("POST", "/api/conversations/{c}/handoff", ["reason", "detail"]),
    ("POST", "/api/conversations/{c}/close", ["csat"]),
    ("POST", "/api/messages/{a}/feedback", ["rating", "comment", "corrected_text", "author"]),
    ("POST", "/v1/chat/completions", ["model", "messages", "stream", "max_tokens", "temperature", "top_p",
                                      "grounding", "stop", "n", "stream_options"]),
]


@pytest.mark.parametrize(("method", "path", "fields"), ENDPOINTS, ids=[e[1] for e in ENDPOINTS])
def test_json_endpoints_never_fail_on_any_body(fuzzed, method, path, fields):
    client, conversation, answer = fuzzed

    @FUZZ
    @given(body=objects(fields) | json_values)
    def check(body):
        url = path.format(c=conversation, a=answer)
        response = client.request(method, url, content=json.dumps(body), headers={"content-type": "application/json"})
        assert_clear(response)

    check()


@pytest.mark.views("operator")  # /operator/login
def test_paths_queries_and_raw_bodies_never_fail(fuzzed):
    client, _, _ = fuzzed
    ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.%~", min_size=1, max_size=40)

    @FUZZ
    @given(conversation=ids, after=text, window=text, raw=st.binary(max_size=200), number=st.integers())
    def check(conversation, after, window, raw, number):
        for response in (
            client.get(f"/api/conversations/{conversation}"),
            client.get(f"/api/conversations/{conversation}/messages", params={"after": after}),
            client.post(f"/api/conversations/{conversation}/messages", content=raw,
                        headers={"content-type": "application/json"}),
            client.post(f"/api/messages/{number}/feedback", json={"rating": 1}),
            client.get("/api/sentiment/trends", params={"window": window}),
            client.get("/api/sentiment/alerts", params={"scope": window}),
            client.get(f"/api/sentiment/conversations/{conversation}"),
            client.get("/api/widget/config", params={"key": after}, headers={"origin": "https://x.example"}),
            client.get(f"/sources/{conversation}"),
            client.post("/operator/login", data={"username": after, "password": window, "next": after}),
        ):
            assert_clear(response)

    check()


LOADERS = {
    "transcripts": (".jsonl", ["id", "messages", "metadata"]),
    "preferences": (".jsonl", ["prompt", "chosen", "rejected"]),
    "sentiment": (".jsonl", ["text", "label"]),
    "feed": (".jsonl", ["text", "timestamp", "source", "entity", "topic"]),
    "faq": (".jsonl", ["question", "answer", "url"]),
}


def load(kind: str, path: Path):
    """Run a loader; its documented errors are fine (they say file:line and why), anything else is a bug."""
    from alignment.transcripts import InvalidLine, parse_preference, parse_transcript, read_file
    from assistant.sentiment.data import SentimentDataError, read_labelled
    from assistant.sentiment.feeds import FeedError, read_feed
    from retrieval.loaders import SkippedFile, load_file

    try:
        if kind == "transcripts":
            return read_file(path, parse_transcript)
        if kind == "preferences":
            return read_file(path, parse_preference)
        if kind == "sentiment":
            return read_labelled(path)
        if kind == "feed":
            return read_feed(path)
        return load_file(path, path.name)
    except (InvalidLine, SentimentDataError, FeedError, SkippedFile) as exc:
        assert str(exc).strip()
        return None


@pytest.mark.parametrize("kind", list(LOADERS))
def test_file_loaders_report_bad_input_clearly(tmp_path, kind):
    suffix, fields = LOADERS[kind]
    path = tmp_path / f"input{suffix}"
    row = objects(fields).map(lambda o: json.dumps(o, ensure_ascii=False))
    lines = st.lists(row | text | st.just("") | st.just("{"), max_size=6).map("\n".join)

    @FUZZ
    @given(content=lines.map(str.encode) | st.binary(max_size=300))
    def check(content):
        path.write_bytes(content)
        load(kind, path)

    check()


@pytest.mark.parametrize("suffix", [".csv", ".md", ".html", ".txt"])
def test_document_and_feed_loaders_take_any_text(tmp_path, suffix):
    path = tmp_path / f"input{suffix}"

    @FUZZ
    @given(content=st.binary(max_size=300) | text.map(str.encode))
    def check(content):
        path.write_bytes(content)
        load("documents", path)
        if suffix == ".csv":
            load("feed", path)

    check()


@pytest.mark.views("chat")
def test_chat_page_events_take_any_browser_pass(fuzzed):
    """The chat page's events (reached over `queue/join` as a browser or an attacker calls them) with any value as
    the browser's pass: each ends cleanly, and nothing but the caller's own new conversation is touched."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from tests.gradio_calls import function_indexes, gradio_call
    from ui.chat_page import build_chat_page

    client, conversation, _ = fuzzed
    service = client.app.state.service
    functions = function_indexes(build_chat_page(service, "en"))
    before = [m.content for m in service.store.conversations.messages(conversation)]
    passes = text | st.just(conversation) | st.builds(lambda t: f"{conversation}.{t}", text) | st.none()
    with BackgroundServer(create_app(service, mount_views={"chat"})) as url:

        @settings(FUZZ, max_examples=6)
        @given(chat_pass=passes)
        def check(chat_pass):
            assert gradio_call(f"{url}/chat", functions["restore"], [chat_pass])[0] == []
            gradio_call(f"{url}/chat", functions["end_chat"], [chat_pass])
            gradio_call(f"{url}/chat", functions["poll"], [chat_pass, 0])
            gradio_call(f"{url}/chat", functions["ask_for_human"], [chat_pass])

        check()
    assert [m.content for m in service.store.conversations.messages(conversation)] == before
    assert service.store.conversations.get_conversation(conversation).status == "bot"
