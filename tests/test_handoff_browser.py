"""Human handoff in a real browser: the customer asks for a human on the chat page, an operator signs in to the
console, takes over and replies; the customer sees the agent's reply and the bot sends nothing more."""

from __future__ import annotations

import time

import pytest

from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser  # noqa: F401  (the browser fixture)

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def live_app(make_settings):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service

    service = build_service(make_settings(**{"sentiment.feeds": []}))
    service.store.create_operator("maria", "correct horse battery", "Maria")
    with BackgroundServer(create_app(service)) as url:
        yield url, service



def test_customer_asks_for_a_human_and_gets_the_agent(live_app, browser):  # noqa: F811
    url, service = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    customer = browser.new_page(viewport={"width": 900, "height": 900})
    customer.goto(f"{url}/chat/")
    box = customer.locator("#message-box textarea")
    box.fill('My parcel never arrived. <img src=x onerror="window.__xss=1">')
    box.press("Enter")
    deadline = time.monotonic() + 60
    while not any(m["role"] == "assistant" and m["status"] == "complete"
                  for c in service.store.conversation_overview() for m in service.store.messages(c["id"])):
        assert time.monotonic() < deadline, "the bot did not answer"
        time.sleep(0.25)
    customer.locator("#talk-to-human").click()
    customer.wait_for_function("() => document.querySelector('#chat-status').innerText.includes('asked to join')",
                               timeout=60_000, polling=250)

    operator = browser.new_page(viewport={"width": 1400, "height": 950})
    operator.goto(f"{url}/operator/")
    operator.locator("input[type=text]").first.fill("maria")
    operator.locator("input[type=password]").fill("correct horse battery")
    operator.get_by_role("button", name="Login").click()
    row = operator.locator("#conversations [role=gridcell]", has_text="waiting human").first
    row.wait_for(timeout=60_000)
    operator.wait_for_function("() => document.querySelector('#waiting-count').innerText.includes('1')",
                               timeout=60_000, polling=250)
    row.click()
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('never arrived')",
                               timeout=60_000, polling=250)
    operator.locator("#take-over").click()
    operator.wait_for_function("() => document.querySelector('#conversation-status').innerText.includes('human')",
                               timeout=60_000, polling=250)
    reply = operator.locator("#agent-reply textarea")
    reply.fill("Hi, I'm Maria. I have sent a replacement today. <script>window.__xss=2</script>"
               '<img src=y onerror="window.__xss=3">')
    reply.press("Enter")
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('replacement')",
                               timeout=60_000, polling=250)
    operator.locator("#correction-panel").get_by_text("Correct a bot answer").click()
    operator.locator("#answer-pick input").click()
    operator.get_by_role("option").filter(has_text="asked a colleague").first.click()
    operator.wait_for_function("() => document.querySelector('#better-answer textarea').value.includes('colleague')",
                               timeout=60_000, polling=250)
    operator.locator("#better-answer textarea").fill("I'm sorry your parcel is missing: a colleague will help you.")
    operator.locator("#save-correction").click()
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('corrected to')",
                               timeout=60_000, polling=250)
    operator.screenshot(path=str(ARTIFACTS / "operator_console_took_over.png"), full_page=True)

    customer.wait_for_function("() => document.querySelector('#chatbot').innerText.includes('replacement')",
                               timeout=60_000, polling=250)
    customer.wait_for_function("() => document.querySelector('#chat-status').innerText.includes('Maria from')",
                               timeout=60_000, polling=250)
    assert "Maria (our team)" in customer.locator("#chatbot").inner_text()  # the display name, not the login
    box.fill("Thank you Maria!")
    box.press("Enter")
    customer.wait_for_timeout(3000)
    customer.screenshot(path=str(ARTIFACTS / "chat_page_agent_joined.png"), full_page=True)
    # HTML typed by the customer or the agent is shown as text or sanitised, never run, in either view
    assert customer.evaluate("() => window.__xss") is None and operator.evaluate("() => window.__xss") is None
    conversation = service.store.conversation_overview()[0]["id"]
    [for_alignment] = service.store.conversations_for_alignment()
    assert [f["corrected_text"] for f in for_alignment["feedback"].values()] == [
        "I'm sorry your parcel is missing: a colleague will help you."]  # a preference pair for `align`
    roles = [m["role"] for m in service.store.messages(conversation)]
    assert roles[-2:] == ["agent", "user"] and roles.count("agent") == 1  # the bot sent nothing more
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert [m["role"] for m in service.store.messages(conversation)] == roles
        time.sleep(0.5)
