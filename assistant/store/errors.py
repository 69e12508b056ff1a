"""The store's errors: each says what is wrong and what to do instead."""

from __future__ import annotations

from assistant.errors import AssistantError


class ConversationNotFoundError(AssistantError, LookupError):
    def __init__(self, conversation_id: str):
        super().__init__(f"no conversation with id '{conversation_id}'")
        self.conversation_id = conversation_id


class MessageNotFoundError(AssistantError, LookupError):
    def __init__(self, message_id: int, why: str = "no message with this id"):
        super().__init__(f"message {message_id}: {why}")
        self.message_id = message_id


class HandoffError(AssistantError, ValueError):
    """A handoff step that does not fit the conversation's state; the message says what to do instead."""


class KeyProblem(AssistantError, ValueError):
    """A key cannot be made or used; the message says why."""


class OperatorError(AssistantError, ValueError):
    """An operator account that cannot be created or changed (taken name, weak password)."""


class ActionStateError(AssistantError, ValueError):
    """An action run is not in a state that allows this step (already approved, rejected or run)."""


class CuratedAnswerError(AssistantError, ValueError):
    """A curated answer that cannot be added, edited or withdrawn (empty, unknown, already withdrawn, conflicting)."""


class TopicError(AssistantError, ValueError):
    """A topic that does not exist, or a rename or merge that cannot be done; the message says why."""


class SharedHomeError(AssistantError):
    """A process on a home folder shared by replicas would open another database than theirs."""
