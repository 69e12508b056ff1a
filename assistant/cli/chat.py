"""Chat in the terminal: with a running server (default), or in-process with `--engine transformers`.

Answers stream as they are generated; the conversation is stored like any other. Type /quit to leave.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator

from assistant.cli.options import add_settings_flags, load_from_args
from assistant.errors import AssistantError

EXAMPLES = """examples:
  assistant chat                                   # the server started by `assistant serve`
  assistant chat --url http://support.example:8000 --key sk_...   # or ASSISTANT_API_KEY=sk_...
  assistant chat --engine transformers --model ./my-model
  echo "How do I reset my password?" | assistant chat
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser, ["--model", "--engine", "--host", "--port", "--database-url", "--home"])
    parser.add_argument("--url", help="base URL of a running assistant server (default: http://HOST:PORT)")
    parser.add_argument("--key", help="an API key (`assistant keys create --scope api`; default the `api_key` "
                                       "setting, e.g. $ASSISTANT_API_KEY)")


async def _remote_answers(url: str, key: str | None) -> AsyncIterator:
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(600, connect=5), headers=headers) as client:
        try:
            response = await client.post("/api/conversations", json={"channel": "terminal"})
        except httpx.ConnectError:
            raise AssistantError(f"no assistant server at {url}: start one with `assistant serve`, "
                             "or chat in-process with --engine transformers") from None
        if response.status_code in (401, 403):
            raise AssistantError(f"{response.json()['error']['message']} (pass it with --key)")
        response.raise_for_status()
        conversation_id = response.json()["id"]

        async def ask(text: str) -> AsyncIterator[tuple[str, dict]]:
            async with client.stream("POST", f"/api/conversations/{conversation_id}/messages",
                                     json={"content": text}) as stream:
                if stream.status_code != 200:
                    body = json.loads(await stream.aread())
                    yield "error", {"message": body["error"]["message"]}
                    return
                event = "message"
                async for line in stream.aiter_lines():
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        yield event, json.loads(line[6:])

        yield ask


async def _local_answers(loaded) -> AsyncIterator:
    from rich.console import Console

    from assistant.runtime import build_service

    service = build_service(loaded, console=Console(stderr=True))
    await service.engine.start()
    try:
        conversation_id = (await service.create_conversation(channel="terminal")).id

        async def ask(text: str) -> AsyncIterator[tuple[str, dict]]:
            try:
                async for event in service.answer(conversation_id, text):
                    yield event.type, event.data
            except ValueError as exc:
                yield "error", {"message": str(exc)}

        yield ask
    finally:
        await service.engine.stop()
        service.store.close()


async def _repl(answers: AsyncIterator) -> None:
    interactive = sys.stdin.isatty()
    async for ask in answers:
        while True:
            try:
                text = await asyncio.to_thread(input, "you> " if interactive else "")
            except EOFError:
                break
            if text.strip() in ("/quit", "/exit"):
                break
            if not text.strip():
                continue
            print("assistant> ", end="", flush=True)
            async for event, data in ask(text):
                if event == "delta":
                    print(data["text"], end="", flush=True)
                elif event == "replace":
                    print(f"\n{data['text']}", end="", flush=True)
                elif event == "error":
                    print(f"\n[error] {data['message']}", end="")
            print(flush=True)


def run(args: argparse.Namespace) -> int:
    loaded = load_from_args(args)
    settings = loaded.settings
    local = loaded.sources.get("engine") != "default" and args.url is None
    answers = _local_answers(loaded) if local else _remote_answers(
        args.url or f"http://{settings.host}:{settings.port}", args.key or settings.api_key)
    asyncio.run(_repl(answers))
    return 0
