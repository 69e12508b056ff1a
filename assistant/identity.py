"""Signed customer identity for the widget: the company's website, where the customer is signed in, signs who they
are with the widget key's identity secret, so "my orders" means that customer's orders and nobody can claim another
customer's identity by typing it.

Token: `base64url(JSON claims) "." base64url(HMAC-SHA256(secret, first part))`, claims `{"sub": customer id,
"exp": unix seconds, ...}`. Each widget key has its own secret, derived from this deployment's identity secret
(`$ASSISTANT_IDENTITY_SECRET`, else a random one kept in HOME/identity.secret), so `assistant keys identity-secret
PREFIX` can show it at any time and revoking the key ends it too.

Signing on the company's server (Python; any language with HMAC-SHA256 does the same):

    payload = base64.urlsafe_b64encode(json.dumps({"sub": "c-1003", "exp": int(time.time()) + 3600}).encode())
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), payload.rstrip(b"="), "sha256").digest())
    token = payload.rstrip(b"=").decode() + "." + signature.rstrip(b"=").decode()
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from assistant.errors import AssistantError

MAX_TTL_S = 24 * 3600  # a token meant to live longer than a day is refused: it is a session, not a password
SECRET_ENV = "ASSISTANT_IDENTITY_SECRET"


class IdentityError(AssistantError, ValueError):
    """A token that proves nothing: malformed, forged, expired, or for too long."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def deployment_secret(home: Path) -> bytes:
    """`$ASSISTANT_IDENTITY_SECRET`, else HOME/identity.secret (made once, readable by this user only)."""
    if os.environ.get(SECRET_ENV):
        return os.environ[SECRET_ENV].encode()
    path = Path(home).expanduser() / "identity.secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def key_secret(deployment: bytes, key_prefix: str) -> str:
    """The identity secret of one widget key (what the company's server signs with)."""
    return _b64(hmac.new(deployment, f"widget-identity:{key_prefix}".encode(), hashlib.sha256).digest())


def sign_identity(secret: str, customer_id: str, ttl_s: int = 3600, now: float | None = None, **claims) -> str:
    payload = _b64(json.dumps({"sub": customer_id, "exp": int((now or time.time()) + ttl_s), **claims},
                              separators=(",", ":")).encode())
    return payload + "." + _b64(hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest())


def verify_identity(token: str, secret: str, now: float | None = None) -> dict[str, str]:
    """The verified claims as `{"customer_id": sub, ...}`; `IdentityError` says why a token proves nothing."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature:
        raise IdentityError("malformed identity token: expected PAYLOAD.SIGNATURE")
    expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    try:
        given = _unb64(signature)
        claims = json.loads(_unb64(payload))
    except (ValueError, json.JSONDecodeError):
        raise IdentityError("malformed identity token: not base64url JSON") from None
    if not hmac.compare_digest(expected, given):
        raise IdentityError("identity token signature does not match this widget key's identity secret")
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdentityError("identity token has no customer id (sub)")
    expires = claims.get("exp")
    now = now or time.time()
    if not isinstance(expires, int | float) or expires <= now:
        raise IdentityError("identity token expired: the website must sign a fresh one")
    if expires - now > MAX_TTL_S:
        raise IdentityError(f"identity token lives longer than {MAX_TTL_S // 3600} h: sign shorter-lived ones")
    extra = {k: str(v) for k, v in claims.items() if k not in ("sub", "exp") and isinstance(v, str | int)}
    return {"customer_id": claims["sub"], **extra}
