"""Who may call what, how often and how much: API keys (`Authorization: Bearer sk_…` or `X-API-Key`) on the
OpenAI-compatible and conversation APIs (scope `api` or `admin`) and on the sentiment API (`admin`); a public widget
key is never enough. Per-key and per-address rate limits, a request body limit, CORS from each key's origins.

Addresses: a request from a trusted proxy (`auth.trusted_proxies`, loopback by default) is counted under the address
its `X-Forwarded-For` names; one from a trusted proxy without that header (local tools, benchmarks) is not limited."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from assistant.api.rate_limit import RateLimiter
from assistant.store.records import KeyRecord

KEYED = ("/v1/", "/api/conversations", "/api/messages")
ADMIN = ("/api/sentiment",)
LIMITED = ("/v1/", "/api/", "/sources/")
KEY_HINT = "make one with `assistant keys create --scope api`"


def refuse(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


def client_address(request: Request, trusted: set[str]) -> str | None:
    """The address to count a request under; None for a local tool talking to us directly."""
    peer = request.client.host if request.client else "unknown"
    if peer not in trusted:
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",") if a.strip()]
    untrusted = [a for a in forwarded if a not in trusted]
    return untrusted[-1] if untrusted else None


def _too_many(wait: float, who: str) -> JSONResponse:
    return refuse(429, f"too many requests from this {who}: retry in {wait:.0f} s", "rate_limit_error",
                  {"Retry-After": str(max(1, round(wait)))})


def install_access_control(app: FastAPI) -> None:
    service = app.state.service
    store, auth = service.store, service.settings.auth
    by_key, by_address = RateLimiter(auth.key_requests_per_minute), RateLimiter(auth.ip_requests_per_minute)
    logins = RateLimiter(auth.login_attempts_per_minute)
    trusted = set(auth.trusted_proxies)

    async def preflight(request: Request) -> Response:
        origin = (request.headers.get("origin") or "").lower()
        if origin and origin in await asyncio.to_thread(store.keys.api_origins):
            return Response(status_code=204, headers={
                "Access-Control-Allow-Origin": origin, "Vary": "Origin", "Access-Control-Max-Age": "600",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "authorization, content-type, x-api-key"})
        return refuse(403, f"origin {origin or '(none)'} is not allowed by any API key "
                           "(`assistant keys create --scope api --origin ...`)", "permission_error")

    async def check_key(request: Request, admin: bool) -> KeyRecord | JSONResponse:
        key = presented_key(request)
        if key is None:
            return refuse(401, f"this API needs a key: send 'Authorization: Bearer sk_…' ({KEY_HINT})",
                          "authentication_error")
        record = await asyncio.to_thread(store.keys.api_key, key)
        if record is None:
            return refuse(401, "unknown or revoked API key", "authentication_error")
        if record.scope == "widget":
            return refuse(403, f"a public widget key cannot call the API ({KEY_HINT})", "permission_error")
        if admin and record.scope != "admin":
            return refuse(403, "this needs an admin key (`assistant keys create --scope admin`)", "permission_error")
        origin = (request.headers.get("origin") or "").lower()
        if origin and origin not in record.origins:
            return refuse(403, f"origin {origin} may not use this key", "permission_error")
        allowed, wait = by_key.allow(record.prefix)
        return record if allowed else _too_many(wait, "key")

    @app.middleware("http")
    async def access_control(request: Request, call_next):
        path, method = request.url.path, request.method
        keyed, admin = path.startswith(KEYED) or path == "/v1", path.startswith(ADMIN)
        if method == "OPTIONS" and (keyed or admin):
            return await preflight(request)
        address = client_address(request, trusted)
        if address is not None and path.startswith(LIMITED):
            allowed, wait = by_address.allow(address)
            if not allowed:
                return _too_many(wait, "address")
        if address is not None and method == "POST" and path.rstrip("/") == "/operator/login":
            allowed, wait = logins.allow(address)
            if not allowed:
                return _too_many(wait, "address (sign-in attempts)")
        if path.startswith(LIMITED) and method in ("POST", "PUT", "PATCH"):
            length = request.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > auth.max_body_bytes):
                return refuse(413, f"the request body is larger than {auth.max_body_bytes} bytes", "invalid_request")
            if length is None and "chunked" in request.headers.get("transfer-encoding", ""):
                return refuse(411, "send the request body with a Content-Length", "invalid_request")
        record = None
        if (keyed or admin) and auth.required:
            record = await check_key(request, admin)
            if isinstance(record, JSONResponse):
                return record
            request.state.api_key = record
        response = await call_next(request)
        origin = (request.headers.get("origin") or "").lower()
        if record is not None and origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response
