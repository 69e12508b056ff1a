"""`--llm-url`: our API in front of any OpenAI-compatible server (here: another assistant on the tiny model)."""

import asyncio
import json

import httpx

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.runtime import build_service


def test_api_over_an_external_openai_compatible_server(make_settings, tmp_path):
    upstream = build_service(make_settings(home=str(tmp_path / "upstream")))
    with BackgroundServer(create_app(upstream, mount_views=False)) as upstream_url:
        front = build_service(make_settings(llm_url=f"{upstream_url}/v1", home=str(tmp_path / "front")))
        with BackgroundServer(create_app(front, mount_views=False)) as url:
            models = httpx.get(f"{url}/v1/models").json()["data"]
            assert [m["id"] for m in models] == upstream.engine.model_names()
            assert httpx.get(f"{url}/healthz").json()["engine"] == "openai-http"
            cid = httpx.post(f"{url}/api/conversations").json()["id"]
            reply = httpx.post(f"{url}/api/conversations/{cid}/messages",
                               json={"content": "Is my order shipped?", "stream": False}, timeout=120).json()
            assert reply["status"] == "complete"
            stored = front.store.conversations.messages(cid)
            assert stored[1].content == reply["answer"] and stored[1].status == "complete"


def test_external_server_gone_is_a_503_and_the_question_is_kept(make_settings, tmp_path):
    upstream = BackgroundServer(create_app(build_service(make_settings(home=str(tmp_path / "up"))),
                                           mount_views=False))
    upstream_url = upstream.__enter__()
    front = build_service(make_settings(llm_url=f"{upstream_url}/v1", home=str(tmp_path / "front")))
    with BackgroundServer(create_app(front, mount_views=False)) as url:
        model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
        upstream.__exit__(None, None, None)  # the external server goes away
        response = httpx.post(f"{url}/v1/chat/completions", json={
            "model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert response.status_code == 503 and "lost the LLM server" in response.json()["error"]["message"]
        cid = httpx.post(f"{url}/api/conversations").json()["id"]
        reply = httpx.post(f"{url}/api/conversations/{cid}/messages",
                           json={"content": "hello?", "stream": False}).json()
        assert reply["status"] == "error" and "lost the LLM server" in reply["error"]
        messages = httpx.get(f"{url}/api/conversations/{cid}/messages").json()["messages"]
        assert [(m["role"], m["status"]) for m in messages] == [("user", "complete"), ("assistant", "error")]
        assert messages[0]["content"] == "hello?"


def test_unreachable_external_server_at_start_is_a_clear_error(make_settings):
    import asyncio

    import pytest

    from assistant.engines.base import EngineUnavailableError
    from assistant.ports import free_port

    service = build_service(make_settings(llm_url=f"http://127.0.0.1:{free_port()}/v1"))
    with pytest.raises(EngineUnavailableError, match=r"no model list from http://127\.0\.0\.1"):
        asyncio.run(service.engine.start())


def test_answers_in_a_row_reuse_one_connection_to_the_llm_server(make_settings, tmp_path):
    """Each answer's stream is read to its end, even when the server's last lines come after the usage, so the next
    answer goes over the same connection: a new one per answer cost both servers more CPU than the answer's first
    token (README "Our API in front of vLLM")."""
    callers = []

    async def llm_server(scope, receive, send):  # OpenAI-compatible, slow to close its streams (as vLLM can be)
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/models"):
            body = json.dumps({"data": [{"id": "slow-closer", "max_model_len": 2048}]}).encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
            return
        callers.append(tuple(scope["client"]))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for chunk in ({"choices": [{"delta": {"content": "Yes, "}}]},
                      {"choices": [{"delta": {"content": "it is."}, "finish_reason": "stop"}]},
                      {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 4}}):
            await send({"type": "http.response.body", "body": f"data: {json.dumps(chunk)}\n\n".encode(),
                        "more_body": True})
        await asyncio.sleep(0.2)
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    with BackgroundServer(llm_server) as upstream_url:
        front = build_service(make_settings(llm_url=f"{upstream_url}/v1", home=str(tmp_path / "front")))
        with BackgroundServer(create_app(front, mount_views=False)) as url:
            for question in ("Is my order shipped?", "Can I pay by card?", "Do you ship abroad?"):
                reply = httpx.post(f"{url}/v1/chat/completions", timeout=120, json={
                    "model": "slow-closer", "messages": [{"role": "user", "content": question}], "grounding": False})
                assert reply.status_code == 200, reply.text
                assert reply.json()["choices"][0]["message"]["content"] == "Yes, it is."
                assert reply.json()["usage"]["completion_tokens"] == 4
    assert len(callers) == 3 and len(set(callers)) == 1  # one client port: one connection
