"""Server-sent-event streams: helpers for streams that fail as HTTP errors before their first byte, and the
response that sends them."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

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


class EventStream(StreamingResponse):
    """A `text/event-stream` response that stops, and closes its events, as soon as the client disconnects.

    Starlette's StreamingResponse does the same with an anyio task group per response (two tasks and a cancel
    scope): 0.07 ms of the 0.23 ms our app took to an answer's first words, measured in process. Here one plain
    task waits for the disconnect and cancels the response's own."""

    def __init__(self, content: AsyncIterator[bytes | str]):
        super().__init__(content, media_type="text/event-stream", headers=SSE_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        streaming = asyncio.current_task()
        if scope["type"] != "http" or streaming is None:
            return await super().__call__(scope, receive, send)
        left = False

        async def watch() -> None:
            nonlocal left
            with contextlib.suppress(Exception):  # a receive that fails: the answer is sent to its end
                while (await receive())["type"] != "http.disconnect":
                    pass
                left = True
                streaming.cancel()

        watcher = asyncio.create_task(watch())
        finished = False
        try:
            await self.stream_response(send)
            finished = True
        except asyncio.CancelledError:
            if not left:
                raise
            streaming.uncancel()  # ours: the client has gone
        except OSError:  # a server that reports a disconnect by failing the send
            pass
        finally:
            watcher.cancel()
            if not finished:  # the events stop now (the engine's request with them), not when collected
                await _closed(self.body_iterator)
        if self.background is not None:
            await self.background()


async def _closed(events: AsyncIterator) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
