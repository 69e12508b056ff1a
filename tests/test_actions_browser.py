"""Actions in a real browser: a signed-in customer (widget identity token) asks for a refund in the chat, confirms,
an operator approves it in the console's approval queue, and the customer reads the outcome in the chat."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_actions import ScriptedEngine
from tests.test_chat_page_browser import ARTIFACTS, CHROMIUM, browser  # noqa: F401  (fixture)
from tests.test_handoff_browser import sign_in

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed (.ci/run installs it)")
DEMO_ACTIONS = Path(__file__).resolve().parents[1] / "data" / "orders" / "actions.yaml"


@pytest.fixture
def acting_app(make_settings):
    """The demo company's actions over its order service; the model's decisions are scripted (its quality is
    measured by `assistant eval actions`), the rest of the stack is real."""
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine

    scripted = []

    def engine(settings, model):
        scripted.append(ScriptedEngine(FakeEngine.build(settings, model)))
        return scripted[-1]

    service = build_service(make_settings(**{"actions.file": str(DEMO_ACTIONS), "sentiment.feeds": []}),
                            make_engine=engine)
    service.store.operators.create_operator("maria", "correct horse battery", "Maria")
    with BackgroundServer(create_app(service)) as url:
        yield url, service, scripted[0]


def wait_for_text(page, selector: str, text: str, timeout_s: float = 60) -> None:
    page.wait_for_function(f"() => (document.querySelector({selector!r}) || {{innerText: ''}}).innerText"
                           f".includes({text!r})", timeout=timeout_s * 1000, polling=250)


def test_a_signed_in_customer_confirms_a_refund_and_an_operator_approves_it(acting_app, browser):  # noqa: F811
    from assistant.identity import deployment_secret, key_secret, sign_identity

    url, service, engine = acting_app
    ARTIFACTS.mkdir(exist_ok=True)
    key = service.store.keys.create_widget_key(["https://shop.example.com"], "shop")
    prefix = service.store.keys.list_keys()[0].prefix
    token = sign_identity(key_secret(deployment_secret(service.settings.home_dir), prefix), "c-1004")
    customer = browser.new_page(viewport={"width": 900, "height": 900})
    customer.goto(f"{url}/chat/?key={key}&identity={token}")
    engine.decision = {"action": "request_refund", "arguments": {"order_id": "1043", "reason": "too small"}}
    box = customer.locator("#message-box textarea")
    box.fill("I want a refund for order 1043, the boots are too small")
    box.press("Enter")
    try:
        wait_for_text(customer, "#chatbot", "Shall I go ahead?")
        box.fill("yes please")
        box.press("Enter")
        wait_for_text(customer, "#chatbot", "A colleague needs to approve this")

        operator = browser.new_page(viewport={"width": 1400, "height": 1100})
        sign_in(operator, url)
        operator.locator("#approvals").get_by_text("Actions waiting for approval").first.click()
        wait_for_text(operator, "#approval-queue", "request_refund")
        operator.locator("#approval-pick input").click()
        operator.get_by_role("option", name="request_refund").first.click()
        operator.locator("#approve-action").click()
        wait_for_text(customer, "#chatbot", "Your refund request R1 for order 1043 is registered", 90)
    except Exception:
        customer.screenshot(path=str(ARTIFACTS / "actions-customer.png"))
        raise
    runs = service.store.actions.for_conversation(service.store.handoffs.conversation_overview()[0].id)
    assert [(r.action, r.status, r.confirmed_by, r.approved_by) for r in runs] == [
        ("request_refund", "succeeded", "customer", "maria")]
    deadline = time.monotonic() + 30
    while service.store.actions.approval_queue() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.store.actions.approval_queue() == []
