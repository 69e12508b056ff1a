"""Signed customer identity: the website signs who is signed in with the widget key's secret; the chat trusts only
a token that verifies, and the conversation it opens knows that customer (and nobody else's)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from assistant.cli import main
from assistant.identity import IdentityError, key_secret, sign_identity, verify_identity


def test_a_signed_token_verifies_and_every_kind_of_bad_one_is_refused():
    secret = key_secret(b"deployment", "pk_abc")
    assert secret != key_secret(b"deployment", "pk_other") != key_secret(b"other", "pk_abc")
    token = sign_identity(secret, "c-1003", ttl_s=600, now=1000.0, name="Aiko")
    assert verify_identity(token, secret, now=1001.0) == {"customer_id": "c-1003", "name": "Aiko"}
    payload, signature = token.split(".")
    forged = sign_identity(key_secret(b"deployment", "pk_other"), "c-1003", now=1000.0)
    for bad, reason in [("nonsense", "malformed"), (forged, "signature does not match"),
                        (payload.replace(payload[3], "A" if payload[3] != "A" else "B") + "." + signature,
                         "malformed|signature does not match"),
                        (token, "expired")]:
        with pytest.raises(IdentityError, match=reason):
            verify_identity(bad, secret, now=1000.0 if bad != token else 2000.0)
    with pytest.raises(IdentityError, match="longer than 24 h"):
        verify_identity(sign_identity(secret, "c-1", ttl_s=3 * 24 * 3600), secret)


def test_the_widget_chat_opens_a_conversation_that_knows_the_signed_in_customer(tmp_path, capsys, make_settings):
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine
    from ui.chat_page import widget_channel

    home = ["--home", str(tmp_path / "home")]
    assert main(["keys", "create", "--origin", "https://shop.example.com", *home]) == 0
    key = capsys.readouterr().out.split("key: ")[1].split()[0]
    assert main(["keys", "identity-token", key[:10], "--customer", "c-1003", *home]) == 0
    token = capsys.readouterr().out.strip()
    assert main(["keys", "identity-secret", key[:10], *home]) == 0
    secret = capsys.readouterr().out.strip()
    assert verify_identity(token, secret)["customer_id"] == "c-1003"
    assert main(["keys", "identity-secret", "pk_nothing", *home]) == 2

    loaded = make_settings(home=str(tmp_path / "home"))
    service = build_service(loaded, make_engine=FakeEngine.build)

    def opened(**query):
        return asyncio.run(widget_channel(SimpleNamespace(query_params={"key": key, **query}), service))

    assert opened(identity=token)[2] == {"customer_id": "c-1003"}
    channel, _, identity = opened(identity=sign_identity("guessed", "c-1001"))
    assert channel == "widget" and identity is None  # a forged token: the chat works, it knows nobody
    assert opened()[2] is None
    expired = sign_identity(secret, "c-1003", ttl_s=-1)
    assert opened(identity=expired)[2] is None
    service.store.close()
