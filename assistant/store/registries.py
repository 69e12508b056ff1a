"""The registries' records when replicas share a home on PostgreSQL: each registered version's description and each
registry's active version with its promotion history. The versions' files stay on the shared home; every replica
reads which one serves from here, so a promotion made anywhere is seen everywhere with the same answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistant.store.database import Repository
from assistant.store.schema import RegistryStateRow, RegistryVersionRow

# (active version or None, promotion history oldest first)
State = tuple[str | None, list[str]]


class RegistryRepository(Repository):
    """The records of every registry on this database, each named by its home's id and its folder
    (`<home id>/sentiment-registry`)."""

    def versions(self, registry: str) -> list[dict[str, Any]]:
        with self.session() as session:
            rows = session.scalars(select(RegistryVersionRow).where(RegistryVersionRow.registry_name == registry))
            return [dict(row.record) for row in rows]

    def version(self, registry: str, version_id: str) -> dict[str, Any] | None:
        with self.session() as session:
            row = session.get(RegistryVersionRow, (registry, version_id))
            return None if row is None else dict(row.record)

    def add_version(self, registry: str, record: dict[str, Any]) -> bool:
        """Record a new version; False when `record["id"]` is already taken (another process registered it)."""
        try:
            with self.session() as session, session.begin():
                session.add(RegistryVersionRow(registry_name=registry, version_id=record["id"], record=record))
        except IntegrityError:
            return False
        return True

    def state(self, registry: str) -> State | None:
        """The active version and history, or None before anything was recorded for `registry`."""
        with self.session() as session:
            row = session.get(RegistryStateRow, registry)
            return None if row is None else (row.active, list(row.history))

    def change_state(self, registry: str, change: Callable[[State], State]) -> State:
        """Apply `change` to the state with the row locked, so concurrent promotions apply one after the other."""
        for _ in range(2):  # a first write may race another process's first write: then lock the row it made
            try:
                with self.session() as session, session.begin():
                    row = session.scalars(select(RegistryStateRow).where(RegistryStateRow.registry_name == registry)
                                          .with_for_update()).one_or_none()
                    active, history = change((None, []) if row is None else (row.active, list(row.history)))
                    if row is None:
                        session.add(RegistryStateRow(registry_name=registry, active=active, history=history))
                    else:
                        row.active, row.history = active, history
                    return active, history
            except IntegrityError:
                continue
        raise RuntimeError(f"the state of {registry} could not be written")

    def import_once(self, registry: str, versions: list[dict[str, Any]], state: State) -> bool:
        """Copy a registry's file records in (a home that moved to PostgreSQL) unless it has any record here yet;
        True when this call imported them."""
        try:
            with self.session() as session, session.begin():
                if session.get(RegistryStateRow, registry) is not None:
                    return False
                known = set(session.scalars(select(RegistryVersionRow.version_id)
                                            .where(RegistryVersionRow.registry_name == registry)))
                session.add_all(RegistryVersionRow(registry_name=registry, version_id=v["id"], record=v)
                                for v in versions if v["id"] not in known)
                session.add(RegistryStateRow(registry_name=registry, active=state[0], history=state[1]))
        except IntegrityError:  # another replica imported them at the same moment
            return False
        return True
