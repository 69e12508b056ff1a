"""The records the store returns: frozen dataclasses, every time an aware datetime in UTC (the API renders them as
ISO 8601 through `dataclasses.asdict`, so their field names are the JSON's).

Not records, on purpose: the transcripts of `ConversationRepository.conversations_for_alignment` and
`export_transcripts` stay dicts, since they are the JSON data contract of `assistant align`
(`{"id", "messages": [{"role", "content"}], "metadata"}`), written to and read from files as they are."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from assistant.store.schema import Conversation, Message, as_utc


def utc(value: datetime | None) -> datetime | None:
    """The stored time as an aware UTC datetime (SQLite drops the zone on read: the values are stored in UTC)."""
    return None if value is None else as_utc(value)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One stored message of a conversation (customer, bot or agent), with its sources and metadata."""

    id: int
    role: str
    content: str
    status: str
    error: str | None
    model: str | None
    sources: list[dict[str, Any]]
    metadata: dict[str, Any]
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def from_row(cls, message: Message) -> MessageRecord:
        meta = message.meta or {}
        return cls(id=message.id, role=message.role, content=message.content, status=message.status,
                   error=message.error, model=message.model, sources=meta.get("sources", []), metadata=meta,
                   created_at=utc(message.created_at), completed_at=utc(message.completed_at))


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """A conversation: who, which channel, its status (bot, waiting_human, human, closed) and CSAT."""

    id: str
    customer_id: str | None
    channel: str
    status: str
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    csat: int | None
    metadata: dict[str, Any]

    @classmethod
    def from_row(cls, conversation: Conversation) -> ConversationRecord:
        return cls(id=conversation.id, customer_id=conversation.customer_id, channel=conversation.channel,
                   status=conversation.status, created_at=utc(conversation.created_at),
                   updated_at=utc(conversation.updated_at), closed_at=utc(conversation.closed_at),
                   csat=conversation.csat, metadata=conversation.meta or {})


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """The latest rating, comment and correction given on one bot answer."""

    rating: int | None = None
    comment: str | None = None
    corrected_text: str | None = None


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One message as the operator's transcript shows it: the agent who wrote it, its sentiment, its feedback."""

    id: int
    role: str
    content: str
    status: str
    agent: str | None
    created_at: datetime
    sentiment: str | None
    feedback: FeedbackSummary | None
    cut: tuple[tuple[str, str], ...] = ()  # (sentence, why) the support check removed before the answer was sent
    fell_back: bool = False  # too little was supported: the answer composed from the sources was sent instead


@dataclass(frozen=True, slots=True)
class HandoffRequest:
    """The outcome of asking for a human: the open handoff, the conversation's status, whether it is a new one."""

    handoff_id: int
    status: str
    created: bool


@dataclass(frozen=True, slots=True)
class HandoffState:
    """A conversation's status and, while a human is asked for or involved, the reason and the agent (and name)."""

    status: str
    reason: str | None
    agent: str | None
    agent_name: str | None


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One row of the operators' overview: status, last message, customer sentiment, open handoff, alerts."""

    id: str
    status: str
    customer_id: str | None
    channel: str
    updated_at: datetime
    last_role: str | None
    last_message: str
    sentiment: str | None
    sentiment_score: float | None
    handoff_reason: str | None
    agent: str | None
    waiting_since: datetime | None
    alerts: int
    csat: int | None


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as stored (never the key itself): prefix, scope (widget, api, admin), name, allowed origins."""

    id: int
    prefix: str
    scope: str
    name: str
    origins: list[str]
    created_at: datetime
    revoked: bool


@dataclass(frozen=True, slots=True)
class OperatorIdentity:
    """An operator account: the username and the name customers see."""

    username: str
    display_name: str


@dataclass(frozen=True, slots=True)
class OperatorSessionState:
    """A console session token's state: the signed-in operator, or `expired` (then `operator` is None)."""

    operator: OperatorIdentity | None
    expired: bool


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure deleted: counts of conversations, messages and feedback, and the conversations' ids."""

    conversations: int
    messages: int
    feedback: int
    ids: list[str]


@dataclass(frozen=True, slots=True)
class UnscoredMessage:
    """A complete customer message still waiting for its sentiment."""

    id: int
    conversation_id: str
    content: str


@dataclass(frozen=True, slots=True)
class TrajectoryPoint:
    """One scored customer message of a conversation: its sentiment label and score (-1 .. +1)."""

    message_id: int
    created_at: datetime
    text: str
    label: str
    score: float


@dataclass(frozen=True, slots=True)
class ScoredText:
    """A scored text for trends: a customer message (`source` chat:CHANNEL, with its conversation) or a feed item."""

    id: int
    time: datetime
    text: str
    label: str
    score: float
    source: str | None
    entity: str | None
    topic: str | None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class SentimentAlertRecord:
    """A raised sentiment alert: scope (conversation or feed), rule, detail, where, the feed window it covers."""

    id: int
    scope: str
    rule: str
    detail: str
    conversation_id: str | None
    entity: str | None
    window_start: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ActionRunRecord:
    """One audited action of a conversation and where it stands."""

    id: int
    conversation_id: str
    action: str
    kind: str
    arguments: dict[str, Any]
    status: str
    confirmed_by: str | None
    approved_by: str | None
    reason: str | None
    http_status: int | None
    latency_ms: float | None
    response_summary: str | None
    idempotency_key: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row) -> ActionRunRecord:
        return cls(row.id, row.conversation_id, row.action, row.kind, dict(row.arguments or {}), row.status,
                   row.confirmed_by, row.approved_by, row.reason, row.http_status, row.latency_ms,
                   row.response_summary, row.idempotency_key, utc(row.created_at), utc(row.updated_at))


@dataclass(frozen=True, slots=True)
class CuratedAnswerRecord:
    """An approved answer for a question (withdrawn_at set: no longer served)."""

    id: int
    question: str
    answer: str
    version: int
    previous_id: int | None
    source: str
    created_by: str
    created_at: datetime
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    served: int

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    @classmethod
    def of(cls, row) -> CuratedAnswerRecord:
        return cls(row.id, row.question, row.answer, row.version, row.previous_id, row.source, row.created_by,
                   utc(row.created_at), utc(row.withdrawn_at), row.withdrawn_by,
                   row.served or 0)


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """A topic of customer questions; `title` is what people see (the operator's name, else the label)."""

    id: int
    label: str
    name: str | None
    encoder: str
    size: int
    examples: tuple[str, ...]
    merged_into: int | None
    found_at: datetime

    @property
    def title(self) -> str:
        return self.name or self.label

    @classmethod
    def of(cls, row) -> TopicRecord:
        return cls(row.id, row.label, row.name, row.encoder, row.size, tuple(row.examples or ()), row.merged_into,
                   utc(row.found_at))
