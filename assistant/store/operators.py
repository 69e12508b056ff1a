"""Operator accounts (scrypt password hashes) and their console sign-in sessions."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from assistant.passwords import hash_password, verify_password
from assistant.store.database import Repository
from assistant.store.errors import (
    OperatorError,
)
from assistant.store.keys import key_digest
from assistant.store.records import OperatorIdentity, OperatorSessionState
from assistant.store.schema import (
    Operator,
    OperatorSession,
    as_utc,
    utcnow,
)

TOUCH_EVERY = timedelta(seconds=60)  # last use is written at most once a minute per session


class OperatorRepository(Repository):
    """`store.operators`."""

    def create_operator(self, username: str, password: str, display_name: str | None = None) -> None:
        if not username.strip() or len(password) < 8:
            raise OperatorError("an operator needs a username and a password of at least 8 characters")
        try:
            with self.session() as session, session.begin():
                session.add(Operator(username=username.strip(), display_name=display_name or username.strip(),
                                     password_hash=hash_password(password)))
        except IntegrityError as exc:
            raise OperatorError(f"operator '{username}' already exists") from exc

    def verify_operator(self, username: str, password: str) -> OperatorIdentity | None:
        """The operator's name when the password matches an enabled account, else None. The password is hashed once
        either way (an unknown or disabled account too), so the time taken does not tell which accounts exist."""
        with self.session() as session:
            operator = session.scalars(select(Operator).where(Operator.username == username)).first()
            matches = verify_password(password, operator.password_hash if operator else None)
            if operator is None or operator.disabled or not matches:
                return None
            return OperatorIdentity(username=operator.username, display_name=operator.display_name)

    def operator_count(self) -> int:
        with self.session() as session:
            return session.scalar(select(func.count(Operator.id))) or 0

    def open_operator_session(self, username: str) -> str:
        """A new session for an enabled operator; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        with self.session() as session, session.begin():
            operator = session.scalars(select(Operator).where(Operator.username == username,
                                                              Operator.disabled.is_(False))).first()
            if operator is None:
                raise LookupError(f"no enabled operator '{username}'")
            session.add(OperatorSession(digest=key_digest(token), operator_id=operator.id))
        return token

    def operator_session(self, token: str, idle: timedelta, longest: timedelta) -> OperatorSessionState | None:
        """The signed-in operator while the session is open; `expired` (and no operator) when the token was a session
        that has ended (so the console can say so); None for a token that never was a session."""
        now = utcnow()
        with self.session() as session, session.begin():
            row = session.execute(select(OperatorSession, Operator).join(Operator).where(
                OperatorSession.digest == key_digest(token))).first()
            if row is None:
                return None
            record, operator = row
            last_seen = as_utc(record.last_seen_at)
            if (record.ended_at is not None or operator.disabled or now - last_seen > idle
                    or now - as_utc(record.created_at) > longest):
                if record.ended_at is None:
                    record.ended_at = now
                return OperatorSessionState(operator=None, expired=True)
            if now - last_seen > TOUCH_EVERY:
                record.last_seen_at = now
            return OperatorSessionState(operator=OperatorIdentity(username=operator.username,
                                                                  display_name=operator.display_name),
                                        expired=False)

    def end_operator_sessions(self, token: str | None = None, username: str | None = None) -> int:
        """Sign out one session (by token) or every session of an operator; returns how many ended."""
        query = update(OperatorSession).where(OperatorSession.ended_at.is_(None)).values(ended_at=utcnow())
        if token is not None:
            query = query.where(OperatorSession.digest == key_digest(token))
        if username is not None:
            query = query.where(OperatorSession.operator_id.in_(
                select(Operator.id).where(Operator.username == username)))
        with self.session() as session, session.begin():
            return session.execute(query).rowcount
