"""Who may call what, how often and how much: API keys (`Authorization: Bearer sk_…` or `X-API-Key`) on the
OpenAI-compatible and conversation APIs (scope `api` or `admin`) and on the sentiment API (`admin`); a public widget
key is never enough. Per-key and per-address rate limits (shared by every replica on PostgreSQL), CORS from each
key's origins, and on every route (API and pages) a body limit that counts what arrives (`BodyLimit`); the chat
pages take no uploads.

Addresses: a request from a trusted proxy (`auth.trusted_proxies`, addresses or networks; loopback by default) is
counted under the address its `X-Forwarded-For` names; one from a trusted proxy without that header (local tools,
benchmarks) is not limited."""

from __future__ import annotations

import asyncio
import ipaddress

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.api.rate_limit import rate_limiter
from assistant.api.request_hook import RequestHook, ResponseHeaders
from assistant.store.records import KeyRecord

KEYED = ("/v1/", "/api/conversations", "/api/messages")
ADMIN = ("/api/sentiment", "/api/insights")
LIMITED = ("/v1/", "/api/", "/sources/")
KEY_HINT = "make one with `assistant keys create --scope api`"
UPLOADS = ("/gradio_api/upload", "/gradio_api/process_recording")  # Gradio's routes that take files
NO_UPLOADS = ("/chat/",)  # the chat pages (/chat, /chat/zh) have no file input


def refuse(status: int, message: str, kind: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("x-api-key") or None


class TrustedProxies:
    """`auth.trusted_proxies`: addresses or networks (`10.0.0.0/8`: an ingress controller's pods)."""

    def __init__(self, entries: list[str]):
        self.networks, self.names = [], set()
        for entry in entries:
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:  # a peer the server names otherwise (a test client, a socket)
                self.names.add(entry)

    def __contains__(self, address: str) -> bool:
        if address in self.names:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_address(request: Request, trusted: TrustedProxies) -> str | None:
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


async def take(limiter, who: str) -> tuple[bool, float]:
    """One request from `who`'s bucket; a shared bucket is a database statement, run off the event loop."""
    return await asyncio.to_thread(limiter.allow, who) if limiter.shared else limiter.allow(who)


def install_access_control(app: FastAPI) -> None:
    service = app.state.service
    store, auth = service.store, service.settings.auth
    by_key = rate_limiter(store, "key", auth.key_requests_per_minute)
    by_address = rate_limiter(store, "address", auth.ip_requests_per_minute)
    logins = rate_limiter(store, "sign-in", auth.login_attempts_per_minute)
    trusted = TrustedProxies(auth.trusted_proxies)

    def address_wait(request: Request) -> float:
        """For pages whose events are not routes of ours (the chat page's answers over Gradio's queue): count one
        request of this address; 0 if it may go now, else the seconds to wait."""
        address = client_address(request, trusted)
        return 0.0 if address is None else by_address.allow(address)[1]

    app.state.address_wait = address_wait

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
        allowed, wait = await take(by_key, record.prefix)
        return record if allowed else _too_many(wait, "key")

    async def access_control(request: Request) -> Response | ResponseHeaders:
        path, method = request.scope["path"], request.method
        keyed, admin = path.startswith(KEYED) or path == "/v1", path.startswith(ADMIN)
        if method == "OPTIONS" and (keyed or admin):
            return await preflight(request)
        address = client_address(request, trusted)
        if address is not None and path.startswith(LIMITED):
            allowed, wait = await take(by_address, address)
            if not allowed:
                return _too_many(wait, "address")
        if address is not None and method == "POST" and path.rstrip("/") == "/operator/login":
            allowed, wait = await take(logins, address)
            if not allowed:
                return _too_many(wait, "address (sign-in attempts)")
        if (path.startswith(LIMITED) and method in ("POST", "PUT", "PATCH") and "content-length" not in request.headers
                and "chunked" in request.headers.get("transfer-encoding", "").lower()):
            return refuse(411, "send the request body with a Content-Length", "invalid_request")
        headers = ResponseHeaders()
        if path.startswith(LIMITED):  # conversations and answers are nobody's to keep in a cache
            headers.default["Cache-Control"] = "no-store"
        if (keyed or admin) and auth.required:
            record = await check_key(request, admin)
            if isinstance(record, JSONResponse):
                return record
            request.state.api_key = record
            origin = (request.headers.get("origin") or "").lower()
            if origin:
                headers.set.update({"Access-Control-Allow-Origin": origin, "Vary": "Origin"})
        return headers

    app.add_middleware(RequestHook, hook=access_control)
    app.add_middleware(BodyLimit, max_body=auth.max_body_bytes, max_upload=auth.max_upload_bytes)
    app.add_middleware(NoForwardedHost)  # outermost


class NoForwardedHost:
    """`X-Forwarded-Host` is dropped from every request: Gradio would build its pages' script and API addresses,
    and redirects, from it (a cached page could send visitors elsewhere). Pages name their own host (`Host`; behind
    a proxy, let it pass the `Host` the browser used)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k.lower() != b"x-forwarded-host"]}
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised from `receive` when the body read so far is over its limit."""


class BodyLimit:
    """Request bodies on every route, counted as they arrive (whatever Content-Length or Transfer-Encoding say): 413
    past `max_body` (`max_upload` for a Gradio upload), before the rest reaches the app; uploads to the chat: 403.
    Pure ASGI, so that it sees a streamed body chunk by chunk."""

    def __init__(self, app: ASGIApp, max_body: int, max_upload: int) -> None:
        self.app, self.max_body, self.max_upload = app, max_body, max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        upload = path.rstrip("/").endswith(UPLOADS)
        if upload and path.startswith(NO_UPLOADS):
            return await refuse(403, "the chat page takes no file uploads", "permission_error")(scope, receive, send)
        limit = self.max_upload if upload else self.max_body

        def too_large():
            return refuse(413, f"the request body is larger than {limit} bytes", "invalid_request")

        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await too_large()(scope, receive, send)
        received, over, started = 0, False, False

        async def counted() -> Message:
            nonlocal received, over
            if over:
                raise BodyTooLarge
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                over = True
                raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # whatever the app made of the cut body: the 413 goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:  # BodyTooLarge, or whatever the app made of it
            if not over or started:
                raise
        if over and not started:
            await too_large()(scope, receive, send)
