"""OpenAI-compatible endpoints: `/v1/models` and `/v1/chat/completions` (streaming and not)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request

from assistant.actions.decision import ActionSchemaError, Tool, decide, plain_turn, tools_from_openai
from assistant.api.errors import APIError, error_body
from assistant.api.schemas import (
    AssistantMessage,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    Choice,
    ChunkChoice,
    ChunkDelta,
    FunctionCall,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from assistant.api.streaming import EventStream, resumed, sse
from assistant.chat_serving import ChatEvent, ChatServing, validate_text
from assistant.conversation import ConversationService
from assistant.engines.base import ChatMessage, GenerationParams
from assistant.prompt import neutralised

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


def _turns_and_params(serving: ChatServing, body: ChatCompletionRequest) -> tuple[list[ChatMessage],
                                                                                    GenerationParams]:
    """The caller's messages as chat turns (control tokens removed from all but its system messages) and the
    generation settings (the deployment's defaults where the request names none)."""
    available = serving.engine.model_names()
    if body.model not in available:
        raise APIError(404, f"model '{body.model}' not found; available: {', '.join(available)}",
                       "not_found_error", "model")
    if not body.messages:
        raise APIError(400, "'messages' is empty: send at least one message", param="messages")
    turns = []
    for index, message in enumerate(body.messages):
        text = message.text()
        role = "system" if message.role == "developer" else message.role
        if message.tool_calls or role == "tool":  # what the model called and what came back, as plain turns
            role, text = plain_turn(role, text, [c.model_dump() for c in message.tool_calls or []])
        validate_text(text or " ", serving.settings.max_message_chars, f"messages[{index}].content")
        turns.append(ChatMessage(role, text if role == "system" else neutralised(text)))
    if not turns[-1].content.strip():
        raise APIError(400, f"'messages[{len(turns) - 1}].content' is empty", param="messages")
    defaults = serving.default_params()
    stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
    params = GenerationParams(
        max_new_tokens=body.max_completion_tokens or body.max_tokens or defaults.max_new_tokens,
        temperature=defaults.temperature if body.temperature is None else body.temperature,
        top_p=body.top_p or defaults.top_p,
        stop=stop,
        repetition_penalty=(body.model_extra or {}).get("repetition_penalty", defaults.repetition_penalty),
    )
    return turns, params


def _wants_grounding(serving: ChatServing, body: ChatCompletionRequest) -> bool:
    """Grounded unless retrieval is off, the API is configured ungrounded, or the request says `grounding: false`."""
    requested = (body.model_extra or {}).get("grounding", True)
    return serving.grounder is not None and serving.settings.retrieval.ground_openai_api and requested is not False


async def _opened(events: AsyncIterator[ChatEvent]) -> AsyncIterator[ChatEvent]:
    """The events, once the answer has begun: an engine that fails before any text is an HTTP error (503/502)."""
    head = []
    async for event in events:
        if event.type == "error" and event.exception is not None:
            await events.aclose()
            raise event.exception
        head.append(event)
        if event.type != "sources":
            break
    return resumed(head, events)


def _offered_tools(body: ChatCompletionRequest) -> tuple[list[Tool], bool]:
    """The tools the model may call now (none when `tool_choice` is "none") and whether it must call one."""
    if not body.tools or body.tool_choice == "none":
        return [], False
    try:
        tools = tools_from_openai(body.tools)
    except ActionSchemaError as exc:
        raise APIError(400, str(exc), param="tools") from None
    choice = body.tool_choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        tools = [t for t in tools if t.name == name]
        if not tools:
            raise APIError(400, f"tool_choice names {name!r}, which is not among the tools", param="tool_choice")
        return tools, True
    return tools, choice == "required"


async def _tool_call(serving: ChatServing, body: ChatCompletionRequest, turns: list[ChatMessage],
                     params: GenerationParams) -> ToolCall | None:
    tools, required = _offered_tools(body)
    if not tools or turns[-1].role != "user":  # after a tool result, the model answers in words
        return None
    call = await decide(serving.engine, tools, turns, params, not required)  # the caller's system turns are not read
    if call is None:
        return None
    arguments = json.dumps(call.arguments, ensure_ascii=False)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", function=FunctionCall(name=call.name, arguments=arguments))


def _tool_call_response(call: ToolCall, body: ChatCompletionRequest, completion_id: str, created: int):
    if not body.stream:
        return ChatCompletionResponse(
            id=completion_id, created=created, model=body.model, usage=Usage.of(None, None),
            choices=[Choice(message=AssistantMessage(content=None, tool_calls=[call]), finish_reason="tool_calls")])

    async def chunks() -> AsyncIterator[bytes]:
        for delta, finish in ((ChunkDelta(role="assistant", tool_calls=[ToolCallDelta(**call.model_dump())]), None),
                              (ChunkDelta(), "tool_calls")):
            piece = ChatCompletionChunk(id=completion_id, created=created, model=body.model,
                                        choices=[ChunkChoice(delta=delta, finish_reason=finish)])
            yield b"data: " + piece.model_dump_json().encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return EventStream(chunks())


@router.post("/chat/completions")
async def chat_completions(request: Request, body: ChatCompletionRequest):
    """OpenAI chat completions through the serving layer (grounding, context fitting, leak guard, citations);
    grounded answers carry a `sources` list (the first chunk's when streaming). With `tools`, the model first
    decides whether to call one, constrained to their schemas; a call comes back as `tool_calls`."""
    serving = _service(request).serving
    turns, params = _turns_and_params(serving, body)
    call = await _tool_call(serving, body, turns, params)
    if call is not None:
        return _tool_call_response(call, body, f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time()))
    # the caller's system message is the system prompt here (none: only the grounding rules)
    prepared = await serving.prepare(turns, system_prompt="", params=params,
                                     grounding=_wants_grounding(serving, body))
    events = await _opened(serving.stream(prepared))
    completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created = int(time.time())
    if not body.stream:
        return await _complete(events, completion_id, created, body.model)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    chunks = _chunks(events, completion_id, created, body.model, include_usage)
    return EventStream(chunks)


async def _complete(events: AsyncIterator[ChatEvent], completion_id: str, created: int,
                    model: str) -> ChatCompletionResponse:
    text: list[str] = []
    sources, done = None, {"finish_reason": "stop"}
    async for event in events:
        if event.type == "sources":
            sources = event.data["sources"]
        elif event.type == "delta":
            text.append(event.data["text"])
        elif event.type == "replace":
            text = [event.data["text"]]
        elif event.type == "done":
            done = event.data
        elif event.type == "error":
            raise event.exception
    return ChatCompletionResponse(
        id=completion_id, created=created, model=model, sources=sources, answer_check=done.get("check"),
        choices=[Choice(message=AssistantMessage(content="".join(text)), finish_reason=done["finish_reason"])],
        usage=Usage.of(done.get("prompt_tokens"), done.get("completion_tokens")),
    )


async def _chunks(events: AsyncIterator[ChatEvent], completion_id: str, created: int, model: str,
                  include_usage: bool) -> AsyncIterator[bytes]:
    """OpenAI chunk events; the first carries the role (and the sources when grounded) and the answer's first
    words, the last the finish reason, the usage (when asked) and `[DONE]` in one piece."""

    def chunk(delta: ChunkDelta, finish_reason: str | None = None, **extra) -> bytes:
        body = ChatCompletionChunk(id=completion_id, created=created, model=model,
                                   choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)], **extra)
        return b"data: " + body.model_dump_json().encode() + b"\n\n"

    # a piece of text is most of an answer's chunks: the same JSON as `chunk(ChunkDelta(content=text))`, written
    # around the text (a model per piece was a tenth of our app's own time on a streamed answer, profiled)
    head = tail = b""
    sources, end = None, b""
    first = True
    async for event in events:
        if event.type == "sources":
            sources = event.data["sources"]
            continue
        if first:  # the role with the first words (one chunk less to relay per answer), else on its own
            first = False
            if event.type == "delta":
                yield chunk(ChunkDelta(role="assistant", content=event.data["text"]), sources=sources)
                continue
            yield chunk(ChunkDelta(role="assistant", content=""), sources=sources)
        if event.type == "delta":
            if not head:  # after the first words: they go out sooner
                head, _, tail = chunk(ChunkDelta(content="\0")).rpartition(b'"\\u0000"')
            yield head + orjson.dumps(event.data["text"]) + tail
        elif event.type == "replace":
            yield chunk(ChunkDelta(content=event.data["text"], replace=True))
        elif event.type == "done":  # sent with [DONE], once the events have ended
            end = chunk(ChunkDelta(), event.data["finish_reason"], answer_check=event.data.get("check"))
            if include_usage:
                usage = Usage.of(event.data.get("prompt_tokens"), event.data.get("completion_tokens"))
                body = ChatCompletionChunk(id=completion_id, created=created, model=model, choices=[], usage=usage)
                end += b"data: " + body.model_dump_json().encode() + b"\n\n"
        elif event.type == "error":
            yield sse(error_body(f"the answer broke off: {event.data['message']}", "engine_error")).encode()
    yield end + b"data: [DONE]\n\n"
