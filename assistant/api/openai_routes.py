"""OpenAI-compatible endpoints: `/v1/models` and `/v1/chat/completions` (streaming and not)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from assistant.api.errors import APIError, error_body
from assistant.api.schemas import ChatCompletionRequest
from assistant.api.streaming import SSE_HEADERS, sse, start_stream
from assistant.conversation import ConversationService, canned_answer, validate_text, with_citations
from assistant.engines.base import ChatMessage, Delta, EngineError, GenerationParams
from assistant.prompt import dont_know_answer, grounded_system, neutralised

router = APIRouter(prefix="/v1", tags=["openai"])


def _service(request: Request) -> ConversationService:
    return request.app.state.service


@router.get("/models")
async def list_models(request: Request) -> dict:
    created = int(request.app.state.started_at)
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": created, "owned_by": "assistant"}
                 for name in _service(request).engine.model_names()],
    }


def _prepare(service: ConversationService, body: ChatCompletionRequest) -> tuple[list[ChatMessage], GenerationParams]:
    available = service.engine.model_names()
    if body.model not in available:
        raise APIError(404, f"model '{body.model}' not found; available: {', '.join(available)}",
                       "not_found_error", "model")
    if not body.messages:
        raise APIError(400, "'messages' is empty: send at least one message", param="messages")
    messages = []
    for index, message in enumerate(body.messages):
        text = message.text()
        validate_text(text or " ", service.settings.max_message_chars, f"messages[{index}].content")
        role = "system" if message.role == "developer" else message.role
        messages.append(ChatMessage(role, text if role == "system" else neutralised(text)))
    if not messages[-1].content.strip():
        raise APIError(400, f"'messages[{len(messages) - 1}].content' is empty", param="messages")
    defaults = service.default_params()
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    params = GenerationParams(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or defaults.max_new_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=body.top_p or defaults.top_p,
        stop=stop,
        repetition_penalty=(body.model_extra or {}).get("repetition_penalty", defaults.repetition_penalty),
    )
    return messages, params


def _wants_grounding(service: ConversationService, body: ChatCompletionRequest) -> bool:
    """Grounded unless retrieval is off, the API is configured ungrounded, or the request says `grounding: false`."""
    requested = (body.model_extra or {}).get("grounding", True)
    return service.grounder is not None and service.settings.retrieval.ground_openai_api and requested is not False


def _with_sources(messages: list[ChatMessage], sources) -> list[ChatMessage]:
    """The grounding rules and sources join the caller's system message (or become one)."""
    if messages and messages[0].role == "system":
        return [ChatMessage("system", grounded_system(messages[0].content, sources)), *messages[1:]]
    return [ChatMessage("system", grounded_system("", sources)), *messages]


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatCompletionRequest):
    """OpenAI chat completions; grounded answers carry a `sources` list (first chunk when streaming)."""
    service = _service(request)
    messages, params = _prepare(service, body)
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    sources = None
    if _wants_grounding(service, body):
        question = next((m.content for m in reversed(messages) if m.role == "user"), messages[-1].content)
        grounding = await service.ground(question)
        sources = [s.as_dict() for s in grounding.sources]
        if grounding.relevant:
            stream = with_citations(service.engine.stream_chat(_with_sources(messages, grounding.sources), params),
                                    grounding.sources)
        else:
            stream = canned_answer(dont_know_answer(question, service.settings.company_name))
    else:
        stream = service.engine.stream_chat(messages, params)
    deltas = await start_stream(stream)
    if not body.stream:
        return await _complete(deltas, completion_id, created, body.model, sources)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunks = _chunks(deltas, completion_id, created, body.model, include_usage, sources)
    return StreamingResponse(chunks, media_type="text/event-stream", headers=SSE_HEADERS)


async def _complete(deltas: AsyncIterator[Delta], completion_id: str, created: int, model: str,
                    sources: list | None) -> dict:
    text, final = [], Delta(finish_reason="stop")
    async for delta in deltas:
        text.append(delta.text)
        if delta.finish_reason:
            final = delta
    prompt, completion = final.prompt_tokens or 0, final.completion_tokens or 0
    return {
        "id": completion_id, "object": "chat.completion", "created": created, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(text)},
                     "finish_reason": final.finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        **({"sources": sources} if sources is not None else {}),
    }


async def _chunks(deltas: AsyncIterator[Delta], completion_id: str, created: int, model: str,
                  include_usage: bool, sources: list | None) -> AsyncIterator[bytes]:
    """OpenAI chunk events; the constant part of each chunk is rendered once (this runs once per token)."""
    head = orjson.dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                         "model": model})[:-1]

    def chunk(delta: dict, finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        return b"data: " + head + b',"choices":[' + orjson.dumps(choice) + b"]}\n\n"

    first = chunk({"role": "assistant", "content": ""})
    if sources is not None:
        first = first[:-3] + b',"sources":' + orjson.dumps(sources) + b"}\n\n"
    yield first
    try:
        async for delta in deltas:
            if delta.text:
                yield chunk({"content": delta.text})
            if delta.finish_reason:
                yield chunk({}, delta.finish_reason)
                if include_usage:
                    prompt, completion = delta.prompt_tokens or 0, delta.completion_tokens or 0
                    usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
                    yield b"data: " + head + b',"choices":[],"usage":' + orjson.dumps(usage) + b"}\n\n"
    except EngineError as exc:
        yield sse(error_body(f"the answer broke off: {exc}", "engine_error")).encode()
    yield b"data: [DONE]\n\n"
