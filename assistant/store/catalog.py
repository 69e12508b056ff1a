"""The catalogue and what customers did with its items: `store.catalog` and `store.interactions`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select

from assistant.recommend.catalog import CatalogItem
from assistant.recommend.interactions import Interaction
from assistant.store.database import Repository
from assistant.store.records import utc
from assistant.store.schema import CatalogItemRow, InteractionRow, utcnow


@dataclass(frozen=True)
class CatalogIngestReport:
    added: int
    updated: int
    unchanged: int
    removed: int


def _item(row: CatalogItemRow) -> CatalogItem:
    return CatalogItem(id=row.id, title=row.title, description=row.description, category=row.category,
                       price=row.price, currency=row.currency, attributes=dict(row.attributes or {}),
                       available=row.available, url=row.url, image=row.image)


class CatalogRepository(Repository):
    """`store.catalog`: items by id; an ingest adds new ids, rewrites changed ones and leaves equal ones alone."""

    def upsert(self, items: list[CatalogItem], prune: bool = False) -> CatalogIngestReport:
        """Store `items` in one transaction; `prune` removes stored items the list does not name."""
        added = updated = unchanged = removed = 0
        with self.session() as session, session.begin():
            stored = {row.id: row for row in session.scalars(select(CatalogItemRow))}
            for item in items:
                row = stored.get(item.id)
                digest = item.content_hash
                if row is not None and row.content_hash == digest:
                    unchanged += 1
                    continue
                values = item.as_dict() | {"content_hash": digest, "updated_at": utcnow()}
                if row is None:
                    session.add(CatalogItemRow(**values))
                    added += 1
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
                    updated += 1
            if prune:
                gone = set(stored) - {item.id for item in items}
                if gone:
                    session.execute(delete(CatalogItemRow).where(CatalogItemRow.id.in_(gone)))
                removed = len(gone)
        return CatalogIngestReport(added, updated, unchanged, removed)

    def items(self) -> list[CatalogItem]:
        with self.session() as session:
            return [_item(row) for row in session.scalars(select(CatalogItemRow).order_by(CatalogItemRow.id))]

    def get(self, ids: Iterable[str]) -> dict[str, CatalogItem]:
        ids = list(ids)
        if not ids:
            return {}
        with self.session() as session:
            return {row.id: _item(row) for row in session.scalars(select(CatalogItemRow)
                                                                 .where(CatalogItemRow.id.in_(ids)))}

    def ids(self) -> set[str]:
        with self.session() as session:
            return set(session.scalars(select(CatalogItemRow.id)))

    def version(self) -> tuple[int, str]:
        """(item count, last change): a cheap check of whether an index built from the items is stale."""
        with self.session() as session:
            count, last = session.execute(select(func.count(CatalogItemRow.id),
                                                 func.max(CatalogItemRow.updated_at))).one()
        return count or 0, str(utc(last)) if last else ""


def _interaction(row: InteractionRow) -> Interaction:
    return Interaction(row.customer, row.item_id, row.kind, utc(row.time).timestamp(), row.rating)


class InteractionRepository(Repository):
    """`store.interactions`."""

    def add_many(self, rows: list[Interaction], source: str = "import") -> int:
        """Store the rows not stored before (same customer, item, kind and second): importing a file twice adds
        nothing the second time. Returns how many were new."""
        def key(customer: str, item: str, kind: str, seconds: float) -> tuple:
            return customer, item, kind, round(seconds)

        with self.session() as session, session.begin():
            customers = sorted({r.customer for r in rows})
            stored = set()
            for start in range(0, len(customers), 500):
                stored |= {key(c, i, k, utc(t).timestamp()) for c, i, k, t in session.execute(
                    select(InteractionRow.customer, InteractionRow.item_id, InteractionRow.kind, InteractionRow.time)
                    .where(InteractionRow.customer.in_(customers[start:start + 500])))}
            new = []
            for r in rows:
                if key(r.customer, r.item, r.kind, r.time) not in stored:
                    stored.add(key(r.customer, r.item, r.kind, r.time))
                    new.append(r)
            session.add_all(InteractionRow(customer=r.customer, item_id=r.item, kind=r.kind, rating=r.rating,
                                           time=datetime.fromtimestamp(r.time, UTC), source=source) for r in new)
        return len(new)

    def record(self, customer: str, item_ids: list[str], kind: str, conversation_id: str | None = None,
               message_id: int | None = None) -> None:
        """What the product saw a customer do (shown, click, dismiss, purchase) with items, now."""
        with self.session() as session, session.begin():
            session.add_all(InteractionRow(customer=customer, item_id=item, kind=kind, source="chat",
                                           conversation_id=conversation_id, message_id=message_id)
                            for item in item_ids)

    def all(self) -> list[Interaction]:
        """Every interaction, oldest first (ties: in the order stored)."""
        with self.session() as session:
            rows = session.scalars(select(InteractionRow).order_by(InteractionRow.time, InteractionRow.id))
            return [_interaction(row) for row in rows]

    def of_customer(self, customer: str, limit: int = 200) -> list[Interaction]:
        """The customer's latest `limit` interactions, oldest first."""
        with self.session() as session:
            rows = list(session.scalars(select(InteractionRow).where(InteractionRow.customer == customer)
                                        .order_by(InteractionRow.time.desc(), InteractionRow.id.desc())
                                        .limit(limit)))
        return [_interaction(row) for row in reversed(rows)]

    def shown(self, conversation_id: str, message_id: int, kind: str = "shown") -> list[str]:
        """The items a recommendation answer showed (or, with `kind`, those clicked or dismissed there)."""
        with self.session() as session:
            return list(session.scalars(select(InteractionRow.item_id).where(
                InteractionRow.conversation_id == conversation_id, InteractionRow.message_id == message_id,
                InteractionRow.kind == kind).order_by(InteractionRow.id)))

    def outcomes(self) -> list[tuple[str, int, list[str], list[str]]]:
        """(conversation, answer, items clicked, items dismissed) of each recommendation answer with both."""
        with self.session() as session:
            rows = session.execute(select(InteractionRow.conversation_id, InteractionRow.message_id,
                                          InteractionRow.kind, InteractionRow.item_id)
                                   .where(InteractionRow.kind.in_(("click", "dismiss")),
                                          InteractionRow.message_id.is_not(None))
                                   .order_by(InteractionRow.id)).all()
        found: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
        for conversation_id, message_id, kind, item in rows:
            clicked, dismissed = found.setdefault((conversation_id, message_id), ([], []))
            chosen = clicked if kind == "click" else dismissed
            if item not in chosen:
                chosen.append(item)
        return [(c, m, clicked, [d for d in dismissed if d not in clicked])
                for (c, m), (clicked, dismissed) in found.items() if clicked and set(dismissed) - set(clicked)]

    def counts(self) -> dict[str, int]:
        with self.session() as session:
            return dict(session.execute(select(InteractionRow.kind, func.count(InteractionRow.id))
                                        .group_by(InteractionRow.kind)).all())

    def erase_customer(self, customer: str) -> int:
        with self.session() as session, session.begin():
            return session.execute(delete(InteractionRow).where(InteractionRow.customer == customer)).rowcount or 0
