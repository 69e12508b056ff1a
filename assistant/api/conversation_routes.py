"""Our conversation API: create a conversation, post a customer message (answer streamed as SSE), read history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse

from assistant.api.errors import APIError
from assistant.api.schemas import (
    CloseRequest,
    CreateConversationRequest,
    FeedbackRequest,
    HandoffRequest,
    PostMessageRequest,
)
from assistant.api.streaming import SSE_HEADERS, sse, start_stream
from assistant.conversation import AnswerEvent, ConversationService

router = APIRouter(prefix="/api/conversations", tags=["conversations"])
feedback_router = APIRouter(prefix="/api/messages", tags=["feedback"])


def _service(request: Request) -> ConversationService:
    return request.app.state.service


@router.post("", status_code=201)
async def create_conversation(request: Request, body: CreateConversationRequest | None = None) -> dict:
    body = body or CreateConversationRequest()
    return asdict(await _service(request).create_conversation(body.customer_id, body.channel, body.metadata))


@router.get("/{conversation_id}")
async def get_conversation(request: Request, conversation_id: str) -> dict:
    """The conversation's record with its messages, oldest first."""
    service = _service(request)
    conversation = await service.conversation(conversation_id)
    return {**asdict(conversation), "messages": [asdict(m) for m in await service.messages(conversation_id)]}


@router.get("/{conversation_id}/messages")
async def list_messages(request: Request, conversation_id: str, after: int = Query(0, ge=0, le=2**63 - 1)) -> dict:
    """Messages oldest first; `after=ID` returns only newer ones (a waiting customer polls for the agent's reply)."""
    service = _service(request)
    messages = await service.messages_after(conversation_id, after)
    return {"messages": [asdict(m) for m in messages], "status": (await service.conversation(conversation_id)).status}


@router.post("/{conversation_id}/handoff")
async def ask_for_human(request: Request, conversation_id: str, body: HandoffRequest | None = None) -> dict:
    """The customer asks for a human: recorded with its reason; the bot stays silent from now on."""
    body = body or HandoffRequest()
    service = _service(request)
    events = [e async for e in service.hand_to_human(conversation_id, None, body.reason, body.detail)]
    return {"status": "waiting_human", "message_id": events[-1].data["message_id"]}


@router.post("/{conversation_id}/close")
async def close(request: Request, conversation_id: str, body: CloseRequest | None = None) -> dict:
    """End the conversation, with the customer's satisfaction rating if given (also accepted after closing)."""
    body = body or CloseRequest()
    await _service(request).close(conversation_id, body.csat)
    return {"status": "closed", "csat": body.csat}


@router.post("/{conversation_id}/messages")
async def post_message(request: Request, conversation_id: str, body: PostMessageRequest):
    """Store the customer's message, then answer it: SSE events `accepted`, `delta`..., `done` (or `error`)."""
    events = await start_stream(_service(request).answer(conversation_id, body.content, body.client_message_id))
    if not body.stream:
        return await _collect(events)
    return StreamingResponse(_sse(events), media_type="text/event-stream", headers=SSE_HEADERS)


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
    """Rate (+1/-1), comment on or correct one bot answer; `assistant align --from-store` trains on it."""
    if body.rating is None and not body.comment and not body.corrected_text:
        raise APIError(400, "feedback needs a rating (1 or -1), a comment or a corrected_text", param="rating")
    feedback_id = await _service(request).feedback(message_id, body.rating, body.comment, body.corrected_text,
                                                   body.author)
    return {"id": feedback_id, "message_id": message_id}
