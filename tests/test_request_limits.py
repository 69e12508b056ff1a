"""Request limits on every route (API and Gradio pages): bodies counted as they arrive (chunked or not), no uploads to
the chat pages, capped uploads elsewhere; deep or huge JSON, huge ids and control characters give a 4xx, never a 500
and never a stored record."""

from __future__ import annotations

import pytest

LIMIT = {"auth.max_body_bytes": 2048}


def chunks(data: bytes, size: int = 1000):
    """A body httpx sends chunked (a generator has no length)."""
    return (data[i:i + size] for i in range(0, len(data), size))


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("encoding", ["Chunked", "CHUNKED", "chunked"])
def test_a_chunked_body_on_the_api_is_refused_whatever_the_header_case(make_client, encoding):
    client = make_client(**LIMIT)
    cid = client.post("/api/conversations", json={}).json()["id"]
    body = b'{"stream": false, "content": "' + b"x" * 3000 + b'"}'
    sent = client.post(f"/api/conversations/{cid}/messages", content=chunks(body),
                       headers={"Content-Type": "application/json", "Transfer-Encoding": encoding})
    # 411: the API asks for a Content-Length (were it to take chunked bodies, BodyLimit would count them: 413)
    assert sent.status_code in (411, 413) and sent.json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == []  # nothing stored


def test_a_body_longer_than_its_content_length_is_cut_at_the_limit(make_client):
    client = make_client(**LIMIT)
    cid = client.post("/api/conversations", json={}).json()["id"]
    body = b'{"stream": false, "content": "' + b"x" * 3000 + b'"}'
    lying = client.post(f"/api/conversations/{cid}/messages", content=chunks(body),
                        headers={"Content-Type": "application/json", "Content-Length": "40"})
    assert lying.status_code == 413 and "larger than 2048 bytes" in lying.json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == []


@pytest.mark.views("chat")
@pytest.mark.parametrize("encoding", ["Chunked", "CHUNKED"])
def test_pages_have_the_same_body_limit(make_client, encoding):
    client = make_client(**LIMIT)
    body = b'{"data": ["' + b"x" * 5000 + b'"], "fn_index": 0, "session_hash": "abc"}'
    for path in ("/chat/gradio_api/queue/join", "/chat/zh/gradio_api/queue/join"):
        chunked = client.post(path, content=chunks(body),
                              headers={"Content-Type": "application/json", "Transfer-Encoding": encoding})
        assert chunked.status_code == 413 and "larger than 2048 bytes" in chunked.json()["error"]["message"]
    declared = client.post("/chat/gradio_api/queue/join", content=body, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413


@pytest.mark.views("chat")
def test_the_chat_pages_take_no_uploads(make_client):
    client = make_client()
    for path in ("/chat/gradio_api/upload", "/chat/zh/gradio_api/upload", "/chat/gradio_api/upload/",
                 "/chat/gradio_api/process_recording"):
        refused = client.post(path, files={"files": ("a.txt", b"x" * 2_000)})
        assert refused.status_code == 403, path
        assert "no file uploads" in refused.json()["error"]["message"]
    assert client.get("/chat/").status_code == 200  # the page itself is served


@pytest.mark.views("operator")
def test_uploads_to_the_console_are_capped(make_client):
    client = make_client(**{**LIMIT, "auth.max_upload_bytes": 100_000})
    client.app.state.service.store.operators.create_operator("maria", "correct horse battery")
    client.post("/operator/login", data={"username": "maria", "password": "correct horse battery"})
    small = client.post("/operator/gradio_api/upload", files={"files": ("a.txt", b"x" * 50_000)})
    assert small.status_code == 200, small.text  # over the body limit, under the upload cap
    big = client.post("/operator/gradio_api/upload", files={"files": ("b.txt", b"x" * 200_000)})
    assert big.status_code == 413 and "larger than 100000 bytes" in big.json()["error"]["message"]


def test_conversation_metadata_is_bounded(make_client):
    client = make_client()
    ok = client.post("/api/conversations", json={"metadata": {"order": nested(3), "tags": ["a", "b"]}})
    assert ok.status_code == 201
    assert client.get(f"/api/conversations/{ok.json()['id']}").status_code == 200
    for metadata, words in [(nested(900), "nested deeper than 4"), ({"a": [[[["x"]]]]}, "nested deeper than 4"),
                            ({"notes": "x" * 9000}, "8192 bytes"), ({"k\x00": "v"}, "control characters")]:
        refused = client.post("/api/conversations", json={"metadata": metadata})
        assert refused.status_code == 422 and words in refused.json()["error"]["message"], refused.text


def test_a_deep_stored_value_is_not_a_server_error(make_client):
    """Metadata stored before it was bounded: reading it answers a clear 4xx, not a 500."""
    client = make_client()
    stored = client.app.state.service.store.conversations.create_conversation(metadata=nested(900))
    read = client.get(f"/api/conversations/{stored.id}")
    assert 400 <= read.status_code < 500 and "nested too deep" in read.json()["error"]["message"]


def test_deep_json_bodies_are_a_client_error(make_client):
    client = make_client()
    cid = client.post("/api/conversations", json={}).json()["id"]
    body = "[" * 100_000 + "]" * 100_000
    for path in ("/v1/chat/completions", "/api/conversations", f"/api/conversations/{cid}/messages"):
        answer = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400 and "nested too deep" in answer.json()["error"]["message"], path


def test_huge_ids_are_a_client_error(make_client):
    client = make_client()
    cid = client.post("/api/conversations", json={}).json()["id"]
    assert client.post("/api/messages/" + "9" * 31 + "/feedback", json={"rating": 1}).status_code == 422
    assert client.get(f"/api/conversations/{cid}/messages", params={"after": "1" + "0" * 40}).status_code == 422
    assert client.get(f"/api/conversations/{cid}/messages", params={"after": "0" * 40}).status_code == 200
    for path in (f"/api/conversations/{'a' * 5000}", f"/api/conversations/{cid}%00",
                 f"/api/conversations/{cid}%00/messages"):
        assert client.get(path).status_code in (404, 422), path
    assert client.post(f"/api/conversations/{cid}%00/messages", json={"content": "hi"}).status_code in (404, 422)


@pytest.mark.parametrize("field", ["customer_id", "channel"])
@pytest.mark.parametrize("value", ["a\x00b", "line\nbreak", "\x7f"])
def test_control_characters_in_ids_are_refused(make_client, field, value):
    client = make_client()
    refused = client.post("/api/conversations", json={field: value})
    assert refused.status_code == 422 and "control characters" in refused.json()["error"]["message"]
    assert refused.json()["error"]["param"] == field


def test_control_characters_in_a_client_message_id_are_refused(make_client):
    client = make_client()
    cid = client.post("/api/conversations", json={}).json()["id"]
    refused = client.post(f"/api/conversations/{cid}/messages",
                          json={"content": "hi", "stream": False, "client_message_id": "a\x00b"})
    assert refused.status_code == 422 and refused.json()["error"]["param"] == "client_message_id"
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == []


def test_a_nul_in_a_message_is_refused_before_it_is_stored(make_client):
    client = make_client()
    cid = client.post("/api/conversations", json={}).json()["id"]
    sent = client.post(f"/api/conversations/{cid}/messages", json={"content": "hi\x00there", "stream": False})
    assert sent.status_code == 400 and "NUL" in sent.json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == []


@pytest.mark.views("chat")
def test_the_chat_page_shares_the_address_rate_limit(make_client):
    """Finding 7: an address out of requests on the API gets no more answers from the chat page either."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from tests.gradio_calls import function_indexes, gradio_call
    from ui.chat_page import build_chat_page

    client = make_client(**{"auth.ip_requests_per_minute": 3})
    service = client.app.state.service
    respond = function_indexes(build_chat_page(service, "en"))["respond"]
    behind_proxy = {"X-Forwarded-For": "203.0.113.9"}  # loopback is a trusted proxy: the client it names counts
    with BackgroundServer(create_app(service, mount_views={"chat"})) as url:
        import httpx

        answered = gradio_call(f"{url}/chat", respond, ["How long do refunds take?", [], None, None, None],
                               headers=behind_proxy)
        assert answered[1]  # a conversation with its pass
        codes = [httpx.post(f"{url}/api/conversations", json={}, headers=behind_proxy).status_code
                 for _ in range(3)]
        assert codes[-1] == 429
        refused = gradio_call(f"{url}/chat", respond, ["And to PayPal?", [], answered[1], None, None],
                              headers=behind_proxy)
        assert "Too many messages" in str(refused)
        other = gradio_call(f"{url}/chat", respond, ["Hello", [], None, None, None],
                            headers={"X-Forwarded-For": "198.51.100.7"})
        assert other[1]  # another address is answered
    stored = service.store.conversations.messages(answered[1].split(".")[0])
    assert "And to PayPal?" not in [m.content for m in stored]


def test_stored_free_text_with_a_nul_is_refused_before_it_is_stored(make_client, database_url):
    """Feedback comments and corrections, handoff details: PostgreSQL refuses NUL (a 500 before), so they get 422."""
    client = make_client()
    cid = client.post("/api/conversations", json={}).json()["id"]
    answer = client.post(f"/api/conversations/{cid}/messages", json={"content": "hi", "stream": False}).json()
    for field in ("comment", "corrected_text", "author"):
        sent = client.post(f"/api/messages/{answer['answer_id']}/feedback", json={"rating": 1, field: "bad\x00x"})
        assert sent.status_code == 422 and field in sent.text and "NUL" in sent.text
    assert client.post(f"/api/conversations/{cid}/handoff", json={"detail": "x\x00y"}).status_code == 422
    assert client.get(f"/api/conversations/{cid}").json()["status"] == "bot"
