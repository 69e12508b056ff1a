"""What replicas on one database agree on: leases (one holder at a time for a piece of shared work, taken over when
its holder stops renewing) and rate-limit buckets. Every time is read from the database's clock inside the statement
that uses it, so replicas whose clocks disagree still agree on who holds what and how many requests are left."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement

from assistant.store.database import Repository
from assistant.store.schema import LeaseRow, LeaseTermRow, RateBucketRow

UNIX_EPOCH_JULIAN_DAY = 2440587.5


def database_seconds(dialect: str) -> ColumnElement:
    """Now by the database's clock, in seconds since the epoch (PostgreSQL: `clock_timestamp()`, not the
    transaction's start)."""
    if dialect == "postgresql":
        return func.extract("epoch", func.clock_timestamp())
    return (func.julianday("now") - UNIX_EPOCH_JULIAN_DAY) * 86400.0


@dataclass(frozen=True)
class LeaseTerm:
    """One holder's uninterrupted hold of a lease (`expires_s`: until when, as last renewed)."""

    name: str
    term: int
    holder: str
    started_s: float
    expires_s: float


class CoordinationRepository(Repository):
    """Leases and shared rate limits (see the module docstring)."""

    def _insert(self, table):
        dialect = self.database.engine.dialect.name
        return (postgresql if dialect == "postgresql" else sqlite).insert(table)

    def _now(self) -> ColumnElement:
        return database_seconds(self.database.engine.dialect.name)

    def now_s(self) -> float:
        """The database's clock, in seconds since the epoch."""
        with self.session() as session:
            return float(session.scalar(select(self._now())))

    # --- leases ---

    def acquire(self, name: str, holder: str, ttl_s: float) -> int | None:
        """Take `name` for `ttl_s` seconds, or renew it if `holder` has it: the term held, or None while another
        holder's lease has not expired. A holder that renews after expiry keeps its term only if nobody took it."""
        now = self._now()
        statement = self._insert(LeaseRow).values(name=name, holder=holder, term=1, expires_s=now + ttl_s)
        statement = statement.on_conflict_do_update(
            index_elements=[LeaseRow.name],
            set_={"holder": holder, "expires_s": now + ttl_s,
                  "term": case((LeaseRow.holder == holder, LeaseRow.term), else_=LeaseRow.term + 1)},
            where=(LeaseRow.holder == holder) | (LeaseRow.expires_s < now),
        ).returning(LeaseRow.term, LeaseRow.expires_s)
        with self.session() as session, session.begin():
            row = session.execute(statement).first()
            if row is None:
                return None
            term, expires_s = int(row[0]), float(row[1])
            renewed = session.execute(update(LeaseTermRow).where(
                LeaseTermRow.name == name, LeaseTermRow.term == term, LeaseTermRow.holder == holder,
            ).values(expires_s=expires_s)).rowcount
            if not renewed:
                session.add(LeaseTermRow(name=name, term=term, holder=holder, started_s=expires_s - ttl_s,
                                         expires_s=expires_s))
            return term

    def holds(self, name: str, holder: str) -> bool:
        """Whether `holder` holds `name` now (checked before each unit of work: a holder that stalled past its
        lease stops, whoever took over goes on)."""
        with self.session() as session:
            return session.scalar(select(literal(True)).where(
                LeaseRow.name == name, LeaseRow.holder == holder, LeaseRow.expires_s >= self._now())) is not None

    def release(self, name: str, holder: str) -> None:
        """End `holder`'s lease now (a clean stop: another replica takes the work at once)."""
        now = self._now()
        with self.session() as session, session.begin():
            term = session.scalar(update(LeaseRow).where(LeaseRow.name == name, LeaseRow.holder == holder)
                                  .values(expires_s=now).returning(LeaseRow.term))
            if term is not None:
                session.execute(update(LeaseTermRow).where(
                    LeaseTermRow.name == name, LeaseTermRow.term == term).values(expires_s=now))

    def holder(self, name: str) -> str | None:
        """Who holds `name` now, or None."""
        with self.session() as session:
            return session.scalar(select(LeaseRow.holder).where(LeaseRow.name == name,
                                                                LeaseRow.expires_s >= self._now()))

    def live_holders(self, prefix: str) -> dict[str, str]:
        """Unexpired leases whose names start with `prefix`: name -> holder."""
        with self.session() as session:
            rows = session.execute(select(LeaseRow.name, LeaseRow.holder).where(
                LeaseRow.name.startswith(prefix, autoescape=True), LeaseRow.expires_s >= self._now())).all()
        return dict(rows)

    def expired(self, names: list[str]) -> set[str]:
        """Which of `names` are leases that exist and have expired (their holder stopped renewing)."""
        if not names:
            return set()
        with self.session() as session:
            return set(session.scalars(select(LeaseRow.name).where(
                LeaseRow.name.in_(names), LeaseRow.expires_s < self._now())))

    def terms(self, name: str) -> list[LeaseTerm]:
        """Every term of `name`, in order."""
        with self.session() as session:
            rows = session.scalars(select(LeaseTermRow).where(LeaseTermRow.name == name)
                                   .order_by(LeaseTermRow.term)).all()
        return [LeaseTerm(r.name, r.term, r.holder, r.started_s, r.expires_s) for r in rows]

    # --- rate limits ---

    def take(self, who: str, per_minute: int) -> tuple[bool, float]:
        """Take one request from `who`'s bucket (`per_minute` on average, bursts up to as many): whether it may go,
        and if not, the seconds until it may. One statement: concurrent replicas queue on the bucket's row."""
        rate, burst, now = per_minute / 60.0, float(per_minute), self._now()
        refilled = RateBucketRow.tokens + (now - RateBucketRow.updated_s) * rate
        refilled = case((refilled > burst, burst), else_=refilled)
        statement = self._insert(RateBucketRow).values(who=who, tokens=burst - 1, updated_s=now, allowed=True)
        statement = statement.on_conflict_do_update(
            index_elements=[RateBucketRow.who],
            set_={"tokens": case((refilled >= 1, refilled - 1), else_=refilled), "updated_s": now,
                  "allowed": refilled >= 1},
        ).returning(RateBucketRow.tokens, RateBucketRow.allowed)
        with self.session() as session, session.begin():
            tokens, allowed = session.execute(statement).one()
        return bool(allowed), 0.0 if allowed else (1 - float(tokens)) / rate

    def forget_full_buckets(self, idle_s: float = 3600) -> int:
        """Drop buckets untouched for `idle_s` seconds (full again by now): how many."""
        with self.session() as session, session.begin():
            return session.execute(delete(RateBucketRow).where(
                RateBucketRow.updated_s < self._now() - idle_s)).rowcount
