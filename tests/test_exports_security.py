"""Transcript exports (pen-test finding 6): served only to a signed-in operator, through the console's own route,
once: nobody without a session gets them, not through any Gradio file route either, and no copy lingers."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
import pytest

from tests.gradio_calls import function_indexes, gradio_call


@pytest.mark.views("operator", "chat")
def test_an_export_reaches_only_the_signed_in_operator_once(make_client):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from ui.operator_console import build_operator_console

    client = make_client()
    service = client.app.state.service
    store = service.store
    store.operators.create_operator("maria", "correct horse battery")
    conversation = store.conversations.create_conversation(channel="web").id
    store.conversations.add_message(conversation, "user", "Where is my order?")
    export = function_indexes(build_operator_console(service))["export"]
    with BackgroundServer(create_app(service, mount_views={"operator", "chat"})) as url:
        signed_in = httpx.post(f"{url}/operator/login", follow_redirects=False,
                               data={"username": "maria", "password": "correct horse battery"}).cookies
        cookies = {"assistant_operator": signed_in["assistant_operator"]}
        today = datetime.now(UTC).date().isoformat()
        [shown] = gradio_call(f"{url}/operator", export, [today, today], cookies=cookies)
        link = re.search(r"\((/operator/exports/transcripts-[0-9-]+\.jsonl)\)", str(shown)).group(1)
        name = link.rsplit("/", 1)[1]
        assert httpx.get(f"{url}{link}").status_code == 401  # no session: nothing
        for app in ("chat", "chat/zh", "operator"):  # no Gradio file route has a copy
            leaked = httpx.get(f"{url}/{app}/gradio_api/file={service.settings.exports_dir / name}")
            assert leaked.status_code >= 400 and conversation not in leaked.text
        download = httpx.get(f"{url}{link}", cookies=cookies)
        assert download.status_code == 200 and conversation in download.text and "Where is my order?" in download.text
        assert download.headers["cache-control"] == "no-store"
        assert httpx.get(f"{url}{link}", cookies=cookies).status_code == 404  # once: deleted when sent
        assert not (service.settings.exports_dir / name).exists()
