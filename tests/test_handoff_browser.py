"""The chat page and the operator console together in a real browser: (3) the customer asks for a human, an
operator signs in, takes over and replies; the customer sees the reply and the bot sends nothing more. (2) The
customer gives a thumbs-down, an operator corrects the answer (surviving an ended session), and `assistant align`
gets a preference pair from the store."""

from __future__ import annotations

import time

import pytest

from assistant.store.records import FeedbackSummary
from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser, default_service  # noqa: F401  (fixture)

pytestmark = pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(),
                                reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture
def live_app(make_settings):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service

    service = build_service(make_settings(**{"sentiment.feeds": []}))
    service.store.operators.create_operator("maria", "correct horse battery", "Maria")
    with BackgroundServer(create_app(service)) as url:
        yield url, service


@pytest.fixture
def shipped_app(tmp_path, default_model_dir, with_demo_knowledge):
    """The default model and help center (the session's copy of its index): real answers to rate and correct."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer

    with_demo_knowledge(tmp_path)
    service = default_service(tmp_path, default_model_dir)
    service.store.operators.create_operator("maria", "correct horse battery", "Maria")
    with BackgroundServer(create_app(service)) as url:
        yield url, service


def customer_asks(browser, url: str, store, question: str, timeout: float):  # noqa: F811
    """A customer opens the chat page and asks; returns the page and its box once the bot's answer is stored."""
    customer = browser.new_page(viewport={"width": 900, "height": 900})
    customer.goto(f"{url}/chat/")
    box = customer.locator("#message-box textarea")
    box.fill(question)
    box.press("Enter")
    deadline = time.monotonic() + timeout
    while not any(m.role == "assistant" and m.status == "complete"
                  for c in store.handoffs.conversation_overview() for m in store.conversations.messages(c.id)):
        assert time.monotonic() < deadline, "the bot did not answer"
        time.sleep(0.25)
    return customer, box


def test_customer_asks_for_a_human_and_gets_the_agent(live_app, browser):  # noqa: F811
    url, service = live_app
    ARTIFACTS.mkdir(exist_ok=True)
    customer, box = customer_asks(browser, url, service.store,
                                  'My parcel never arrived. <img src=x onerror="window.__xss=1">', 60)
    customer.locator("#talk-to-human").click()
    customer.wait_for_function("() => document.querySelector('#chat-status').innerText.includes('asked to join')",
                               timeout=60_000, polling=250)
    customer.locator("#talk-to-human").wait_for(state="hidden", timeout=30_000)  # asked once: no second button

    operator = browser.new_page(viewport={"width": 1400, "height": 950})
    sign_in(operator, url)
    row = operator.locator("#conversations [role=gridcell]", has_text="waiting human").first
    row.wait_for(timeout=60_000)
    operator.wait_for_function("() => document.querySelector('#waiting-count').innerText.includes('1')",
                               timeout=60_000, polling=250)
    row.click()
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('never arrived')",
                               timeout=60_000, polling=250)
    operator.locator("#take-over").click()
    operator.wait_for_function(
        "() => document.querySelector('#conversation-status').innerText.trim().startsWith('human')",
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
    assert '<img src=x onerror="window.__xss=1">' in customer.locator("#chatbot").inner_text()  # shown as typed
    assert "<script>window.__xss=2</script>" in customer.locator("#chatbot").inner_text()
    assert '<img src=x onerror="window.__xss=1">' in operator.locator("#transcript").inner_text()
    assert customer.locator("#chatbot img[src='x'], #chatbot img[src='y']").count() == 0
    conversation = service.store.handoffs.conversation_overview()[0].id
    [for_alignment] = service.store.conversations.conversations_for_alignment()
    assert [f["corrected_text"] for f in for_alignment["feedback"].values()] == [
        "I'm sorry your parcel is missing: a colleague will help you."]  # a preference pair for `align`
    roles = [m.role for m in service.store.conversations.messages(conversation)]
    assert roles[-2:] == ["agent", "user"] and roles.count("agent") == 1  # the bot sent nothing more
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert [m.role for m in service.store.conversations.messages(conversation)] == roles
        time.sleep(0.5)


def sign_in(page, url: str) -> None:
    page.goto(f"{url}/operator/")
    page.locator("input[type=text]").first.fill("maria")
    page.locator("input[type=password]").fill("correct horse battery")
    page.get_by_role("button", name="Login").click()


def test_thumbs_down_then_operator_correction_makes_a_preference_pair(shipped_app, browser):  # noqa: F811
    from alignment.examples import PromptBuilder
    from alignment.feedback import from_store
    from assistant.redaction import Redactor

    url, service = shipped_app
    store = service.store
    customer, _ = customer_asks(browser, url, store, "How long does a refund take?", 120)
    conversation = store.handoffs.conversation_overview()[0].id
    answer = next(m for m in store.conversations.messages(conversation) if m.role == "assistant")
    customer.wait_for_function("() => document.querySelectorAll(\"#chatbot [data-testid='bot']\").length === 1",
                               timeout=60_000, polling=250)
    customer.locator("#chatbot button[aria-label='Dislike']").last.click()
    customer.locator("#feedback-comment textarea").fill("It did not say how many days.")
    customer.locator("#send-feedback").click()
    deadline = time.monotonic() + 30
    while (store.conversations.transcript(conversation)[1].feedback or FeedbackSummary()).comment is None:
        assert time.monotonic() < deadline, "the thumbs-down and its comment were not stored"
        time.sleep(0.25)

    operator = browser.new_context(viewport={"width": 1400, "height": 950}).new_page()
    sign_in(operator, url)
    operator.locator("#conversations [role=gridcell]", has_text=conversation).first.click()
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('did not say')",
                               timeout=60_000, polling=250)  # the rating and comment are shown with the answer
    assert "👎" in operator.locator("#transcript").inner_text()
    operator.locator("#correction-panel").get_by_text("Correct a bot answer").click()
    operator.locator("#answer-pick input").click()
    operator.get_by_role("option").filter(has_text=f"#{answer.id}").first.click()
    better = operator.locator("#better-answer textarea")
    operator.wait_for_function("expected => document.querySelector('#better-answer textarea').value === expected",
                               arg=answer.content if answer.content.strip() else "", timeout=60_000,
                               polling=250)  # starts from the bot's answer (the tiny test model may say nothing)
    correction = "Refunds reach your card within five business days of the return arriving at our warehouse."
    better.fill(correction)

    store.operators.end_operator_sessions(username="maria")  # the session ends (idle, or signed out elsewhere)
    operator.locator("#save-correction").click()
    operator.get_by_text("Your session has ended").first.wait_for(timeout=30_000)
    operator.wait_for_timeout(2500)  # the console stays open: no reload throws the draft away
    assert better.input_value() == correction  # what the operator wrote is still there
    assert store.conversations.transcript(conversation)[1].feedback.corrected_text is None
    operator.screenshot(path=str(ARTIFACTS / "operator_console_session_ended.png"), full_page=True)

    again = operator.context.new_page()  # sign in again in another tab: the console tab keeps its state
    sign_in(again, url)
    again.locator("#conversations").wait_for(timeout=60_000)
    again.close()
    operator.locator("#correction-curate input").check()  # and serve it to the next customers who ask
    operator.locator("#save-correction").click()
    deadline = time.monotonic() + 30
    while store.conversations.transcript(conversation)[1].feedback.corrected_text != correction:
        assert time.monotonic() < deadline, "the correction was not stored after signing in again"
        time.sleep(0.25)
    operator.wait_for_function("() => document.querySelector('#transcript').innerText.includes('corrected to')",
                               timeout=60_000, polling=250)
    operator.screenshot(path=str(ARTIFACTS / "operator_console_correction.png"), full_page=True)
    [curated] = store.curated.listed()  # one click: the correction is a curated answer to the customer's question
    assert (curated.question, curated.answer, curated.source) == ("How long does a refund take?", correction,
                                                                  "correction")

    examples = from_store(store.conversations.conversations_for_alignment(), PromptBuilder("You are support.", None),
                          Redactor())
    [pair] = examples.pairs
    assert pair.chosen[0]["content"] == correction and pair.rejected[0]["content"] == answer.content
    assert pair.prompt[-1] == {"role": "user", "content": "How long does a refund take?"}
