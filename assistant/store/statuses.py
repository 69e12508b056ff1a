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
