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
