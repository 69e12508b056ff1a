"""Password hashing for operator accounts: scrypt from the standard library, salted, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

_N, _R, _P = 2**14, 8, 1
# checked when there is no account to check against, so that a sign-in takes as long either way (no password
# matches it: its digest is not an scrypt output that anyone knows an input for)
NO_ACCOUNT = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 64}"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether `password` matches the `stored` hash; with None (no such account) the same work is done against
    `NO_ACCOUNT` and the answer is False."""
    if stored is None:
        verify_password(password, NO_ACCOUNT)
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate.hex(), digest)
