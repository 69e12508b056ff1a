"""Our conversation API: create a conversation, post a customer message (answer streamed as SSE), read history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request

from assistant.api.errors import APIError
from assistant.api.schemas import (
    CloseRequest,
    CreateConversationRequest,
    FeedbackRequest,
    HandoffRequest,
    PostMessageRequest,
    RecommendationFeedbackRequest,
)
from assistant.api.streaming import EventStream, sse, start_stream
from assistant.conversation import AnswerEvent, ConversationService, RecommendationFeedbackError
from assistant.ownership import OPEN_API, Caller, key_caller

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
feedback_router = APIRouter(prefix="/api/messages", tags=["feedback"])


def _service(request: Request) -> ConversationService:
    return request.app.state.service


def _caller(request: Request) -> Caller:
    """The API key's caller (its conversations, its name on feedback); anyone when the API needs no key."""
    record = getattr(request.state, "api_key", None)
    return OPEN_API if record is None else key_caller(record)


async def _owned(request: Request, conversation_id: Annotated[str, Path(pattern=r"^[0-9A-Za-z]{1,32}$")]) -> str:
    """The path's conversation, when the caller may act on it (else 404, as for an unknown id)."""
    await _service(request).check_access(conversation_id, _caller(request))
    return conversation_id


Owned = Annotated[str, Depends(_owned)]


@router.post("", status_code=201)
async def create_conversation(request: Request, body: CreateConversationRequest | None = None) -> dict:
    body = body or CreateConversationRequest()
    return asdict(await _service(request).create_conversation(body.customer_id, body.channel, body.metadata,
                                                              _caller(request).owner))


@router.get("/{conversation_id}")
async def get_conversation(request: Request, conversation_id: Owned) -> dict:
    """The conversation's record with its messages, oldest first."""
    service = _service(request)
    conversation = await service.conversation(conversation_id)
    return {**asdict(conversation), "messages": [asdict(m) for m in await service.messages(conversation_id)]}


@router.get("/{conversation_id}/messages")
async def list_messages(request: Request, conversation_id: Owned, after: int = Query(0, ge=0, le=2**63 - 1)) -> dict:
    """Messages oldest first; `after=ID` returns only newer ones (a waiting customer polls for the agent's reply)."""
    service = _service(request)
    messages = await service.messages_after(conversation_id, after)
    return {"messages": [asdict(m) for m in messages], "status": (await service.conversation(conversation_id)).status}


@router.post("/{conversation_id}/handoff")
async def ask_for_human(request: Request, conversation_id: Owned, body: HandoffRequest | None = None) -> dict:
    """The customer asks for a human: recorded with its reason; the bot stays silent from now on."""
    body = body or HandoffRequest()
    service = _service(request)
    events = [e async for e in service.hand_to_human(conversation_id, None, body.reason, body.detail)]
    return {"status": "waiting_human", "message_id": events[-1].data["message_id"]}


@router.post("/{conversation_id}/close")
async def close(request: Request, conversation_id: Owned, body: CloseRequest | None = None) -> dict:
    """End the conversation, with the customer's satisfaction rating if given (also accepted after closing)."""
    body = body or CloseRequest()
    await _service(request).close(conversation_id, body.csat)
    return {"status": "closed", "csat": body.csat}


@router.post("/{conversation_id}/messages")
async def post_message(request: Request, conversation_id: Owned, body: PostMessageRequest):
    """Store the customer's message, then answer it: SSE events `accepted`, `delta`..., `done` (or `error`)."""
    events = await start_stream(_service(request).answer(conversation_id, body.content, body.client_message_id))
    if not body.stream:
        return await _collect(events)
    return EventStream(_sse(events))


@router.post("/{conversation_id}/recommendations", status_code=201)
async def recommendation_feedback(request: Request, conversation_id: Owned,
                                  body: RecommendationFeedbackRequest) -> dict:
    """The customer opened a recommended item (`click`) or dismissed it (`dismiss`: "not for me"); recorded as an
    interaction the recommender learns from."""
    try:
        await _service(request).recommendation_feedback(conversation_id, body.message_id, body.item_id, body.action)
    except RecommendationFeedbackError as exc:
        raise APIError(404, str(exc), param="item_id") from exc
    return {"conversation_id": conversation_id, "item_id": body.item_id, "action": body.action}


async def _sse(events: AsyncIterator[AnswerEvent]) -> AsyncIterator[str]:
    async for event in events:
        yield sse(event.data, event.type)


async def _collect(events: AsyncIterator[AnswerEvent]) -> dict:
    result: dict = {"answer": "", "status": None}
    async for event in events:
        if event.type == "accepted":
            result["message_id"] = event.data["message_id"]
            result["answer_id"] = event.data.get("answer_id")
            result["duplicate"] = event.data.get("duplicate", False)
        elif event.type == "delta":
            result["answer"] += event.data["text"]
        elif event.type == "replace":
            result["answer"] = event.data["text"]
        elif event.type in ("done", "error"):
            result["status"] = event.data["status"]
            if event.type == "error":
                result["error"] = event.data["message"]
    return result


@feedback_router.post("/{message_id}/feedback", status_code=201)
async def post_feedback(request: Request, body: FeedbackRequest,
                        message_id: int = Path(ge=1, le=2**63 - 1)) -> dict:
    """Rate (+1/-1), comment on or correct one bot answer of the caller's conversations; `assistant align
    --from-store` trains on it. The key is recorded as the author; corrections need an admin or `feedback:write` key."""
    if body.rating is None and not body.comment and not body.corrected_text:
        raise APIError(400, "feedback needs a rating (1 or -1), a comment or a corrected_text", param="rating")
    caller, service = _caller(request), _service(request)
    if body.corrected_text and not caller.may_correct:
        raise APIError(403, "corrections become training data: they need an admin key or one with the "
                            "feedback:write scope (`assistant keys create --scope feedback:write`)",
                       "permission_error", param="corrected_text")
    await service.check_answer_access(message_id, caller)
    author = (body.author or caller.author) if caller is OPEN_API else caller.author
    feedback_id = await service.feedback(message_id, body.rating, body.comment, body.corrected_text, author)
    return {"id": feedback_id, "message_id": message_id}
