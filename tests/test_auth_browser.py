"""Auth bypass attempts in a real browser: the operator console and the sentiment view without a sign-in, with a
forged or ended session cookie, their Gradio API called directly; the widget's host page calling the API with the
public widget key. Every attempt ends on the sign-in page or with a 401/403, never with data."""

from __future__ import annotations

import pytest

from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def secured_app(make_settings):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service

    service = build_service(make_settings(**{"auth.required": True, "sentiment.feeds": []}))
    service.store.operators.create_operator("maria", "correct horse battery")
    conversation = service.store.conversations.create_conversation(customer_id="c-1").id
    service.store.conversations.add_message(conversation, "user", "my secret order 5521")
    with BackgroundServer(create_app(service)) as url:
        yield url, service


def test_views_and_apis_refuse_everyone_without_a_live_session_or_key(secured_app, browser):  # noqa: F811
    url, service = secured_app
    context = browser.new_context()
    page = context.new_page()
    for view in ("/operator/", "/sentiment/"):
        page.goto(f"{url}{view}")
        page.locator("input[type=password]").wait_for(timeout=30_000)  # the sign-in page, nothing else
        assert "5521" not in page.content()

    # a forged cookie, then a real one whose session was ended
    context.add_cookies([{"name": "assistant_operator", "value": "forged-token", "url": url}])
    page.goto(f"{url}/operator/")
    assert "/operator/login" in page.url
    page.locator("input[type=text]").first.fill("maria")
    page.locator("input[type=password]").fill("correct horse battery")
    page.get_by_role("button", name="Login").click()
    page.locator("#conversations").wait_for(timeout=60_000)
    service.store.operators.end_operator_sessions(username="maria")
    page.goto(f"{url}/sentiment/")
    page.locator("text=Your session has ended").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "operator_sign_in_after_session_ended.png"))

    # the Gradio APIs behind the views and our APIs, called from a page without a session or with a widget key
    widget_key = service.store.keys.create_widget_key(["http://127.0.0.1"])
    statuses = page.evaluate("""async ([key]) => {
        const get = async (path, headers) => (await fetch(path, {headers, credentials: 'omit'})).status;
        return [await get('/operator/config', {}), await get('/sentiment/config', {}),
                await get('/operator/gradio_api/info', {}), await get('/api/conversations/x', {}),
                await get('/v1/models', {Authorization: 'Bearer ' + key}),
                await get('/api/sentiment/alerts', {'X-API-Key': key})];
    }""", [widget_key])
    assert statuses == [401, 401, 401, 401, 403, 403]
