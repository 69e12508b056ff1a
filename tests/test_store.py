import threading
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from assistant.store import ConversationNotFoundError, Store
from assistant.store.schema import Conversation


@pytest.fixture
def store(database_url):
    store = Store(database_url)
    yield store
    store.close()


def test_schema_is_migrated(store):
    tables = set(inspect(store.engine).get_table_names())
    assert {"conversations", "messages", "feedback", "handoffs", "feed_items", "sentiment_alerts",
            "alembic_version", "api_keys", "operators", "operator_sessions", "action_runs", "curated_answers", "topics",
            "conversation_topics", "catalog_items", "interactions"} <= tables
    with store.engine.connect() as conn:
        if store.engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0013"


def test_migrations_match_the_tables_and_keep_existing_data(database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from assistant.store import migrate
    from assistant.store.schema import Base

    url = database_url
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")  # a database made before sentiment monitoring
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO conversations (id, channel, status, created_at, updated_at, metadata) "
                          "VALUES ('c1', 'web', 'bot', '2026-11-01', '2026-11-01', '{}')"))
        conn.execute(text("INSERT INTO messages (conversation_id, role, content, status, created_at, metadata) "
                          "VALUES ('c1', 'user', 'hello there', 'complete', '2026-11-01', '{}')"))
        conn.execute(text("INSERT INTO conversations (id, channel, status, created_at, updated_at, metadata) "
                          "VALUES ('c2', 'web', 'bot', '2026-11-02', '2026-11-02', '{}')"))
        conn.execute(text("INSERT INTO messages (conversation_id, role, content, status, created_at, metadata) "
                          "VALUES ('c2', 'user', '我的退款什么时候到账？', 'complete', '2026-11-02 10:00:00', '{}'), "
                          "('c2', 'assistant', '五个工作日内。', 'complete', '2026-11-02 10:00:04', '{}')"))
    engine.dispose()
    store = Store(url)
    assert [m.content for m in store.conversations.messages("c1")] == ["hello there"]
    # the conversation facts the Insights numbers read are filled in from the messages
    with store.session() as session:
        facts = {c.id: (c.language, c.first_user_at is not None, c.first_answer_at is not None)
                 for c in session.scalars(select(Conversation))}
    assert facts == {"c1": ("en", True, False), "c2": ("zh", True, True)}
    assert store.sentiment.unscored_messages()[0].content == "hello there"
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    store.close()


def test_messages_committed_in_order_and_finished(store):
    conversation = store.conversations.create_conversation(customer_id="c-1", channel="web")
    user_id = store.conversations.add_message(conversation.id, "user", "Where is my parcel?")
    answer_id = store.conversations.add_message(conversation.id, "assistant", "", status="streaming", model="m")
    store.conversations.finish_message(answer_id, "It ships tomorrow.", "complete", completion_tokens=5)
    messages = store.conversations.messages(conversation.id)
    assert [m.id for m in messages] == [user_id, answer_id]
    assert messages[1].content == "It ships tomorrow." and messages[1].status == "complete"
    assert messages[1].completed_at.utcoffset() == timedelta(0)  # one time type: aware UTC datetimes
    assert [m.id for m in store.conversations.messages(conversation.id, limit=1)] == [answer_id]


def test_unknown_conversation(store):
    with pytest.raises(ConversationNotFoundError, match="no conversation with id 'missing'"):
        store.conversations.add_message("missing", "user", "hello")
    with pytest.raises(ConversationNotFoundError):
        store.conversations.messages("missing")


def test_reopening_keeps_data_and_does_not_remigrate(database_url):
    url = database_url
    first = Store(url)
    conversation = first.conversations.create_conversation()
    first.conversations.add_message(conversation.id, "user", "kept")
    first.close()
    second = Store(url)
    assert second.conversations.messages(conversation.id)[0].content == "kept"
    second.close()


def test_concurrent_writers_lose_nothing(store):
    conversation = store.conversations.create_conversation()

    def write(worker: int) -> None:
        for i in range(20):
            store.conversations.add_message(conversation.id, "user", f"{worker}-{i}")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    contents = {m.content for m in store.conversations.messages(conversation.id)}
    assert contents == {f"{w}-{i}" for w in range(4) for i in range(20)}
