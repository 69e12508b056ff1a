"""Who a conversation belongs to, and who may act on it.

A conversation belongs to the channel and principal that created it: an API key (`key:<id>`), or a chat page in one
browser (`page:<digest>`: the page keeps a secret pass, `<conversation id>.<token>`, and the store only the token's
SHA-256). Reads, writes, feedback and closing check it; a conversation that is not the caller's is "not found", so
ids reveal nothing. Admin keys and signed-in operators act on every conversation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from assistant.store.records import KeyRecord

CORRECTING_SCOPES = ("admin", "feedback:write")  # keys whose feedback may carry a corrected answer


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the owner tag its conversations get, whether it may act on every conversation, how its
    feedback is signed, and whether it may correct answers (corrections become training data)."""

    owner: str | None
    sees_all: bool = False
    author: str = "customer"
    may_correct: bool = False

    def may_use(self, owner: str | None) -> bool:
        return self.sees_all or (owner is not None and self.owner is not None
                                 and hmac.compare_digest(owner, self.owner))


OPEN_API = Caller(owner=None, sees_all=True, author="api", may_correct=True)  # `auth.required: false`


def key_caller(record: KeyRecord) -> Caller:
    return Caller(owner=f"key:{record.id}", sees_all=record.scope == "admin", author=f"key:{record.prefix}",
                  may_correct=record.scope in CORRECTING_SCOPES)


def page_owner(token: str) -> str:
    return "page:" + hashlib.sha256(token.encode()).hexdigest()


def new_page_token() -> str:
    return secrets.token_urlsafe(24)


def page_pass(conversation_id: str, token: str) -> str:
    """What the chat page keeps in the browser: the conversation and the secret that proves it is this browser's."""
    return f"{conversation_id}.{token}"


def page_caller(page_pass: str | None) -> tuple[str, Caller] | None:
    """The conversation id a chat page's pass names, and the caller it proves; None for a malformed pass (the
    store still decides whether the token is the conversation's)."""
    if not isinstance(page_pass, str):  # Gradio passes what the caller sent
        return None
    conversation_id, _, token = page_pass.partition(".")
    if not (conversation_id.isalnum() and len(conversation_id) <= 32 and 16 <= len(token) <= 64):
        return None
    return conversation_id, Caller(owner=page_owner(token))
