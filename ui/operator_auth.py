"""Signing in to the operator console and the sentiment view: a login page of our own, sessions in the store (an
HttpOnly cookie holds a random token, the store only its digest), so sign-ins survive a server restart and end when
idle or too old.

Gradio asks `session_user(...)` who is calling. A call made with a session that has ended still reaches the console's
handlers, with an empty user, so they can say "your session has ended" while what the operator typed stays put
(refusing Gradio's own calls would make its page reload and drop the draft); files and the page itself are refused."""

from __future__ import annotations

import html
from datetime import timedelta
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from assistant.conversation import ConversationService
from assistant.store.records import OperatorSessionState

COOKIE = "assistant_operator"
PATH = "/operator"
SIGNED_IN_VIEWS = ("/operator", "/sentiment")

LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{company} — operator sign-in</title>
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
</style></head><body>
<form method="post" action="{path}/login"><h1>{company}: operator console</h1>{note}
<input type="hidden" name="next" value="{target}">
<label for="username">Username</label><input id="username" name="username" type="text" autocomplete="username"
 value="{username}" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit">Login</button>
<p class="hint">Accounts are made with <code>assistant operators create NAME</code>.</p></form></body></html>"""


def _login_page(company: str, note: str = "", error: bool = False, username: str = "", status: int = 200,
                target: str = f"{PATH}/"):
    shown = f'<p class="note{" error" if error else ""}">{html.escape(note)}</p>' if note else ""
    return HTMLResponse(LOGIN_PAGE.format(company=html.escape(company), path=PATH, note=shown,
                                          username=html.escape(username), target=html.escape(target)),
                        status_code=status,
                        headers={"Cache-Control": "no-store"})


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of ours (a path), never another site."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PATH}/"


def session_user(app: FastAPI, service: ConversationService):
    """The function Gradio calls to know the signed-in operator (`auth_dependency`) of the views that need one; the
    first call adds /operator/login and /operator/logout and sends signed-out visitors of those views to sign in."""
    if getattr(app.state, "operator_session_user", None) is None:
        app.state.operator_session_user = _install(app, service)
    return app.state.operator_session_user


def _install(app: FastAPI, service: ConversationService):
    operators = service.operators
    company = service.settings.company_name
    longest = timedelta(hours=service.settings.console.session_max_hours)

    async def session_of(request: Request) -> OperatorSessionState | None:
        token = request.cookies.get(COOKIE)
        return await operators.session(token) if token else None

    @app.get(f"{PATH}/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        note = "Your session has ended: sign in again." if request.query_params.get("ended") else ""
        return _login_page(company, note, target=safe_next(request.query_params.get("next")))

    @app.post(f"{PATH}/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        target = safe_next(str(form.get("next", "")))
        token = await operators.sign_in(username, password)
        if token is None:
            return _login_page(company, "Wrong username or password.", error=True, username=username, status=401,
                               target=target)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=int(longest.total_seconds()), path="/", httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        return response

    @app.get(f"{PATH}/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        if token := request.cookies.get(COOKIE):
            await operators.sign_out(token)
        response = RedirectResponse(f"{PATH}/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.middleware("http")
    async def views_need_sign_in(request: Request, call_next):
        page = request.url.path.rstrip("/")
        if page in SIGNED_IN_VIEWS and request.method == "GET":
            session = await session_of(request)
            if session is None or session.expired:
                query = urlencode({"next": f"{page}/", **({"ended": 1} if session else {})})
                return RedirectResponse(f"{PATH}/login?{query}", status_code=303)
        return await call_next(request)

    async def operator_of(request: Request) -> str | None:
        session = await session_of(request)
        if session is None:
            return None
        if session.expired:  # the open console keeps working (no reload loses a draft); its handlers refuse
            path = request.url.path
            return "" if path.startswith(f"{PATH}/gradio_api/") and "/file" not in path else None
        return session.operator.username

    return operator_of
