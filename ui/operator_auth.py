"""Signing in to the operator console and the sentiment view: a login page of our own, sessions in the store (an
HttpOnly cookie holds a random token, the store only its digest), so sign-ins survive a server restart and end when
idle or too old.

Gradio asks `session_user(...)` who is calling. A call made with a session that has ended still reaches the console's
handlers, with an empty user, so they can say "your session has ended" while what the operator typed stays put
(refusing Gradio's own calls would make its page reload and drop the draft); uploads, files and the page itself are
refused.

Every response under the views may not be framed by another site, redirects name no host, requests that change
something must come from this server's own pages (`Origin`), and signing out is a POST carrying a token bound to the
session. Sign-in attempts are paused per username after failures (`assistant.operators.SignInBackoff`)."""

from __future__ import annotations

import hashlib
import hmac
import html
import math
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from assistant.conversation import ConversationService
from assistant.operators import TooManyAttempts
from assistant.store.records import OperatorSessionState

COOKIE = "assistant_operator"
PATH = "/operator"
SIGNED_IN_VIEWS = ("/operator", "/sentiment", "/insights")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FRAMING = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
# the console's own calls that still reach its handlers after the session ended (they say so, the draft stays)
ENDED_SESSION_CALLS = (f"{PATH}/gradio_api/queue/join", f"{PATH}/gradio_api/queue/data")

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>
body {{font: 16px/1.5 system-ui, sans-serif; background: #f6f8fa; color: #1f2328; margin: 0;
       display: grid; place-items: center; min-height: 100vh;}}
form {{background: #fff; border: 1px solid #d1d9e0; border-radius: 12px; padding: 2rem; width: 320px;
       box-shadow: 0 4px 16px rgba(0,0,0,.06);}}
h1 {{font-size: 1.2rem; margin: 0 0 1rem;}}
label {{display: block; font-size: .9rem; margin: .75rem 0 .25rem;}}
input {{width: 100%; box-sizing: border-box; padding: .55rem .7rem; border: 1px solid #d1d9e0; border-radius: 6px;
        font: inherit;}}
button {{margin-top: 1.25rem; width: 100%; padding: .6rem; border: 0; border-radius: 6px; background: #1f6feb;
         color: #fff; font: inherit; cursor: pointer;}}
.note {{font-size: .9rem; padding: .5rem .7rem; border-radius: 6px; background: #fff8c5; margin-bottom: .5rem;}}
.error {{background: #ffebe9;}}
.hint {{font-size: .8rem; color: #59636e; margin-top: 1rem;}}
</style></head><body>{body}</body></html>"""

LOGIN_FORM = """<form method="post" action="{path}/login"><h1>{company}: operator console</h1>{note}
<input type="hidden" name="next" value="{target}">
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username"
 value="{username}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit">Login</button>
<p class="hint">Accounts are made with <code>assistant operators create NAME</code>.</p></form>"""

SIGN_OUT_FORM = """<form method="post" action="{path}/logout"><h1>{company}: sign out?</h1>
<input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form>"""

# the console's "signed in as" line (Gradio's Markdown keeps a form): a button that looks like a link
SIGNED_IN_LINE = """<form method="post" action="{path}/logout" style="display:inline;margin:0">Signed in as
<strong>{username}</strong> · <input type="hidden" name="csrf" value="{csrf}"><button type="submit"
 style="background:none;border:0;padding:0;color:inherit;text-decoration:underline;cursor:pointer;font:inherit">sign
 out</button></form>"""


def _page(company: str, title: str, body: str, status: int = 200, headers: dict[str, str] | None = None):
    return HTMLResponse(PAGE.format(title=f"{html.escape(company)} — {title}", body=body), status_code=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


def _login_page(company: str, note: str = "", error: bool = False, username: str = "", status: int = 200,
                target: str = f"{PATH}/", headers: dict[str, str] | None = None):
    shown = f'<p class="note{" error" if error else ""}">{html.escape(note)}</p>' if note else ""
    return _page(company, "operator sign-in", LOGIN_FORM.format(
        company=html.escape(company), path=PATH, note=shown, username=html.escape(username),
        target=html.escape(target)), status, headers)


def csrf_token(session_token: str) -> str:
    """The token a sign-out form carries: bound to the session (only its cookie's holder can show it)."""
    return hmac.new(session_token.encode(), b"operator sign-out", hashlib.sha256).hexdigest()


def signed_in_line(username: str, cookies: Mapping[str, str]) -> str:
    """The console's "signed in as NAME · sign out" line, the sign-out a POST with the session's token."""
    return SIGNED_IN_LINE.format(path=PATH, username=html.escape(username),
                                 csrf=csrf_token(cookies.get(COOKIE, "")))


def same_origin(request: Request) -> bool:
    """No `Origin` (curl, older browsers), or this server's own: the scheme and `Host` the browser used."""
    origin = request.headers.get("origin")
    return origin is None or origin.lower() == f"{request.url.scheme}://{request.url.netloc}".lower()


def _in_views(path: str) -> bool:
    return any(path == view or path.startswith(f"{view}/") for view in SIGNED_IN_VIEWS)


def _secured(response: Response, request: Request | None = None) -> Response:
    """No framing by other sites, no caching of pages and data, no reading by another site's scripts (Gradio's CORS
    would allow localhost and look-alike origins); a redirect names a path of ours, never a host."""
    response.headers.update(FRAMING)
    if response.headers.get("content-type", "").startswith(("text/html", "application/json")):
        response.headers["Cache-Control"] = "no-store"
    if request is not None and not same_origin(request):
        for header in ("access-control-allow-origin", "access-control-allow-credentials"):
            if header in response.headers:
                del response.headers[header]
    if location := response.headers.get("location"):
        parts = urlsplit(location)
        if parts.scheme or parts.netloc:
            response.headers["location"] = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
    return response


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of ours (a path), never another site (browsers drop tabs and line breaks
    from a URL and read a backslash as a slash: no "//", no backslash, nothing unprintable)."""
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and target.isprintable()):
        return target
    return f"{PATH}/"


def session_user(app: FastAPI, service: ConversationService):
    """The function Gradio calls to know the signed-in operator (`auth_dependency`) of the views that need one; the
    first call adds sign-in and sign-out (before the views mount, so ours win over Gradio's own /logout) and the
    checks on every request to those views."""
    if getattr(app.state, "operator_session_user", None) is None:
        app.state.operator_session_user = _install(app, service)
    return app.state.operator_session_user


async def operator_session(service: ConversationService, request: Request) -> OperatorSessionState | None:
    """The operator session the request's cookie names (ended ones included: `expired`), or None."""
    token = request.cookies.get(COOKIE)
    return await service.operators.session(token) if token else None


def _install(app: FastAPI, service: ConversationService):
    operators = service.operators
    company = service.settings.company_name
    longest = timedelta(hours=service.settings.console.session_max_hours)

    @app.get(f"{PATH}/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        note = "Your session has ended: sign in again." if request.query_params.get("ended") else ""
        return _login_page(company, note, target=safe_next(request.query_params.get("next")))

    @app.post(f"{PATH}/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        try:
            token = await operators.sign_in(username, password) if username else None
        except TooManyAttempts as paused:
            wait = math.ceil(paused.retry_after)
            return _login_page(company, f"Too many sign-in attempts for this username: try again in {wait} s.",
                               error=True, username=username, status=429, target=target,
                               headers={"Retry-After": str(wait)})
        if token is None:
            return _login_page(company, "Wrong username or password.", error=True, username=username, status=401,
                               target=target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(longest.total_seconds()), path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    async def sign_out_page(request: Request) -> Response:
        """A GET signs no one out: it offers the sign-out button."""
        if token := request.cookies.get(COOKIE):
            return _page(company, "sign out", SIGN_OUT_FORM.format(path=PATH, company=html.escape(company),
                                                                   csrf=csrf_token(token)))
        return RedirectResponse(f"{PATH}/login", status_code=303)

    async def sign_out(request: Request) -> Response:
        if token := request.cookies.get(COOKIE):
            if not hmac.compare_digest(str((await request.form()).get("csrf", "")), csrf_token(token)):
                return PlainTextResponse("sign-out refused: use the sign-out button of the console", 403)
            await operators.sign_out(token)
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    for view in SIGNED_IN_VIEWS:
        app.add_api_route(f"{view}/logout", sign_out_page, methods=["GET"], include_in_schema=False)
        app.add_api_route(f"{view}/logout", sign_out, methods=["POST"], include_in_schema=False)

    @app.middleware("http")
    async def guard_views(request: Request, call_next):
        path = request.url.path
        if not _in_views(path):
            return await call_next(request)
        if request.method not in SAFE_METHODS and not same_origin(request):
            return _secured(PlainTextResponse("refused: this request came from another site", 403))
        page = path.rstrip("/")
        if page in SIGNED_IN_VIEWS and request.method == "GET":
            session = await operator_session(service, request)
            if session is None or session.expired:
                query = urlencode({"next": f"{page}/", **({"ended": 1} if session else {})})
                return _secured(RedirectResponse(f"{PATH}/login?{query}", status_code=303))
        return _secured(await call_next(request), request)

    async def operator_of(request: Request) -> str | None:
        session = await operator_session(service, request)
        if session is None:
            return None
        if session.expired:  # the open console keeps working (no reload loses a draft); its handlers refuse
            return "" if request.url.path in ENDED_SESSION_CALLS else None
        return session.operator.username

    return operator_of
