"""One database (SQLite file with WAL, or PostgreSQL), migrated to head on open, and the base of the repositories
that work on it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.store import migrate


def _enable_sqlite_wal(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()


class Database:
    """`before_migrating(engine)`: a check that may refuse the database before anything is written to it."""

    def __init__(self, url: str, before_migrating: Callable[[Engine], None] | None = None):
        self.engine = create_engine(url, pool_pre_ping=True)
        if before_migrating is not None:
            before_migrating(self.engine)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if self.engine.dialect.name == "sqlite":
            _enable_sqlite_wal(self.engine)
        migrate.upgrade(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()


class Repository:
    """The records of one concept, on a shared `Database`."""

    def __init__(self, database: Database):
        self.database = database

    def session(self) -> Session:
        return self.database.session()
