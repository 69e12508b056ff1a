"""Read server-sent events from a streamed HTTP response."""

from __future__ import annotations

import json


def read_events(lines) -> list[tuple[str, object]]:
    """(event name, parsed data) for each event; `data: [DONE]` comes back as the string '[DONE]'."""
    events, name = [], "message"
    for line in lines:
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            payload = line[6:]
            events.append((name, payload if payload == "[DONE]" else json.loads(payload)))
            name = "message"
    return events


def conversation_stream(url: str, text: str, conversation: str | None = None) -> tuple[str, list[tuple[str, dict]]]:
    """Send one customer message to a running server's conversation API (a new conversation unless given);
    returns the conversation id and the streamed events."""
    import httpx

    conversation = conversation or httpx.post(f"{url}/api/conversations", json={}).json()["id"]
    with httpx.stream("POST", f"{url}/api/conversations/{conversation}/messages", json={"content": text},
                      timeout=60) as response:
        assert response.status_code == 200, response.read()
        return conversation, read_events(response.iter_lines())
