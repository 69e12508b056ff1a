"""Helpers for server-sent-event streams that fail as HTTP errors before their first byte."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

T = TypeVar("T")


async def start_stream(events: AsyncIterator[T]) -> AsyncIterator[T]:
    """Pull the first item now, so a failure before any output becomes an HTTP error, not a broken stream."""
    return resumed([await anext(events)], events)


async def resumed(pulled: list[T], events: AsyncIterator[T]) -> AsyncIterator[T]:
    """The items already pulled from `events`, then the rest of it (closed when the consumer stops)."""
    try:
        for item in pulled:
            yield item
        async for item in events:
            yield item
    finally:
        await events.aclose()


def sse(data: Any, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {payload}\n\n"


SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
