"""The one prompt builder: what the model sees, the same when serving and when training."""

from __future__ import annotations

from collections.abc import Iterable

from assistant.engines.base import ChatMessage

# stored roles -> chat-template roles: a human agent's reply is an assistant turn for the model
_TEMPLATE_ROLE = {"user": "user", "assistant": "assistant", "agent": "assistant", "system": "system"}


def build_chat_messages(system_prompt: str, history: Iterable[dict]) -> list[ChatMessage]:
    """System prompt, then the conversation so far (stored message dicts, oldest first).

    Empty and failed answers are left out so the model never continues a broken turn.
    """
    messages = [ChatMessage("system", system_prompt)] if system_prompt else []
    for message in history:
        if not message["content"].strip() or message.get("status") == "error":
            continue
        messages.append(ChatMessage(_TEMPLATE_ROLE[message["role"]], message["content"]))
    return messages
