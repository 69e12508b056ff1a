"""API keys (secret, scoped) and widget keys (public, per website): only their digests are stored."""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlsplit

from sqlalchemy import select

from assistant.store.database import Repository
from assistant.store.errors import (
    KeyProblem,
)
from assistant.store.records import KeyRecord
from assistant.store.schema import (
    ApiKey,
    as_utc,
    utcnow,
)

API_SCOPES = ("api", "feedback:write", "admin")  # secret keys; `widget` keys are public


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def normalise_origin(origin: str) -> str:
    """`https://shop.example.com` (scheme + host + port, no path); a bad origin is refused with the reason."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise KeyProblem(f"origin {origin!r} must look like https://shop.example.com")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise KeyProblem(f"origin {origin!r} must not have a path: use {parts.scheme}://{parts.netloc}")
    return f"{parts.scheme}://{parts.netloc}".lower()


def _key_record(row: ApiKey) -> KeyRecord:
    return KeyRecord(id=row.id, prefix=row.prefix, scope=row.scope, name=row.name,
                     origins=list(row.allowed_origins), created_at=as_utc(row.created_at),
                     revoked=row.revoked_at is not None)


class KeyRepository(Repository):
    """`store.keys`."""

    def create_widget_key(self, origins: list[str], name: str | None = None) -> str:
        """A new public widget key for these origins; returns the key (only its digest is stored)."""
        allowed = sorted({normalise_origin(o) for o in origins})
        if not allowed:
            raise KeyProblem("a widget key needs at least one --origin (the website that embeds the widget)")
        return self._add_key("pk_" + secrets.token_urlsafe(24), "widget", name or allowed[0], allowed)

    def create_api_key(self, scope: str = "api", name: str | None = None, origins: list[str] = ()) -> str:
        """A secret key for the API: scope `api` (the OpenAI-compatible and conversation APIs, on its own
        conversations), `feedback:write` (the same, and its feedback may correct answers) or `admin` (every
        conversation, and the sentiment data). `origins`: browser apps allowed to call with it (CORS). Returns the key,
        stored as a digest."""
        if scope not in API_SCOPES:
            raise KeyProblem(f"scope {scope!r} is not one of: {', '.join(API_SCOPES)} (widget keys: --origin without "
                             "--scope)")
        allowed = sorted({normalise_origin(o) for o in origins})
        return self._add_key("sk_" + secrets.token_urlsafe(32), scope, name or f"{scope} key", allowed)

    def _add_key(self, key: str, scope: str, name: str, origins: list[str]) -> str:
        with self.session() as session, session.begin():
            session.add(ApiKey(digest=key_digest(key), prefix=key[:10], scope=scope, name=name,
                               allowed_origins=origins))
        return key

    def api_key(self, key: str) -> KeyRecord | None:
        """Any live key's record (`scope`, `prefix`, `origins`), or None for an unknown or revoked one."""
        with self.session() as session:
            row = session.scalars(select(ApiKey).where(ApiKey.digest == key_digest(key),
                                                       ApiKey.revoked_at.is_(None))).first()
            if row is None:
                return None
            return _key_record(row)

    def api_origins(self) -> set[str]:
        """The origins any live API key lets browsers call from (for CORS preflights, which carry no key)."""
        with self.session() as session:
            rows = session.scalars(select(ApiKey.allowed_origins).where(ApiKey.scope.in_(API_SCOPES),
                                                                        ApiKey.revoked_at.is_(None)))
            return {origin for origins in rows for origin in origins}

    def widget_key(self, key: str) -> KeyRecord | None:
        """The key's record (name, allowed origins) when it is a live widget key."""
        record = self.api_key(key)
        return record if record is not None and record.scope == "widget" else None

    def list_keys(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        with self.session() as session:
            return [_key_record(k) for k in session.scalars(select(ApiKey).order_by(ApiKey.id))]

    def revoke_key(self, prefix: str) -> int:
        """Revoke the keys starting with `prefix`; returns how many."""
        with self.session() as session, session.begin():
            rows = session.scalars(select(ApiKey).where(ApiKey.prefix == prefix[:10], ApiKey.revoked_at.is_(None)))
            count = 0
            for row in rows:
                row.revoked_at = utcnow()
                count += 1
            return count
