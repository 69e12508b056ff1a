"""Click-through links of recommendation cards: `/api/recommendations/open?t=TOKEN` records the click, then sends the
browser to the item's catalogue url. The token names the conversation, the answer and the item, signed with the
deployment's secret, so nobody can record clicks for conversations that are not theirs; the url always comes from
the catalogue, never from the link (no open redirect)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True)
class CardLink:
    conversation_id: str
    message_id: int
    item_id: str


def _signature(secret: bytes, body: str) -> str:
    digest = hmac.new(secret, f"recommendation-link:{body}".encode(), hashlib.sha256).digest()[:18]
    return base64.urlsafe_b64encode(digest).decode()


def sign_link(secret: bytes, link: CardLink) -> str:
    body = base64.urlsafe_b64encode(f"{link.conversation_id}\n{link.message_id}\n{link.item_id}".encode()).decode()
    return f"{body.rstrip('=')}.{_signature(secret, body.rstrip('='))}"


def verify_link(secret: bytes, token: str) -> CardLink | None:
    """The link's content, or None when the token was not signed here."""
    body, dot, signature = token.partition(".")
    if not dot or not hmac.compare_digest(_signature(secret, body), signature):
        return None
    try:
        conversation_id, message_id, item_id = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode() \
            .split("\n")
        return CardLink(conversation_id, int(message_id), item_id)
    except (ValueError, UnicodeDecodeError):
        return None
