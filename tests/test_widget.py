"""Widget keys and the server side of the widget: per-key origins enforced, frame-ancestors, the script served."""

from __future__ import annotations

import pytest

from assistant.cli import main


def test_widget_config_only_for_the_keys_origins(client):
    store = client.app.state.service.store
    key = store.keys.create_widget_key(["https://Shop.Example.com/", "http://localhost:3000"])
    allowed = client.get("/api/widget/config", params={"key": key}, headers={"Origin": "https://shop.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example.com"
    assert allowed.json()["labels"]["zh"]["title"] == "在线客服"
    other = client.get("/api/widget/config", params={"key": key}, headers={"Origin": "https://evil.example"})
    assert other.status_code == 403 and "access-control-allow-origin" not in other.headers
    assert "https://evil.example may not use this key" in other.json()["error"]["message"]
    assert client.get("/api/widget/config", params={"key": key}).status_code == 403  # no Origin at all
    assert client.get("/api/widget/config", params={"key": "pk_nope"},
                      headers={"Origin": "https://shop.example.com"}).status_code == 404
    assert store.keys.revoke_key(key[:10]) == 1
    assert client.get("/api/widget/config", params={"key": key},
                      headers={"Origin": "https://shop.example.com"}).status_code == 404


@pytest.mark.views("chat", "widget")
def test_only_the_keys_origins_may_frame_the_chat(client):
    key = client.app.state.service.store.keys.create_widget_key(["https://shop.example.com"])
    framed = client.get("/chat/", params={"key": key})
    assert framed.headers["content-security-policy"] == "frame-ancestors 'self' https://shop.example.com"
    assert client.get("/chat/").headers["content-security-policy"] == "frame-ancestors 'self'"
    assert client.get("/chat/", params={"key": "pk_forged"}).headers["content-security-policy"] == \
        "frame-ancestors 'self'"
    script = client.get("/widget.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "attachShadow" in script.text and "/api/widget/config" in script.text


def test_bad_origins_are_refused(client):
    from assistant.store import KeyProblem

    store = client.app.state.service.store
    for origin, reason in [("shop.example.com", "must look like"),
                           ("https://shop.example.com/path", "must not have a path")]:
        with pytest.raises(KeyProblem, match=reason):
            store.keys.create_widget_key([origin])
    with pytest.raises(KeyProblem, match="at least one"):
        store.keys.create_widget_key([])


def test_keys_cli(tmp_path, capsys):
    home = ["--home", str(tmp_path / "home")]
    assert main(["keys", "create", "--origin", "https://shop.example.com", "--host", "https://help.example.com",
                 *home]) == 0
    out = capsys.readouterr().out
    assert '<script src="https://help.example.com/widget.js" data-key="pk_' in out
    assert '<noscript><a href="https://help.example.com/chat/">' in out  # a link where scripts are blocked
    prefix = out.split("key: ")[1][:10]
    assert main(["keys", "list", *home]) == 0
    assert f"{prefix}…\twidget\thttps://shop.example.com" in capsys.readouterr().out
    assert main(["keys", "revoke", prefix, *home]) == 0
    assert main(["keys", "revoke", prefix, *home]) == 2
    assert main(["keys", "create", "--origin", "nonsense", *home]) == 2
