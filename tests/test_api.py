"""The HTTP API: the OpenAI endpoints on the tiny model with the real transformers engine (`real_engine`); the
conversation API and request errors on the fake engine (tests/fake_engine.py)."""

import asyncio
import json
import threading
import time

import httpx
import pytest

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.engines.base import Delta
from assistant.runtime import build_service
from tests.fake_engine import FakeEngine
from tests.sse import read_events

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL


def model_name(client) -> str:
    return client.get("/v1/models").json()["data"][0]["id"]


@pytest.mark.real_engine
def test_models_and_health(client):
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["object"] == "model"
    health = client.get("/healthz").json()
    assert health["engine"] == "transformers" and health["engine_healthy"] is True


@pytest.mark.real_engine
def test_chat_completion_non_streaming(client):
    body = {"model": model_name(client), "messages": [{"role": "user", "content": "Where is my order?"}],
            "max_tokens": 5}
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"]["role"] == "assistant"
    assert data["usage"]["completion_tokens"] <= 5 and data["usage"]["prompt_tokens"] > 0
    assert data["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.mark.real_engine
def test_chat_completion_streaming_with_usage(client):
    body = {"model": model_name(client), "messages": [{"role": "user", "content": "Refund please"}],
            "max_tokens": 6, "stream": True, "stream_options": {"include_usage": True}}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [data for _, data in read_events(response.iter_lines())]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    finishes = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(finishes) == 1
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] <= 6


@pytest.mark.real_engine
def test_openai_client_works_against_v1(client):
    openai = pytest.importorskip("openai")
    oai = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    assert [m.id for m in oai.models.list()] == [model_name(client)]
    reply = oai.chat.completions.create(model=model_name(client), max_tokens=4,
                                        messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.role == "assistant"
    pieces = list(oai.chat.completions.create(model=model_name(client), max_tokens=4, stream=True,
                                              messages=[{"role": "user", "content": "hi"}]))
    assert pieces and pieces[-1].choices[0].finish_reason in ("stop", "length")


WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                    "unit": {"type": "string", "enum": ["C", "F"]}},
                   "required": ["city", "unit"]}}}


@pytest.mark.real_engine
def test_openai_tools_come_back_as_valid_tool_calls_streamed_or_not(client):
    """Constrained decoding: even the tiny random model calls the tool with arguments that fit its schema."""
    openai = pytest.importorskip("openai")
    oai = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=client)
    ask = {"model": model_name(client), "messages": [{"role": "user", "content": "weather in Oslo in C?"}],
           "tools": [WEATHER_TOOL], "tool_choice": "required"}
    reply = oai.chat.completions.create(**ask)
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls" and reply.choices[0].message.content is None
    arguments = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and set(arguments) == {"city", "unit"} and arguments["unit"] in "CF"
    pieces = list(oai.chat.completions.create(**ask, stream=True))
    streamed = pieces[0].choices[0].delta.tool_calls[0]
    assert streamed.function.name == "get_weather" and json.loads(streamed.function.arguments) == arguments
    assert pieces[-1].choices[0].finish_reason == "tool_calls"
    # the result goes back; the model answers in words
    after = oai.chat.completions.create(model=model_name(client), max_tokens=4, tools=[WEATHER_TOOL], messages=[
        *ask["messages"], {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 3}'}])
    assert after.choices[0].message.tool_calls is None and after.choices[0].finish_reason in ("stop", "length")
    # "none" never calls; a named function is the one called
    none = oai.chat.completions.create(**(ask | {"tool_choice": "none", "max_tokens": 4}))
    assert none.choices[0].message.tool_calls is None
    named = oai.chat.completions.create(**(ask | {"tool_choice": {"type": "function",
                                                                  "function": {"name": "get_weather"}}}))
    assert named.choices[0].message.tool_calls[0].function.name == "get_weather"


@pytest.mark.parametrize(("tools", "choice", "phrase"), [
    ([{"type": "function", "function": {"parameters": {}}}], "auto", "tools[0]: expected"),
    ([WEATHER_TOOL], {"type": "function", "function": {"name": "launch"}}, "'launch', which is not among"),
])
def test_bad_tools_are_a_clear_400(client, tools, choice, phrase):
    response = client.post("/v1/chat/completions", json={"model": model_name(client), "tools": tools,
                                                         "tool_choice": choice,
                                                         "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 400 and phrase in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "phrase"),
    [
        ({"model": "gpt-17", "messages": [{"role": "user", "content": "hi"}]}, 404, "model 'gpt-17' not found"),
        ({"model": "MODEL", "messages": []}, 400, "'messages' is empty"),
        ({"model": "MODEL", "messages": [{"role": "user", "content": "  "}]}, 400, "is empty"),
        ({"model": "MODEL", "messages": [{"role": "user", "content": "x" * 5000}]}, 413, "limit is 4000"),
        ({"model": "MODEL", "messages": [{"role": "wizard", "content": "hi"}]}, 422, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "hi"}]}, 422, "'model'"),
    ],
)
def test_openai_bad_requests_are_clear_4xx(client, body, status, phrase):
    if body.get("model") == "MODEL":
        body["model"] = model_name(client)
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == status
    assert phrase in response.json()["error"]["message"]


def test_malformed_json_is_400(client):
    response = client.post("/v1/chat/completions", content=b'{"model": ', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["error"]["message"]


def test_conversation_streams_and_stores_both_messages(client):
    conversation = client.post("/api/conversations", json={"customer_id": "cust-7", "channel": "web"})
    assert conversation.status_code == 201
    cid = conversation.json()["id"]
    with client.stream("POST", f"/api/conversations/{cid}/messages", json={"content": "Can I return shoes?"}) as r:
        assert r.status_code == 200
        events = read_events(r.iter_lines())
    names = [name for name, _ in events]
    assert names[0] == "accepted" and names[-1] == "done"
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    history = client.get(f"/api/conversations/{cid}").json()
    assert history["customer_id"] == "cust-7"
    user, answer = history["messages"]
    assert (user["role"], user["content"], user["status"]) == ("user", "Can I return shoes?", "complete")
    assert (answer["role"], answer["status"], answer["content"]) == ("assistant", "complete", streamed)
    assert events[-1][1]["message_id"] == answer["id"]


def test_conversation_non_streaming_and_history_grows(client):
    cid = client.post("/api/conversations").json()["id"]
    first = client.post(f"/api/conversations/{cid}/messages", json={"content": "hello", "stream": False}).json()
    second = client.post(f"/api/conversations/{cid}/messages", json={"content": "again", "stream": False}).json()
    assert first["status"] == second["status"] == "complete"
    messages = client.get(f"/api/conversations/{cid}/messages").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[3]["content"] == second["answer"]


def test_conversation_bad_input_keeps_what_was_stored(client):
    cid = client.post("/api/conversations").json()["id"]
    client.post(f"/api/conversations/{cid}/messages", json={"content": "first", "stream": False})
    before = client.get(f"/api/conversations/{cid}/messages").json()["messages"]
    cases = [
        ({"content": ""}, 400, "'content' is empty"),
        ({"content": "y" * 4001}, 413, "4001 characters"),
        ({"text": "wrong field"}, 422, "content"),
    ]
    for body, status, phrase in cases:
        response = client.post(f"/api/conversations/{cid}/messages", json=body)
        assert response.status_code == status, body
        assert phrase in response.json()["error"]["message"]
    bad_json = client.post(f"/api/conversations/{cid}/messages", content=b"{nope",
                           headers={"content-type": "application/json"})
    assert bad_json.status_code == 400
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == before


def test_unknown_conversation_is_404(client):
    for response in (client.get("/api/conversations/unknown"),
                     client.post("/api/conversations/unknown/messages", json={"content": "hi"})):
        assert response.status_code == 404
        assert "no conversation with id 'unknown'" in response.json()["error"]["message"]


def test_message_size_limit_is_configurable(make_client):
    client = make_client(max_message_chars=10)
    cid = client.post("/api/conversations").json()["id"]
    response = client.post(f"/api/conversations/{cid}/messages", json={"content": "x" * 11})
    assert response.status_code == 413 and "limit is 10" in response.json()["error"]["message"]


@pytest.mark.views("chat")
def test_chat_page_is_served(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/chat/"
    page = client.get("/chat/")
    assert page.status_code == 200 and "Lumen Outfitters" in page.text


def test_a_message_sent_twice_with_its_client_id_is_stored_and_answered_once(client):
    cid = client.post("/api/conversations", json={}).json()["id"]
    body = {"content": "Where is my order?", "stream": False, "client_message_id": "web-7f3a"}
    first = client.post(f"/api/conversations/{cid}/messages", json=body).json()
    again = client.post(f"/api/conversations/{cid}/messages", json=body).json()  # a retry after a lost response
    assert first["duplicate"] is False and again["duplicate"] is True
    assert (again["message_id"], again["answer_id"], again["answer"]) == (
        first["message_id"], first["answer_id"], first["answer"])
    streamed = client.post(f"/api/conversations/{cid}/messages", json={**body, "stream": True})
    assert '"duplicate": true' in streamed.text and "event: done" in streamed.text
    messages = client.get(f"/api/conversations/{cid}/messages").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    other = client.post(f"/api/conversations/{cid}/messages", json={**body, "client_message_id": "web-7f3b"}).json()
    assert other["duplicate"] is False and other["message_id"] != first["message_id"]  # a new id is a new message


class EndlessEngine(FakeEngine):
    """Writes a word every 20 ms for a minute, unless its stream is closed; `closed` is set when it is."""

    closed: threading.Event

    async def stream_chat(self, messages, params):
        self.closed, self.words = threading.Event(), 0
        try:
            for _ in range(3000):
                self.words += 1
                yield Delta(text=" word")
                await asyncio.sleep(0.02)
            yield Delta(finish_reason="length", prompt_tokens=10, completion_tokens=self.words)
        finally:
            self.closed.set()


@pytest.mark.parametrize("route", ["conversation", "openai"])
def test_a_client_that_leaves_mid_answer_stops_the_model_at_once(make_settings, route):
    """Over a real server: the connection drops after the first words, and the model stops writing within a
    second (its capacity goes to the next customer); a conversation keeps what was shown, marked partial."""
    service = build_service(make_settings(), make_engine=EndlessEngine.build)
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        if route == "conversation":
            conversation = httpx.post(f"{url}/api/conversations", json={}).json()["id"]
            request = {"url": f"{url}/api/conversations/{conversation}/messages", "json": {"content": "Hello?"}}
        else:
            model = service.engine.model_names()[0]
            request = {"url": f"{url}/v1/chat/completions",
                       "json": {"model": model, "stream": True, "messages": [{"role": "user", "content": "Hello?"}]}}
        with httpx.stream("POST", timeout=10, **request) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            assert any("wor" in line for line in lines)  # the first words arrived; the client goes
        engine = service.engine.current
        assert engine.closed.wait(timeout=2), "the model went on writing for a customer who left"
        assert engine.words < 100
        if route == "conversation":
            deadline = time.monotonic() + 2
            while (answer := service.store.conversations.messages(conversation)[1]).status == "streaming":
                assert time.monotonic() < deadline, "the answer was not stored after the customer left"
                time.sleep(0.05)
            assert answer.status == "partial" and answer.content and (" word" * 100).startswith(answer.content)
