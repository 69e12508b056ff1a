"""What the operator console does: the live overview, a conversation's transcript, take over, reply as the agent,
hand back, close, correct a bot answer, export transcripts; and operators' sign-in sessions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from threading import Lock
from typing import Any

from assistant.chat_serving import validate_text
from assistant.config import Settings
from assistant.store import Store
from assistant.store.records import ConversationRecord, ConversationSummary, OperatorSessionState, TranscriptEntry


class TooManyAttempts(Exception):
    """Sign-ins to this username are paused; try again in `retry_after` seconds."""

    def __init__(self, retry_after: float):
        super().__init__(f"too many sign-in attempts: retry in {retry_after:.0f} s")
        self.retry_after = retry_after


class SignInBackoff:
    """Sign-in attempts per username, whatever the address, in this process (each replica counts its own): after
    `free` attempts without a success, each further one waits first (`first_wait` seconds, doubling up to
    `longest_wait`). An attempt counts from when it starts (parallel guesses cannot slip through); a success clears
    the count, and so does `forget_after` seconds of quiet. Unknown usernames count the same way."""

    def __init__(self, free: int = 5, first_wait: float = 30, longest_wait: float = 900, forget_after: float = 900,
                 max_tracked: int = 100_000, clock: Callable[[], float] = time.monotonic):
        self.free, self.first_wait, self.longest_wait = free, first_wait, longest_wait
        self.forget_after, self.max_tracked, self.clock = forget_after, max_tracked, clock
        self._attempts: dict[str, tuple[int, float, float]] = {}  # username -> (attempts, last, paused until)
        self._lock = Lock()

    def attempt(self, username: str) -> None:
        """Count an attempt, or raise TooManyAttempts while the username is paused."""
        who, now = username.casefold(), self.clock()
        with self._lock:
            count, last, until = self._attempts.get(who, (0, now, now))
            if now < until:
                raise TooManyAttempts(until - now)
            if now - max(last, until) > self.forget_after:
                count = 0
            count += 1
            if count >= self.free:
                until = now + min(self.first_wait * 2 ** min(count - self.free, 30), self.longest_wait)
            self._attempts[who] = (count, now, until)
            if len(self._attempts) > self.max_tracked:  # forget the oldest half
                for stale in sorted(self._attempts, key=lambda k: self._attempts[k][1])[: self.max_tracked // 2]:
                    del self._attempts[stale]

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._attempts.pop(username.casefold(), None)


class OperatorService:
    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.backoff = SignInBackoff(free=settings.console.sign_in_attempts_before_pause)

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
        """A new session token when the password matches an enabled account, else None; TooManyAttempts (the
        password not checked) while the username is paused after failed attempts (`SignInBackoff`)."""
        self.backoff.attempt(username)
        if await asyncio.to_thread(self.store.operators.verify_operator, username, password) is None:
            return None
        self.backoff.succeeded(username)
        return await asyncio.to_thread(self.store.operators.open_operator_session, username)

    async def session(self, token: str) -> OperatorSessionState | None:
        """The signed-in operator of a session token, while the session is within its idle and absolute limits."""
        limits = self.settings.console
        return await asyncio.to_thread(self.store.operators.operator_session, token,
                                       timedelta(minutes=limits.session_idle_minutes),
                                       timedelta(hours=limits.session_max_hours))

    async def sign_out(self, token: str) -> None:
        await asyncio.to_thread(self.store.operators.end_operator_sessions, token)
