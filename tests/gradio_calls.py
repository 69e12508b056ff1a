"""Calling a Gradio app's events over HTTP as its page does (or as an attacker would): join the queue with an
`fn_index`, read the results."""

from __future__ import annotations

import json
import secrets

import httpx


def function_indexes(page) -> dict[str, int]:
    """A Blocks' event handlers by function name -> fn_index (the same on the mounted copy: built the same way)."""
    return {f.name: index for index, f in page.fns.items()}


def gradio_call(app_url: str, fn_index: int, data: list, cookies: dict | None = None,
                headers: dict | None = None) -> list:
    """Run one event of the Gradio app at `app_url` (e.g. http://host/chat) and return its outputs."""
    session = secrets.token_hex(8)
    with httpx.Client(base_url=f"{app_url}/gradio_api", timeout=60, cookies=cookies, headers=headers) as http:
        joined = http.post("/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                "event_data": None, "trigger_id": None})
        assert joined.status_code == 200, joined.text
        with http.stream("GET", f"/queue/data?session_hash={session}") as events:
            for line in events.iter_lines():
                message = json.loads(line[5:]) if line.startswith("data:") else {}
                if message.get("msg") == "process_completed":
                    assert message.get("success"), message
                    return message["output"]["data"]
    raise AssertionError("the event never completed")
