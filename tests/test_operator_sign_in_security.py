"""The operator sign-in against a penetration test's findings: no account enumeration by timing, sign-in attempts
paused per username, no framing, sign-out a POST with a session-bound token, no cross-site requests, ended sessions
refused for uploads and files, redirects that name no host."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.test_chat_page_browser import CHROMIUM, browser  # noqa: F401  (the browser fixture)
from ui.operator_auth import csrf_token, signed_in_line

PASSWORD = "correct horse battery"
EVIL = "https://evil.example"
BEHIND_PROXY = {"auth.trusted_proxies": ["testclient"]}  # the test client plays the reverse proxy: addresses vary


@pytest.fixture
def views(make_client):
    client = make_client(views=("operator", "sentiment", "insights"), **BEHIND_PROXY)
    client.app.state.service.store.operators.create_operator("maria", PASSWORD)
    return client


def sign_in(client, username: str = "maria", password: str = PASSWORD, address: str = "203.0.113.1", **headers):
    return client.post("/operator/login", data={"username": username, "password": password},
                       headers={"X-Forwarded-For": address, **headers}, follow_redirects=False)


def signed_in(client) -> str:
    assert sign_in(client).status_code == 303
    return client.cookies.get("assistant_operator")


@pytest.fixture
def scrypt_calls(monkeypatch) -> list[tuple]:
    """The (n, r, p) of every password hash computed."""
    calls, real = [], hashlib.scrypt

    def counted(password, **params):
        calls.append((params["n"], params["r"], params["p"]))
        return real(password, **params)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return calls


def test_unknown_and_disabled_accounts_cost_one_hash_like_a_wrong_password(views, scrypt_calls):
    from sqlalchemy import update

    from assistant.store.schema import Operator

    store = views.app.state.service.store
    store.operators.create_operator("olga", PASSWORD)
    with store.session() as session, session.begin():
        session.execute(update(Operator).where(Operator.username == "olga").values(disabled=True))
    work = {}
    for username, password in (("maria", "wrong password"), ("nobody", "wrong password"), ("olga", PASSWORD)):
        scrypt_calls.clear()
        assert sign_in(views, username, password).status_code == 401
        work[username] = list(scrypt_calls)
    assert work["maria"] == work["nobody"] == work["olga"] == [(2**14, 8, 1)]


def test_sign_in_attempts_are_paused_per_username_whatever_the_address(views, scrypt_calls):
    now = [0.0]
    views.app.state.service.operators.backoff.clock = lambda: now[0]
    addresses = (f"198.51.100.{i}" for i in range(1, 200))  # a new address each time: the per-address limit stays out

    def attempt(username: str, password: str = "wrong password"):
        return sign_in(views, username, password, next(addresses))

    for username in ("maria", "nobody"):  # an unknown username is paused the same way: nothing tells them apart
        assert [attempt(username).status_code for _ in range(5)] == [401] * 5
        scrypt_calls.clear()
        paused = attempt(username, PASSWORD)
        assert paused.status_code == 429 and paused.headers["Retry-After"] == "30" and not scrypt_calls
        assert "Too many sign-in attempts for this username: try again in 30 s." in paused.text
    now[0] += 31
    assert attempt("maria").status_code == 401
    assert attempt("maria", PASSWORD).headers["Retry-After"] == "60"  # the pause doubles
    now[0] += 61
    assert attempt("maria", PASSWORD).status_code == 303  # a success clears the count
    assert [attempt("maria").status_code for _ in range(5)] == [401] * 5

    waits = []
    assert [attempt("eve").status_code for _ in range(5)] == [401] * 5
    for _ in range(7):
        paused = attempt("eve")
        assert paused.status_code == 429
        waits.append(int(paused.headers["Retry-After"]))
        now[0] += waits[-1]
        assert attempt("eve").status_code == 401
    assert waits == [30, 60, 120, 240, 480, 900, 900]  # up to 15 minutes


def test_views_may_not_be_framed(views):
    signed_in(views)
    for path in ("/operator/login", "/operator/", "/operator/config", "/sentiment/", "/insights/", "/operator/logout"):
        response = views.get(path, follow_redirects=False)
        assert response.headers["X-Frame-Options"] == "DENY", path
        assert response.headers["Content-Security-Policy"] == "frame-ancestors 'none'", path
    views.cookies.clear()
    assert views.get("/sentiment/", follow_redirects=False).headers["X-Frame-Options"] == "DENY"  # to sign in
    assert views.get("/insights/", follow_redirects=False).status_code in (302, 303, 307)  # insights: operators only


def test_sign_out_is_a_post_with_a_token_bound_to_the_session(views):
    token = signed_in(views)
    offered = views.get("/operator/logout", follow_redirects=False)
    assert offered.status_code == 200 and 'method="post" action="/operator/logout"' in offered.text
    assert views.get("/operator/config").status_code == 200  # a GET (a link, an <img>) signs no one out
    for form in ({}, {"csrf": "forged"}, {"csrf": csrf_token("another session")}):
        assert views.post("/operator/logout", data=form).status_code == 403
        assert views.get("/operator/config").status_code == 200
    shown = re.search(r'name="csrf" value="([0-9a-f]+)"', offered.text)[1]
    assert shown == csrf_token(token) and f'value="{shown}"' in signed_in_line("maria", {"assistant_operator": token})
    out = views.post("/operator/logout", data={"csrf": shown}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/operator/login"
    assert views.get("/operator/config").status_code == 401


def test_cross_site_requests_are_refused(views):
    assert sign_in(views, Origin=EVIL).status_code == 403 and "assistant_operator" not in views.cookies
    assert sign_in(views, Origin="null").status_code == 403
    assert sign_in(views, Origin="http://testserver").status_code == 303  # our own page
    token = views.cookies.get("assistant_operator")
    foreign = {"Origin": EVIL}
    assert views.post("/operator/logout", data={"csrf": csrf_token(token)}, headers=foreign).status_code == 403
    for path in ("/operator/gradio_api/queue/join", "/sentiment/gradio_api/queue/join"):
        assert views.post(path, json={}, headers=foreign).status_code == 403
    assert views.post("/sentiment/gradio_api/upload", files={"files": ("a.txt", b"x")},
                      headers=foreign).status_code == 403
    assert views.get("/operator/config").status_code == 200  # still signed in
    assert sign_in(views).status_code == 303  # no Origin (curl): signs in


def test_an_ended_session_may_not_upload_or_read_files(views):
    signed_in(views)
    views.app.state.service.store.operators.end_operator_sessions(username="maria")
    assert views.post("/operator/gradio_api/upload", files={"files": ("a.txt", b"x")}).status_code == 401
    assert views.get("/operator/gradio_api/file=/etc/hostname").status_code == 401
    assert views.post("/operator/gradio_api/run/predict", json={"data": []}).status_code == 401
    # the console's own calls still reach its handlers, which say the session has ended (the draft stays)
    assert views.post("/operator/gradio_api/queue/join", json={}).status_code not in (401, 403)


def test_redirects_never_name_a_host(views):
    token = signed_in(views)
    forwarded = {"X-Forwarded-Host": "evil.example"}
    for path in ("/sentiment/logout", "/operator/logout", "/operator", "/sentiment"):
        response = views.get(path, headers=forwarded, follow_redirects=False)
        assert not re.match(r"\w+:|//", response.headers.get("location", "/")), (path, response.headers)
    out = views.post("/sentiment/logout", data={"csrf": csrf_token(token)}, headers=forwarded,
                     follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/operator/login"
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/", "/\t/evil.example/",
                   "javascript:alert(1)"):
        response = views.post("/operator/login", data={"username": "maria", "password": PASSWORD, "next": target},
                              follow_redirects=False)
        assert response.headers["location"] == "/operator/", target


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run installs it)")
def test_the_console_signs_out_with_its_button_in_a_browser(make_settings, browser):  # noqa: F811
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine

    service = build_service(make_settings(), make_engine=FakeEngine.build)
    service.store.operators.create_operator("maria", PASSWORD)
    with BackgroundServer(create_app(service, mount_views={"operator"})) as url:
        page = browser.new_page()
        page.goto(f"{url}/operator/")
        page.locator("input[type=text]").first.fill("maria")
        page.locator("input[type=password]").fill(PASSWORD)
        page.get_by_role("button", name="Login").click()  # same-origin POSTs: the sign-in, then Gradio's calls
        page.locator("#waiting-count").get_by_text("waiting for a human").wait_for(timeout=60_000)
        page.locator("#signed-in").get_by_role("button", name="sign out").click()
        page.wait_for_url(f"{url}/operator/login")
        page.goto(f"{url}/operator/")
        assert "/operator/login" in page.url  # the session has ended
