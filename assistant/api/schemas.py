"""Request and response bodies of the HTTP API."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from assistant.chat_serving import unstorable


class ContentPart(BaseModel):
    type: str
    text: str | None = None


class FunctionCall(BaseModel):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class OpenAIMessage(BaseModel):
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = ""
    tool_calls: list[ToolCall] | None = None  # an assistant turn that called functions
    tool_call_id: str | None = None  # a tool turn: the result of that call

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text or "" for p in self.content if p.type == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI chat completions; fields we do not use are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[OpenAIMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    tools: list[dict] | None = None  # OpenAI function tools: the model may call one (constrained decoding)
    tool_choice: Literal["auto", "none", "required"] | dict | None = None


def _absent(value) -> bool:
    return value is None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @classmethod
    def of(cls, prompt: int | None, completion: int | None) -> Usage:
        prompt, completion = prompt or 0, completion or 0
        return cls(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = Field(None, exclude_if=_absent)


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str | None
    logprobs: None = None


class ChatCompletionResponse(BaseModel):
    """A whole answer; `sources` and `answer_check` (our extensions: what it is grounded in, what the support
    check cut and why) when it was grounded."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    sources: list[dict] | None = Field(None, exclude_if=_absent)
    answer_check: dict | None = Field(None, exclude_if=_absent)


class ToolCallDelta(ToolCall):
    index: int = 0


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = Field(None, exclude_if=_absent)
    content: str | None = Field(None, exclude_if=_absent)
    tool_calls: list[ToolCallDelta] | None = Field(None, exclude_if=_absent)
    replace: bool | None = Field(None, exclude_if=_absent, description="our extension: the refusal that replaces "
                                                                         "an answer that began to quote instructions")


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One streamed piece; the first carries `sources` and the last `answer_check` (our extensions) when the answer
    is grounded."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = Field(None, exclude_if=_absent)
    sources: list[dict] | None = Field(None, exclude_if=_absent)
    answer_check: dict | None = Field(None, exclude_if=_absent)


CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # NUL (PostgreSQL's text refuses it), line breaks, escapes
METADATA_DEPTH, METADATA_BYTES = 4, 8192


def _no_control(value: str | None) -> str | None:
    if value is not None and CONTROL.search(value):
        raise ValueError("control characters (NUL, line breaks, ...) are not allowed")
    return value


def _storable(value: str | None) -> str | None:
    if value is not None and (problem := unstorable(value)):
        raise ValueError(problem)
    return value


StorableText = Annotated[str, AfterValidator(_storable)]  # free text that is stored (comments, corrections)


def _bounded_metadata(value: dict[str, Any]) -> dict[str, Any]:
    """At most METADATA_DEPTH levels of objects and arrays (checked without recursion), string keys free of control
    characters, at most METADATA_BYTES as JSON."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth > METADATA_DEPTH:
            raise ValueError(f"nested deeper than {METADATA_DEPTH} levels")
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str) or CONTROL.search(key):
                    raise ValueError("keys must be strings without control characters")
            pending += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            pending += [(v, depth + 1) for v in item]
    if len(json.dumps(value, ensure_ascii=False).encode()) > METADATA_BYTES:
        raise ValueError(f"larger than {METADATA_BYTES} bytes as JSON")
    return value


class CreateConversationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[str, Field(max_length=128), AfterValidator(_no_control)] | None = None
    channel: Annotated[str, Field(max_length=32), AfterValidator(_no_control)] = "api"
    metadata: Annotated[dict[str, Any], AfterValidator(_bounded_metadata)] = Field(
        default_factory=dict, description=f"your own JSON object: at most {METADATA_DEPTH} levels deep and "
                                          f"{METADATA_BYTES} bytes")


class PostMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str
    stream: bool = True
    client_message_id: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_control)] | None = Field(
        None, description="your id for this message: sent again (a retry, a double submit), it is not stored twice "
                          "and the answer is replayed")


class FeedbackRequest(BaseModel):
    """A customer's or operator's verdict on one bot answer; `corrected_text` is the better answer."""

    model_config = ConfigDict(extra="forbid")

    rating: Literal[-1, 1] | None = None
    comment: StorableText | None = Field(None, max_length=4000)
    corrected_text: StorableText | None = Field(None, min_length=1, max_length=8000)
    author: StorableText | None = Field(None, max_length=128)


class RecommendationFeedbackRequest(BaseModel):
    """What the customer did with one recommended item of one answer."""

    model_config = ConfigDict(extra="forbid")

    message_id: int = Field(ge=1, le=2**63 - 1)
    item_id: str = Field(min_length=1, max_length=128)
    action: Literal["click", "dismiss"]


class HandoffRequest(BaseModel):
    """The customer asks for a human (the chat's "talk to a human" button)."""

    model_config = ConfigDict(extra="forbid")

    reason: Literal["customer_asked"] = "customer_asked"
    detail: StorableText | None = Field(None, max_length=2000)


class CloseRequest(BaseModel):
    """End a conversation, optionally with the customer's satisfaction rating (1-5)."""

    model_config = ConfigDict(extra="forbid")

    csat: int | None = Field(None, ge=1, le=5)
