"""Replicas share one home folder (models, knowledge base, registries' files: shared storage) and one PostgreSQL.
The first process on PostgreSQL records which database in `HOME/database.json`; a process on the same home that
would open another database (a SQLite file left as the default, another server) is refused with what to do,
instead of keeping its own conversations, keys and leases apart from the others'."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.engine import Engine

from assistant.store.errors import SharedHomeError

MARKER = "database.json"


def database_name(engine: Engine) -> dict:
    """Which database `engine` opens, without its password: `{"dialect", "database"}`."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        return {"dialect": "sqlite", "database": str(Path(url.database or "").expanduser().resolve())}
    return {"dialect": engine.dialect.name, "database": f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"}


def check_shared_home(home: Path, engine: Engine) -> None:
    """Refuse `engine` if replicas on `home` use another PostgreSQL database; record it if it is PostgreSQL."""
    marker = home.expanduser() / MARKER
    mine = database_name(engine)
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError) as exc:
        raise SharedHomeError(f"{marker}: unreadable ({exc}); it records the database this home's replicas share: "
                              f"fix or delete it") from exc
    if recorded == mine:
        return
    if recorded is not None and recorded.get("dialect") == "postgresql":
        what = ("a SQLite file (the default when no database URL is set)" if mine["dialect"] == "sqlite"
                else f"PostgreSQL at {mine['database']}")
        raise SharedHomeError(
            f"this home folder ({home}) is shared by replicas on PostgreSQL at {recorded['database']} "
            f"(recorded in {marker}), but this process would open {what}: start it with the same "
            f"--database-url (or ASSISTANT_DATABASE_URL); delete {marker} only if this home left that database "
            f"for good")
    if mine["dialect"] == "postgresql":
        marker.parent.mkdir(parents=True, exist_ok=True)
        temporary = marker.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(mine), encoding="utf-8")
        temporary.replace(marker)
