"""Tables of the conversation store. Ready for feedback, handoff and sentiment without rewrites."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from assistant.store.statuses import ConversationStatus, MessageStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite drops the zone on read: the values are stored in UTC."""
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    customer_id: Mapped[str | None] = mapped_column(String(128), index=True)
    channel: Mapped[str] = mapped_column(String(32), default="api")
    # bot | waiting_human | human | closed
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.BOT.value, index=True)
    # facts kept as messages arrive, so the Insights numbers read no messages: the first customer message's
    # language (`zh` when mostly Chinese, else `en`) and time, and the first bot answer's time
    language: Mapped[str | None] = mapped_column(String(16))
    first_user_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_answer_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    title: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    csat: Mapped[int | None] = mapped_column(Integer)  # the customer's 1-5 satisfaction rating at the end
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)
    # who may read and write it (assistant/ownership.py): `key:<id>` or `page:<token digest>`; None: anyone the
    # API lets in when it needs no key, else operators and admin keys only
    owner: Mapped[str | None] = mapped_column(String(80))

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_id", "conversation_id", "id"),
                      Index("ix_messages_role_sentiment_label", "role", "sentiment_label"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    # user | assistant | agent | system
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    # complete | streaming | partial (stream broke) | error
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.COMPLETE.value)
    error: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    sentiment_label: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")


class Feedback(Base):
    """A rating, comment or correction of one answer (input of `assistant align`)."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    rating: Mapped[int | None] = mapped_column(Integer)  # +1 / -1
    comment: Mapped[str | None] = mapped_column(Text)
    corrected_text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Handoff(Base):
    """A request for a human, with why it happened and who took it."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
    agent: Mapped[str | None] = mapped_column(String(128))
    requested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class FeedItem(Base):
    """A timestamped text from a news, forum or review feed, scored on ingestion."""

    __tablename__ = "feed_items"
    __table_args__ = (Index("ix_feed_items_entity_published_at", "entity", "published_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_hash: Mapped[str] = mapped_column(String(40), unique=True)  # same text, time, source, entity: once
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    source: Mapped[str | None] = mapped_column(String(128))
    entity: Mapped[str | None] = mapped_column(String(128))
    topic: Mapped[str | None] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    sentiment_label: Mapped[str] = mapped_column(String(16))
    sentiment_score: Mapped[float] = mapped_column(Float)
    ingested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SentimentAlert(Base):
    """An alert from a sentiment rule, over one conversation or one feed window; raised once per key."""

    __tablename__ = "sentiment_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    scope: Mapped[str] = mapped_column(String(16), index=True)  # conversation | feed
    rule: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    entity: Mapped[str | None] = mapped_column(String(128))
    window_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Operator(Base):
    """A support-team member who signs in to the operator console (password stored as a scrypt hash)."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OperatorSession(Base):
    """A signed-in operator console: only the SHA-256 of the cookie's token is stored, so a leaked database opens
    no session. It ends when idle too long, at its absolute limit, or at sign-out."""

    __tablename__ = "operator_sessions"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A key for the API or the widget; only its SHA-256 is stored. Widget keys list the origins allowed to use them."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # shown in lists, enough to revoke
    scope: Mapped[str] = mapped_column(String(16))  # widget | api | feedback:write | admin
    name: Mapped[str] = mapped_column(String(200))
    allowed_origins: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ActionRun(Base):
    """One action the assistant proposed or ran in a conversation: the audit trail (arguments and response
    summary redacted), and the state of its confirmation and approval."""

    __tablename__ = "action_runs"
    __table_args__ = (Index("ix_action_runs_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # read | write
    arguments: Mapped[dict] = mapped_column(JSON, default=dict)
    # awaiting_confirmation | awaiting_approval | running | succeeded | failed | rejected | cancelled
    status: Mapped[str] = mapped_column(String(24))
    confirmed_by: Mapped[str | None] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected or failed, in words the customer sees
    http_status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    response_summary: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CuratedAnswer(Base):
    """An answer an operator approved for a question: served before the model to the questions that match it.
    Editing makes a new version (the old one is withdrawn and points to it); withdrawn versions stay for the record."""

    __tablename__ = "curated_answers"
    __table_args__ = (Index("ix_curated_answers_withdrawn_at", "withdrawn_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_id: Mapped[int | None] = mapped_column(ForeignKey("curated_answers.id"))  # the version it replaces
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | correction | gap | import
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    withdrawn_by: Mapped[str | None] = mapped_column(String(128))
    served: Mapped[int] = mapped_column(Integer, default=0)  # how many times customers got it


class TopicRow(Base):
    """A topic of customer questions (assistant/insights/topics.py), found in the conversations of a period. Finding
    topics again retires the current ones; an operator's name and merges carry over to the new topic nearest each."""

    __tablename__ = "topics"
    __table_args__ = (Index("ix_topics_retired_at", "retired_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    label: Mapped[str] = mapped_column(String(200))  # its most characteristic words
    name: Mapped[str | None] = mapped_column(String(200))  # an operator's name for it
    encoder: Mapped[str] = mapped_column(String(64))  # the encoder its questions were grouped with
    centre: Mapped[bytes] = mapped_column(LargeBinary)  # float32 normalised mean vector
    min_similarity: Mapped[float] = mapped_column(Float)  # a new question joins it from this cosine similarity
    size: Mapped[int] = mapped_column(Integer)  # questions when found
    examples: Mapped[list] = mapped_column(JSON, default=list)  # the questions nearest its centre
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("topics.id"))
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConversationTopic(Base):
    """The topic of a conversation's first customer question (topic_id None: no topic was close enough)."""

    __tablename__ = "conversation_topics"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    topic_id: Mapped[int | None] = mapped_column(ForeignKey("topics.id"), index=True)
    similarity: Mapped[float | None] = mapped_column(Float)
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CatalogItemRow(Base):
    """An item of the company's catalogue (assistant/recommend/catalog.py), kept up to date by `assistant catalog
    ingest`; an item missing from a later file stays unless the ingest prunes it."""

    __tablename__ = "catalog_items"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str] = mapped_column(String(128), default="", index=True)
    price: Mapped[float | None] = mapped_column(Float)
    currency: Mapped[str] = mapped_column(String(8), default="EUR")
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    url: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class InteractionRow(Base):
    """What a customer did with an item: imported (view, cart, purchase, rating) or recorded by the product when it
    recommended (shown, click, dismiss). `customer` is the verified customer id, else `session:<conversation id>`."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_customer_time", "customer", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer: Mapped[str] = mapped_column(String(160))
    item_id: Mapped[str] = mapped_column(String(128), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rating: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(16), default="import")  # import | chat
    conversation_id: Mapped[str | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                        index=True)
    message_id: Mapped[int | None] = mapped_column(Integer)  # the answer that showed the recommendation


class LeaseRow(Base):
    """Who holds a named piece of shared work (the sentiment monitor, retention, a replica's own presence) and
    until when. Times are seconds since the epoch by the database's clock, so replicas' clocks never matter."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(160), primary_key=True)
    holder: Mapped[str] = mapped_column(String(160))
    term: Mapped[int] = mapped_column(Integer, default=1)  # +1 each time another holder takes it
    expires_s: Mapped[float] = mapped_column(Float)


class LeaseTermRow(Base):
    """One holder's uninterrupted hold of a lease: when it began and, renewed as it goes, until when it holds."""

    __tablename__ = "lease_terms"
    __table_args__ = (Index("ix_lease_terms_name_term", "name", "term", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(160))
    term: Mapped[int] = mapped_column(Integer)
    holder: Mapped[str] = mapped_column(String(160))
    started_s: Mapped[float] = mapped_column(Float)
    expires_s: Mapped[float] = mapped_column(Float)


class RateBucketRow(Base):
    """A rate limit's token bucket (a key, an address, sign-in attempts), shared by every replica."""

    __tablename__ = "rate_buckets"

    who: Mapped[str] = mapped_column(String(200), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_s: Mapped[float] = mapped_column(Float, index=True)  # database clock, seconds since the epoch
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)  # whether the last request taken was let through


class RegistryVersionRow(Base):
    """A registered version's description in one registry (`registry`: its folder's name under the home, e.g.
    `sentiment-registry`), kept in the database when replicas share the home; its files stay on the shared home."""

    __tablename__ = "registry_versions"

    registry_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    version_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    record: Mapped[dict] = mapped_column(JSON)  # what `version.json` holds on a single machine
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegistryStateRow(Base):
    """Which version of a registry serves, and the promotions before it (rollback walks them back)."""

    __tablename__ = "registry_state"

    registry_name: Mapped[str] = mapped_column(String(60), primary_key=True)
    active: Mapped[str | None] = mapped_column(String(20))
    history: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
