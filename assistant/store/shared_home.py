"""Replicas share one home folder (models, knowledge base, registries' files: shared storage) and one PostgreSQL.
The first process on PostgreSQL records which database in `HOME/database.json`; a process on the same home that
would open another database (a SQLite file left as the default, another server) is refused with what to do,
instead of keeping its own conversations, keys and leases apart from the others'.

On such a home the registries (chat models, retrieval, sentiment, recommenders) keep their records in that database:
`registry_database(home)` gives it to every registry of the process that opened the home's store or was given its
URL (`declare_database`: a command run with --database-url)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine, make_url

from assistant.store.errors import SharedHomeError

if TYPE_CHECKING:
    from assistant.store.database import Database

MARKER = "database.json"
# this process's way to each shared home's database: the Database its store opened, or a URL opened when needed
_attached: dict[Path, Database | str] = {}


def database_name(engine: Engine) -> dict:
    """Which database `engine` opens, without its password: `{"dialect", "database"}`."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        return {"dialect": "sqlite", "database": str(Path(url.database or "").expanduser().resolve())}
    return {"dialect": engine.dialect.name, "database": f"{url.host or 'localhost'}:{url.port or 5432}/{url.database}"}


def recorded_database(home: Path) -> dict | None:
    """The database `home`'s replicas share, as recorded by the first of them (None: none recorded)."""
    marker = home.expanduser() / MARKER
    try:
        return json.loads(marker.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SharedHomeError(f"{marker}: unreadable ({exc}); it records the database this home's replicas share: "
                              f"fix or delete it") from exc


def check_shared_home(home: Path, engine: Engine) -> None:
    """Refuse `engine` if replicas on `home` use another PostgreSQL database; record it if it is PostgreSQL, with an
    id for the home (the registries of two homes on one database stay apart)."""
    marker = home.expanduser() / MARKER
    mine = database_name(engine)
    recorded = recorded_database(home)
    if recorded is not None and {k: recorded.get(k) for k in mine} == mine:
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
        temporary.write_text(json.dumps({**mine, "home_id": uuid.uuid4().hex}), encoding="utf-8")
        try:
            os.link(temporary, marker)  # only if no replica starting at the same moment recorded it first
        except FileExistsError:
            temporary.unlink()
            check_shared_home(home, engine)  # the other one's record: the same database, or refused
            return
        temporary.unlink()


def _key(home: Path) -> Path:
    return Path(home).expanduser().resolve()


def attach_database(home: Path, database: Database) -> None:
    """`database` (a store opened on `home`) holds the home's registry records when it is PostgreSQL."""
    if database.engine.dialect.name == "postgresql":
        _attached[_key(home)] = database


def declare_database(home: Path, url: str) -> None:
    """A command's database URL for `home`, opened only if a registry on a PostgreSQL-shared home needs it."""
    if make_url(url).get_backend_name() == "postgresql":
        _attached.setdefault(_key(home), url)


def registry_database(home: Path) -> tuple[Database, str] | None:
    """Where the registries on `home` keep their records: its shared PostgreSQL database and the home's id there, or
    None (files under the home, on a single machine). Refused with what to do when the home is shared but this
    process has no URL for it."""
    from assistant.store.database import Database

    recorded = recorded_database(home)
    if recorded is None or recorded.get("dialect") != "postgresql":
        return None
    known = _attached.get(_key(home))
    if known is None:
        raise SharedHomeError(
            f"the registries of {home} are kept in PostgreSQL at {recorded['database']} (recorded in "
            f"{Path(home).expanduser() / MARKER}): run this with the same --database-url (or ASSISTANT_DATABASE_URL) "
            f"as the replicas")
    if isinstance(known, str):
        known = _attached[_key(home)] = Database(known, before_migrating=lambda engine: check_shared_home(home, engine))
    return known, recorded.get("home_id", "home")
