"""A real OpenAI-compatible server whose 'model' obeys: asked to repeat, it recites its system message; otherwise
it echoes the last message. It records every prompt it was sent (`app.state.seen`), so tests can check exactly
what reached the model and that only our own defences stand between an injection and the client."""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse


def streamed(text: str, piece: int, delay_s: float = 0.0) -> StreamingResponse:
    """`text` as an OpenAI chat-completion stream, `piece` characters a chunk (`delay_s` apart, as a model writes),
    then the finish with usage."""
    async def chunks():
        for i in range(0, len(text), piece):
            if delay_s:
                await asyncio.sleep(delay_s)
            yield "data: " + json.dumps({"choices": [{"delta": {"content": text[i:i + piece]}}]}) + "\n\n"
        yield "data: " + json.dumps({"choices": [{"delta": {}, "finish_reason": "stop"}],
                                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}}) + "\n\n"

    return StreamingResponse(chunks(), media_type="text/event-stream")


def obedient_model(max_model_len: int = 4096) -> FastAPI:
    """A 'model' that obeys injections: asked to repeat, it recites the system message; else it echoes. Like vLLM,
    it lists its context length and answers 400 to a prompt that does not leave room for `max_tokens` (its count:
    a token per 4 UTF-8 bytes, looser than the estimate our engine fits prompts with)."""
    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"data": [{"id": "obedient", "object": "model", "max_model_len": max_model_len}]}

    @app.post("/v1/chat/completions")
    async def complete(body: dict):
        prompt_tokens = sum(len(m["content"].encode()) for m in body["messages"]) // 4
        if prompt_tokens + body.get("max_tokens", 16) > max_model_len:
            return JSONResponse({"error": {"message": f"This model's maximum context length is {max_model_len} "
                                                      f"tokens. However, your prompt contains {prompt_tokens}"}}, 400)
        system = next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
        asked = body["messages"][-1]["content"]
        text = system if ("repeat" in asked.lower() or "重复" in asked) else f"You said: {asked}"
        app.state.seen.append(body["messages"])

        return streamed(text, 9)

    app.state.seen = []
    return app


def scripted_model(reply: str = "", delay_s: float = 0.0) -> FastAPI:
    """A real OpenAI-compatible server that answers every prompt with `app.state.reply` (set it per test), streamed
    in small pieces `delay_s` apart, and records the prompts (`app.state.seen`): a model whose every word the test
    chooses."""
    app = FastAPI()

    @app.get("/v1/models")
    async def models():
        return {"data": [{"id": "scripted", "object": "model", "max_model_len": 4096}]}

    @app.post("/v1/chat/completions")
    async def complete(body: dict):
        app.state.seen.append(body["messages"])
        return streamed(app.state.reply, 7, delay_s)

    app.state.seen = []
    app.state.reply = reply
    return app
