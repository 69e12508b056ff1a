"""The sentiment view in a real browser: trend plots render, feeds split per entity, alerts listed, and dragging
across a chart lists the texts behind it. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time

import pytest

from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser, page  # noqa: F401  (fixtures)

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def live_app(make_settings):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service

    service = build_service(make_settings(**{"sentiment.enabled": True, "sentiment.interval_s": 0.05}))
    service.store.operators.create_operator("maria", "correct horse battery")
    with BackgroundServer(create_app(service)) as url:
        yield url, service


def test_sentiment_view_plots_alerts_and_drill_down(live_app, page):  # noqa: F811
    url, service = live_app
    store = service.store
    conversation = store.conversations.create_conversation(channel="web").id
    for text in ("My parcel is late again, this is awful.", "Still nothing. Terrible service, I am furious!"):
        store.conversations.add_message(conversation, "user", text)
    deadline = time.monotonic() + 30
    while not (store.sentiment.sentiment_alerts(scope="conversation") and store.sentiment.feed_items(limit=1)):
        assert time.monotonic() < deadline, "messages were not scored / the demo feed was not ingested"
        time.sleep(0.1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(f"{url}/sentiment/")  # signing in first, as operators do
    page.locator("input[type=text]").first.fill("maria")
    page.locator("input[type=password]").fill("correct horse battery")
    page.get_by_role("button", name="Login").click()
    page.locator("#negative-trend").wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('#sentiment-summary').innerText.includes('negative')",
                           timeout=60_000, polling=250)
    assert "2 scored customer messages" in page.locator("#sentiment-summary").inner_text()
    page.wait_for_function("() => document.querySelector('#alerts').innerText.includes('negative_turns')",
                           timeout=60_000, polling=250)  # the alert list
    page.locator("#alerts [role=gridcell]", has_text="negative_turns").first.click()  # an alert opens its conversation
    page.wait_for_function("() => document.querySelector('#conversation-turns').innerText.includes('furious')",
                           timeout=60_000, polling=250)
    page.screenshot(path=str(ARTIFACTS / "sentiment_view_chats.png"), full_page=True)

    page.locator("#sentiment-kind").get_by_text("feeds").click()
    page.get_by_text("per entity").click()
    page.wait_for_function("() => document.querySelector('#sentiment-summary').innerText.includes('feed items')",
                           timeout=60_000, polling=250)
    chart = page.locator("#negative-trend .vega-embed").first
    chart.wait_for(timeout=60_000)
    page.wait_for_function("() => document.querySelector('#negative-trend').textContent.includes('Lumen Outfitters')",
                           timeout=60_000, polling=250)
    page.wait_for_timeout(1000)
    box = chart.bounding_box()
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.70, y)  # from Tue 24 to Thu 26: the delivery-delay spike
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.80, y, steps=8)
    page.mouse.move(box["x"] + box["width"] * 0.90, y, steps=8)
    page.mouse.up()
    page.wait_for_function("() => document.querySelector('#drill-down').innerText.includes('Lumen')",
                           timeout=60_000, polling=250)
    page.screenshot(path=str(ARTIFACTS / "sentiment_view_feeds_drill_down.png"), full_page=True)
    drill = page.locator("#drill-down").inner_text()
    assert "negative" in drill and "delivery" in drill.lower()
