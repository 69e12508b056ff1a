"""The states a conversation and a message can be in (stored as their string values)."""

from __future__ import annotations

from enum import StrEnum


class ConversationStatus(StrEnum):
    BOT = "bot"  # the assistant answers
    WAITING_HUMAN = "waiting_human"  # a human was asked for; the bot stays silent
    HUMAN = "human"  # an operator has taken over
    CLOSED = "closed"


class MessageStatus(StrEnum):
    COMPLETE = "complete"
    STREAMING = "streaming"  # an answer being written
    PARTIAL = "partial"  # an answer cut off (engine failure, client gone, server stopped)
    ERROR = "error"  # an answer that failed before its first word


class ActionStatus(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # the customer is asked "shall I go ahead?"
    AWAITING_APPROVAL = "awaiting_approval"  # in the operators' approval queue
    RUNNING = "running"  # the call is being made (claimed once: never sent twice)
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the company's system refused or did not answer; `reason` says what the customer was told
    REJECTED = "rejected"  # an operator said no; `reason` is shown to the customer
    CANCELLED = "cancelled"  # the customer said no, or moved on
