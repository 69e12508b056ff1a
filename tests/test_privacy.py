"""Customers' data rights and PII: erase a customer everywhere, retention, redacted exports and log lines."""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from assistant.cli import main
from assistant.privacy import RedactingFilter, erase_customer, purge_expired, write_export
from assistant.store import Store
from assistant.store.schema import Conversation, Feedback, Handoff, Message, SentimentAlert


def conversation_of(store: Store, customer: str, text: str) -> str:
    conversation = store.conversations.create_conversation(customer_id=customer, channel="web").id
    store.conversations.add_message(conversation, "user", text)
    answer = store.conversations.add_message(conversation, "assistant", "We will look into it.")
    store.conversations.add_feedback(answer, rating=-1, comment="slow")
    store.handoffs.request_human(conversation, "customer_asked")
    store.sentiment.add_alert(f"negative:{conversation}", "conversation", "negative_turns", "2 negative turns",
                    conversation_id=conversation)
    return conversation


def counts(store: Store) -> dict[str, int]:
    with store.session() as session:
        return {table.__tablename__: session.scalar(select(func.count()).select_from(table))
                for table in (Conversation, Message, Feedback, Handoff, SentimentAlert)}


def test_erasing_a_customer_removes_them_everywhere_and_nobody_else(database_url, tmp_path):
    store = Store(database_url)
    gone = [conversation_of(store, "c-1", "My email is jane@example.com, where is order 1042?"),
            conversation_of(store, "c-1", "Call me on +49 30 1234 5678")]
    kept = conversation_of(store, "c-2", "Where is my parcel?")
    exports = tmp_path / "exports"
    now = datetime.now(UTC)  # a window around now, not "today": the test may run across midnight
    export = write_export(store.conversations.export_transcripts(now - timedelta(hours=1), now + timedelta(hours=1)),
                          exports)
    assert len(export.read_text().splitlines()) == 3

    from assistant.recommend.interactions import Interaction

    store.interactions.add_many([Interaction("c-1", "jacket", "purchase", 1.0e9),
                                 Interaction("c-2", "boots", "view", 1.0e9)])
    deleted = erase_customer(store, exports, "c-1")
    assert deleted == {"conversations": 2, "messages": 4, "feedback": 2, "interactions": 1, "export_files": 1,
                       "export_rows": 2}
    assert [(i.customer, i.item) for i in store.interactions.all()] == [("c-2", "boots")]
    assert counts(store) == {"conversations": 1, "messages": 2, "feedback": 1, "handoffs": 1,
                             "sentiment_alerts": 1}  # only c-2's, with everything that hangs on them
    assert [c.id for c in store.handoffs.conversation_overview()] == [kept]
    assert [json.loads(line)["id"] for line in export.read_text().splitlines()] == [kept]
    assert not any(g in export.read_text() for g in gone)
    assert erase_customer(store, exports, "c-1")["conversations"] == 0  # twice is harmless
    store.close()


def test_exports_are_redacted(tmp_path):
    rows = [{"id": "c", "metadata": {}, "messages": [
        {"role": "user", "content": "I am jane@example.com, card 4111 1111 1111 1111, phone +49 30 1234 5678"}]}]
    text = write_export(rows, tmp_path).read_text()
    assert "jane@example.com" not in text and "4111" not in text and "1234 5678" not in text
    assert "[EMAIL]" in text and "[CARD]" in text and "[PHONE]" in text


def test_retention_drops_conversations_without_recent_activity(database_url, tmp_path):
    store = Store(database_url)
    old, recent = conversation_of(store, "c-1", "old"), conversation_of(store, "c-2", "recent")
    with store.session() as session, session.begin():
        session.execute(update(Conversation).where(Conversation.id == old)
                        .values(updated_at=datetime.now(UTC) - timedelta(days=40)))
    deleted = purge_expired(store, tmp_path / "exports", days=30)
    assert deleted["conversations"] == 1
    assert [c.id for c in store.handoffs.conversation_overview()] == [recent]
    store.close()


def test_the_server_applies_retention_by_itself(make_settings):
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine

    service = build_service(make_settings(**{"privacy.retention_days": 30}), make_engine=FakeEngine.build)
    old = service.store.conversations.create_conversation(customer_id="c-9").id
    with service.store.session() as session, session.begin():
        session.execute(update(Conversation).values(updated_at=datetime.now(UTC) - timedelta(days=31)))
    with TestClient(create_app(service, mount_views=False)):
        deadline = time.monotonic() + 30
        while any(c.id == old for c in service.store.handoffs.conversation_overview()):
            assert time.monotonic() < deadline, "the expired conversation was not purged"
            time.sleep(0.1)


def test_gdpr_cli(tmp_path, capsys):
    home = ["--home", str(tmp_path)]
    store = Store(f"sqlite:///{tmp_path}/assistant.db")
    conversation_of(store, "c-7", "hello")
    store.close()
    assert main(["gdpr", "delete", "--customer", "c-7", "--yes", "--json", *home]) == 0
    assert json.loads(capsys.readouterr().out)["conversations"] == 1
    assert main(["gdpr", "delete", "--customer", "c-7", "--yes", *home]) == 0
    assert "deleted 0 conversations" in capsys.readouterr().out
    assert main(["gdpr", "purge", *home]) == 2
    assert "--older-than" in capsys.readouterr().err
    assert main(["gdpr", "purge", "--older-than", "1", *home]) == 0


def test_log_lines_are_redacted(caplog):
    logger = logging.getLogger("assistant.test_privacy")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("customer %s wrote from %s", "jane@example.com", "+49 30 1234 5678")
    assert caplog.records[-1].getMessage() == "customer [EMAIL] wrote from [PHONE]"
    assert "jane@example.com" not in caplog.text


SERVE_WITH_A_LOGGING_SERVER = """
import logging, sys
import uvicorn

def run(app, **options):  # the server logs a customer's details (a request line, an error with the message)
    logging.getLogger("uvicorn.error").warning("customer %s wrote from %s", "jane@example.com", "+49 30 1234 5678")

uvicorn.run = run
from assistant.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_serve_redacts_its_log_lines(tmp_path, tiny_model_dir):
    """`assistant serve` installs the redaction filter on the log handlers it sets up."""
    import subprocess
    import sys

    from assistant.ports import free_port

    command = [sys.executable, "-c", SERVE_WITH_A_LOGGING_SERVER, "serve", "--home", str(tmp_path), "--no-ui",
               "--engine", "transformers", "--model", str(tiny_model_dir), "--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "customer [EMAIL] wrote from [PHONE]" in done.stderr
    assert "jane@example.com" not in done.stderr and "1234 5678" not in done.stderr


@pytest.mark.parametrize("days", ["0", "-3"])
def test_purge_needs_a_positive_period(tmp_path, capsys, days):
    assert main(["gdpr", "purge", "--older-than", days, "--home", str(tmp_path)]) == 2
