"""What the operator console does: the live overview, a conversation's transcript, take over, reply as the agent,
hand back, close, correct a bot answer, export transcripts; and operators' sign-in sessions."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from assistant.chat_serving import validate_text
from assistant.config import Settings
from assistant.store import Store
from assistant.store.records import ConversationRecord, ConversationSummary, OperatorSessionState, TranscriptEntry


class OperatorService:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store

    async def overview(self, status: str | None = None) -> list[ConversationSummary]:
        """Conversations with their status, waiting time, sentiment and alerts (newest activity first)."""
        return await asyncio.to_thread(self.store.handoffs.conversation_overview, status)

    async def transcript(self, conversation_id: str) -> tuple[list[TranscriptEntry], ConversationRecord]:
        """Every message with its latest feedback, and the conversation's record."""
        transcript = await asyncio.to_thread(self.store.conversations.transcript, conversation_id)
        info = await asyncio.to_thread(self.store.conversations.get_conversation, conversation_id)
        return transcript, info

    async def take_over(self, conversation_id: str, agent: str) -> None:
        await asyncio.to_thread(self.store.handoffs.take_over, conversation_id, agent)

    async def hand_back(self, conversation_id: str) -> None:
        await asyncio.to_thread(self.store.handoffs.hand_back, conversation_id)

    async def close(self, conversation_id: str) -> None:
        await asyncio.to_thread(self.store.conversations.close_conversation, conversation_id)

    async def reply(self, conversation_id: str, agent: str, text: str) -> int:
        """The agent's reply (the conversation must have been taken over)."""
        validate_text(text, self.settings.max_message_chars, "reply")
        return await asyncio.to_thread(self.store.handoffs.add_agent_message, conversation_id, agent, text.strip())

    async def correct(self, message_id: int, text: str, agent: str) -> int:
        """The better answer to a bot message: stored as a correction, a preference pair for alignment."""
        return await asyncio.to_thread(self.store.conversations.add_feedback, message_id, None, None, text.strip(),
                                       agent)

    async def export(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Conversations created in [start, end) in the transcript format of `assistant align` (dicts: the data
        contract)."""
        return await asyncio.to_thread(self.store.conversations.export_transcripts, start, end)

    async def sign_in(self, username: str, password: str) -> str | None:
        """A new session token when the password matches an enabled account, else None."""
        if await asyncio.to_thread(self.store.operators.verify_operator, username, password) is None:
            return None
        return await asyncio.to_thread(self.store.operators.open_operator_session, username)

    async def session(self, token: str) -> OperatorSessionState | None:
        """The signed-in operator of a session token, while the session is within its idle and absolute limits."""
        limits = self.settings.console
        return await asyncio.to_thread(self.store.operators.operator_session, token,
                                       timedelta(minutes=limits.session_idle_minutes),
                                       timedelta(hours=limits.session_max_hours))

    async def sign_out(self, token: str) -> None:
        await asyncio.to_thread(self.store.operators.end_operator_sessions, token)
