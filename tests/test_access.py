"""API keys, scopes, rate limits, body limits and CORS, against the real app (auth on, as shipped)."""

from __future__ import annotations

import pytest

from assistant.cli import main

pytestmark = pytest.mark.usefixtures("database_url")  # every test on SQLite and on PostgreSQL


@pytest.fixture
def secured(make_client):
    return make_client(**{"auth.required": True, "auth.key_requests_per_minute": 5,
                          "auth.login_attempts_per_minute": 3, **BEHIND_PROXY})


BEHIND_PROXY = {"auth.trusted_proxies": ["testclient"]}  # the test client plays the site's reverse proxy


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.views("chat")  # public routes: the chat page
def test_the_api_needs_a_secret_key(secured):
    store = secured.app.state.service.store
    missing = secured.get("/v1/models")
    assert missing.status_code == 401 and "assistant keys create --scope api" in missing.json()["error"]["message"]
    assert secured.post("/api/conversations", json={}).status_code == 401
    assert secured.get("/v1/models", headers=bearer("sk_not_a_real_key")).status_code == 401
    widget = store.keys.create_widget_key(["https://shop.example.com"])
    refused = secured.get("/v1/models", headers=bearer(widget))
    assert refused.status_code == 403 and "public widget key" in refused.json()["error"]["message"]

    key = store.keys.create_api_key("api", "crm integration")
    assert secured.get("/v1/models", headers=bearer(key)).status_code == 200
    created = secured.post("/api/conversations", json={}, headers={"X-API-Key": key})
    assert created.status_code == 201
    assert secured.get("/api/sentiment/alerts", headers=bearer(key)).status_code == 403  # needs admin
    admin = store.keys.create_api_key("admin")
    assert secured.get("/api/sentiment/alerts", headers=bearer(admin)).status_code == 200
    # public routes stay public
    assert secured.get("/healthz").status_code == 200 and secured.get("/chat/").status_code == 200
    assert store.keys.revoke_key(key[:10]) == 1
    assert secured.get("/v1/models", headers=bearer(key)).status_code == 401  # revoked: at once


@pytest.mark.views("operator")  # its sign-in form
def test_rate_limits_per_key_and_sign_in_attempts(secured):
    store = secured.app.state.service.store
    key, other = store.keys.create_api_key(), store.keys.create_api_key()
    codes = [secured.get("/v1/models", headers=bearer(key)).status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]
    limited = secured.get("/v1/models", headers=bearer(key))
    assert int(limited.headers["Retry-After"]) >= 1 and "too many requests" in limited.json()["error"]["message"]
    assert secured.get("/v1/models", headers=bearer(other)).status_code == 200  # another key has its own budget
    forwarded = {"X-Forwarded-For": "203.0.113.9"}  # behind the trusted local proxy: counted per real client
    attempts = [secured.post("/operator/login", data={"username": "x", "password": "y"}, headers=forwarded)
                .status_code for _ in range(4)]
    assert attempts == [401, 401, 401, 429]
    elsewhere = secured.post("/operator/login", data={"username": "x", "password": "y"},
                             headers={"X-Forwarded-For": "198.51.100.7"})
    assert elsewhere.status_code == 401


def test_per_address_limit(make_client):
    client = make_client(**{"auth.ip_requests_per_minute": 3, **BEHIND_PROXY})
    headers = {"X-Forwarded-For": "203.0.113.50"}
    codes = [client.get("/v1/models", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.get("/v1/models").status_code == 200  # a local tool, not through the proxy: not limited


def test_an_untrusted_client_cannot_pick_its_address_with_x_forwarded_for(make_client):
    """The test client is not a trusted proxy: its X-Forwarded-For is ignored, so inventing a new address for each
    request does not escape the per-address limit."""
    client = make_client(**{"auth.ip_requests_per_minute": 3})
    codes = [client.get("/v1/models", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_oversized_bodies_are_refused_before_they_are_read(make_client):
    client = make_client(**{"auth.max_body_bytes": 2048})
    cid = client.post("/api/conversations", json={}).json()["id"]
    big = client.post(f"/api/conversations/{cid}/messages", json={"content": "x" * 5000})
    assert big.status_code == 413 and "larger than 2048 bytes" in big.json()["error"]["message"]
    chunked = client.post(f"/api/conversations/{cid}/messages", content=iter([b'{"content": "hi"}']),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 411 and "Content-Length" in chunked.json()["error"]["message"]
    assert client.get(f"/api/conversations/{cid}/messages").json()["messages"] == []  # nothing stored


def test_cors_follows_each_keys_origins(secured):
    store = secured.app.state.service.store
    key = store.keys.create_api_key("api", origins=["https://app.example.com"])
    preflight = secured.options("/v1/chat/completions", headers={
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
    assert secured.options("/v1/chat/completions", headers={"Origin": "https://evil.example"}).status_code == 403
    ok = secured.get("/v1/models", headers={**bearer(key), "Origin": "https://app.example.com"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example.com"
    other = secured.get("/v1/models", headers={**bearer(key), "Origin": "https://evil.example"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers


def test_auth_can_be_off_only_on_loopback(make_settings):
    from assistant.config import ConfigError

    assert make_settings(**{"auth.required": False, "host": "127.0.0.1"}).settings.auth.required is False
    with pytest.raises(ConfigError, match="only when the server listens on loopback"):
        make_settings(**{"auth.required": False, "host": "0.0.0.0"})


def test_keys_cli_makes_scoped_keys(tmp_path, capsys):
    home = ["--home", str(tmp_path)]
    assert main(["keys", "create", "--scope", "api", "--name", "crm", *home]) == 0
    printed = capsys.readouterr().out
    assert "sk_" in printed and "Authorization: Bearer" in printed
    assert main(["keys", "create", "--scope", "admin", "--origin", "https://ops.example.com", *home]) == 0
    assert main(["keys", "create", *home]) == 2  # a widget key needs its origins
    assert "--origin" in capsys.readouterr().err
    assert main(["keys", "list", *home]) == 0
    listed = capsys.readouterr().out
    assert "\tapi\tcrm" in listed and "\tadmin\t" in listed and "https://ops.example.com" in listed
