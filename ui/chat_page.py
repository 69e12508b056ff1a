"""The customer chat page (Gradio), mounted at /chat (English) and /chat/zh (Chinese) on the API's port: streamed
answers whose citations open their sources, thumbs and comments, "talk to a human", the agent's replies as they
come, a clear status while a human is asked for or has joined, and a rating when the chat ends.

What the page shows is rebuilt from the store whenever a human is involved, so an agent's reply that arrives while
the customer is typing is never lost from view."""

from __future__ import annotations

import logging
from collections.abc import Callable

import gradio as gr
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

from assistant.conversation import ConversationService
from assistant.ownership import new_page_token, page_caller, page_owner, page_pass
from assistant.store import ConversationNotFoundError, HandoffError
from assistant.store.records import HandoffState, MessageRecord
from ui.recommendation_cards import CARD_CSS, LABELS, card_html
from ui.text import answer_markdown, literal, safe_markdown

CSS = """
.gradio-container {max-width: 860px !important; margin: auto;}
#chat-title {text-align: center;}
#chat-status {min-height: 1.5em;}
#language {text-align: right; font-size: .85rem;}
""" + CARD_CSS

TEXT = {
    "en": {
        "intro": "Ask about your account, orders, shipping, returns or billing.",
        "support": "{company} support", "conversation": "Conversation",
        "placeholder": "Type your question and press Enter", "send": "Send",
        "human": "Talk to a human", "end": "End chat",
        "why": "What was wrong with this answer? (optional)",
        "csat": "How satisfied are you with this conversation? (5 = very)", "rate": "Rate",
        "waiting": "⏳ A colleague has been asked to join. You can keep writing; they will see everything.",
        "joined": "🧑 **{agent}** from our team has joined the conversation.", "colleague": "A colleague",
        "closed": "This conversation is closed. Write again to start a new one.",
        "new": "_A new conversation has started._", "team": "our team", "sources": "Sources",
        "only_answers": "Only the assistant's answers can be rated.", "thanks": "Thank you, this helps us improve.",
        "thanks_rating": "Thank you for your rating!", "other": "[中文](/chat/zh/)",
        "slow_down": "⏳ Too many messages from your network just now: please try again in {seconds} s.",
    },
    "zh": {
        "intro": "关于账户、订单、配送、退换货或付款的问题，请在这里提问。",
        "support": "{company} 在线客服", "conversation": "对话",
        "placeholder": "输入您的问题，按回车发送", "send": "发送",
        "human": "转人工客服", "end": "结束对话",
        "why": "这个回答哪里有问题？（可选）",
        "csat": "您对本次对话满意吗？（5 = 非常满意）", "rate": "评分",
        "waiting": "⏳ 已请同事加入对话。您可以继续留言，他们会看到全部内容。",
        "joined": "🧑 客服 **{agent}** 已加入对话。", "colleague": "同事",
        "closed": "本次对话已结束。再次发送消息即可开始新的对话。",
        "new": "_新的对话已开始。_", "team": "客服", "sources": "来源",
        "only_answers": "只能评价助手的回答。", "thanks": "谢谢，您的反馈帮助我们改进。",
        "thanks_rating": "感谢您的评分！", "other": "[English](/chat/?lang=en)",
        "slow_down": "⏳ 您的网络刚刚发送的消息太多：请在 {seconds} 秒后再试。",
    },
}

log = logging.getLogger(__name__)


def plain(value) -> str:
    """What a caller sent as text, as text a page can show and store (Gradio passes on whatever it got)."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else ""


def status_line(state: HandoffState | None, agent: str | None = None, lang: str = "en") -> str:
    """What the customer should know about who is answering."""
    text = TEXT[lang]
    status = state.status if state is not None else "bot"
    if status == "waiting_human":
        return text["waiting"]
    if status == "human":
        return text["joined"].format(agent=agent or text["colleague"])
    if status == "closed":
        return text["closed"]
    return ""


def shown_message(message: MessageRecord, lang: str = "en", link_domains: list[str] = ()) -> dict | None:
    """A stored message as the customer sees it (agents named, citations linked); empty placeholders left out."""
    if not message.content:
        return None
    if message.role == "user":
        return {"role": "user", "content": literal(message.content)}
    if message.role == "agent":
        name = message.metadata.get("agent_name") or message.metadata.get("agent") or "agent"
        return {"role": "assistant",
                "content": f"**{literal(name)}** ({TEXT[lang]['team']}): {literal(message.content)}"}
    sources = message.metadata.get("sources") or []
    return {"role": "assistant",
            "content": answer_markdown(message.content, sources, TEXT[lang]["sources"], link_domains)}


def rendered(rows: list[MessageRecord], lang: str, link_domains: list[str] = ()) -> tuple[list[dict], dict, int]:
    """The chat as stored: the messages shown, chat position -> answer id (for ratings), the last message id."""
    kept = [(m, s) for m in rows if (s := shown_message(m, lang, link_domains))]
    answers = {str(i): m.id for i, (m, _) in enumerate(kept) if m.role == "assistant"}
    return [s for _, s in kept], answers, max((m.id for m in rows), default=0)


async def widget_channel(request: gr.Request | None,
                         service: ConversationService) -> tuple[str, dict, dict[str, str] | None]:
    """A chat opened by the widget (`?key=`) is tagged with its key, so operators see where customers came from; with
    `&identity=` (signed by the website with the key's identity secret, assistant/identity.py) it knows who the
    customer is. A token that proves nothing is ignored: the chat works, actions that need the customer refuse."""
    key = request.query_params.get("key") if request is not None else None
    record = await service.widget_key(key) if key else None
    if record is None:
        return "web", {}, None
    identity = None
    token = request.query_params.get("identity")
    if token:
        from assistant.identity import IdentityError, deployment_secret, key_secret, verify_identity

        try:
            identity = verify_identity(token, key_secret(deployment_secret(service.settings.home_dir), record.prefix))
        except IdentityError as exc:
            log.warning("widget %s: %s", record.prefix, exc)
    return "widget", {"widget_key": record.prefix, "widget_name": record.name}, identity


def build_chat_page(service: ConversationService, lang: str = "en",
                    address_wait: Callable[[Request], float] | None = None) -> gr.Blocks:
    """The page; `address_wait` counts each message against its address's rate limit (the API's own, shared)."""
    company, domains = service.settings.company_name, service.settings.link_domains
    text = TEXT[lang]

    async def new_conversation(request: gr.Request | None) -> tuple[str, str]:
        """A conversation owned by this browser: (its id, the pass the browser keeps)."""
        channel, metadata, identity = await widget_channel(request, service)
        token = new_page_token()
        record = await service.create_conversation(channel=channel, metadata={**metadata, "lang": lang},
                                                   owner=page_owner(token), verified_identity=identity)
        return record.id, page_pass(record.id, token)

    def too_fast(request: gr.Request) -> str | None:
        """What to tell a customer whose address is over its rate limit (each message or call for a human
        counts); None when it may go on."""
        wait = address_wait(request) if address_wait else 0
        return text["slow_down"].format(seconds=max(1, round(wait))) if wait else None

    async def opened(chat_pass: str | None) -> str | None:
        """The conversation this browser's pass opens; None without one, for a forged pass or a deleted chat."""
        named = page_caller(chat_pass)
        if named is None:
            return None
        try:
            await service.check_access(*named)
        except ConversationNotFoundError:
            return None
        return named[0]

    async def state_of(conversation_id: str | None) -> dict:
        """The status line, whether "talk to a human" is offered; `_state` is the conversation's status."""
        nothing = {status: "", human: gr.update(visible=True), "_state": "bot"}
        if not conversation_id:
            return nothing
        try:
            state = await service.handoff_state(conversation_id)
        except ConversationNotFoundError:
            return nothing
        return {status: status_line(state, state.agent_name, lang),
                human: gr.update(visible=state.status == "bot"), "_state": state.status}

    def linked_cards(conversation_id: str, answer_id: int, items: list[dict]) -> list[dict]:
        return [{**item, "answer_id": answer_id, "link": service.card_link(conversation_id, answer_id, item["id"])}
                for item in items]

    async def stored_cards(conversation_id: str, rows: list[MessageRecord]) -> list[dict]:
        """The cards of the last answer, when it recommended, less those dismissed."""
        last = next((m for m in reversed(rows) if m.role in ("assistant", "agent")), None)
        if last is None or not last.metadata.get("recommendations"):
            return []
        dismissed = await service.dismissed_items(conversation_id, last.id)
        return linked_cards(conversation_id, last.id,
                            [c for c in last.metadata["recommendations"] if c["id"] not in dismissed])

    async def dismiss(item_id: str, answer_id: int, current: list[dict], chat_pass: str | None):
        conversation_id = await opened(chat_pass)
        if conversation_id:
            await service.recommendation_feedback(conversation_id, answer_id, item_id, "dismiss")
            gr.Info(LABELS[lang]["dismissed"])
        return [c for c in current if c["id"] != item_id]

    def shown(state: dict) -> dict:
        return {k: v for k, v in state.items() if k != "_state"}

    async def from_store(conversation_id: str) -> dict:
        """The chat exactly as stored, with the ids that ratings and polling need."""
        rows = await service.messages(conversation_id)
        history, ids, upto = rendered(rows, lang, domains)
        return {chatbot: history, answer_ids: ids, shown_id: upto, cards: await stored_cards(conversation_id, rows)}

    async def respond(message: str, history: list[dict], chat_pass: str | None, answers: dict,
                      shown_upto: int, request: gr.Request):
        message = plain(message).strip()
        if not message:
            yield {box: ""}
            return
        if slow_down := too_fast(request):  # the text stays in the box
            yield {status: slow_down}
            return
        conversation_id = await opened(chat_pass)
        if conversation_id is None:
            conversation_id, chat_pass = await new_conversation(request)
        elif await service.is_closed(conversation_id):  # writing again after the end
            conversation_id, chat_pass = await new_conversation(request)
            history = [*history, {"role": "assistant", "content": text["new"]}]
        sources: list[dict] = []
        shown_cards: list[dict] = []
        written = ""  # the answer as the model wrote it; shown sanitised
        history = [*history, {"role": "user", "content": literal(message)}, {"role": "assistant", "content": ""}]

        def now() -> dict:
            return {chatbot: history, conversation: chat_pass, box: "", answer_ids: answers,
                    shown_id: shown_upto, cards: shown_cards}

        yield now()
        try:
            async for event in service.answer(conversation_id, message):
                if event.type == "accepted":
                    if event.data.get("answer_id"):
                        answers = {**answers, str(len(history) - 1): event.data["answer_id"]}
                    shown_upto = max(shown_upto, event.data.get("answer_id") or 0, event.data.get("message_id") or 0)
                elif event.type == "sources":
                    sources = event.data["sources"]
                elif event.type == "recommendations":
                    shown_cards = linked_cards(conversation_id, event.data["answer_id"], event.data["items"])
                elif event.type in ("delta", "replace"):
                    written = (written if event.type == "delta" else "") + event.data["text"]
                    history[-1]["content"] = safe_markdown(written, domains)
                    yield now()
                elif event.type == "error":
                    history[-1]["content"] += f"\n\n_{literal(event.data['message'])}_"
                    yield now()
        except ConversationNotFoundError:  # deleted meanwhile: keep the text so nothing typed is lost
            yield {chatbot: history[:-2], conversation: None, box: message, status: "",
                   human: gr.update(visible=True), answer_ids: {}, shown_id: 0}
            return
        except ValueError as exc:  # too long, or closed meanwhile: said in the chat, the text stays in the box
            history[-1]["content"] = f"_{literal(str(exc))}_"
            yield {**now(), box: message}
            return
        state = await state_of(conversation_id)
        view = now()
        if state["_state"] != "bot" or not history[-1]["content"]:  # a human is involved: show what is stored
            view.update(await from_store(conversation_id))
        elif sources:
            history[-1]["content"] = answer_markdown(written, sources, text["sources"], domains)
        yield {**view, **shown(state), csat_row: gr.update(visible=False)}

    async def rate(answers: dict, selection: gr.LikeData):
        """Thumbs up/down on a bot answer; a thumbs-down opens the optional comment box."""
        message_id = answers.get(str(selection.index if isinstance(selection.index, int) else selection.index[0]))
        if message_id is None:
            gr.Info(text["only_answers"])
            return {disliked: None, feedback_row: gr.update(visible=False)}
        liked = selection.liked is True or selection.liked == "Like"
        await service.feedback(message_id, 1 if liked else -1, author="customer")
        return {disliked: None if liked else message_id, feedback_row: gr.update(visible=not liked)}

    async def comment(why_text: str, message_id: int | None):
        why_text = plain(why_text).replace("\x00", "").strip()  # stored as it can be (PostgreSQL refuses NUL)
        if message_id and why_text:
            await service.feedback(message_id, comment=why_text[:4000], author="customer")
            gr.Info(text["thanks"])
        return {why: "", disliked: None, feedback_row: gr.update(visible=False)}

    async def end_chat(chat_pass: str | None):
        conversation_id = await opened(chat_pass)
        if conversation_id:
            await service.close(conversation_id)
        return {csat_row: gr.update(visible=bool(conversation_id)), **shown(await state_of(conversation_id))}

    async def rate_conversation(rating: str | None, chat_pass: str | None):
        conversation_id = await opened(chat_pass)
        if conversation_id and rating:
            await service.close(conversation_id, int(rating))
            gr.Info(text["thanks_rating"])
        return {csat_row: gr.update(visible=False)}

    async def ask_for_human(chat_pass: str | None, request: gr.Request):
        if slow_down := too_fast(request):
            return {status: slow_down}
        conversation_id = await opened(chat_pass)
        if conversation_id is None:
            conversation_id, chat_pass = await new_conversation(request)
        try:
            async for _ in service.hand_to_human(conversation_id, None, "customer_asked", lang=lang):
                pass
        except HandoffError as exc:
            state = await state_of(conversation_id)
            return {conversation: chat_pass, status: f"_{literal(str(exc))}_", human: state[human]}
        return {**await from_store(conversation_id), conversation: chat_pass,
                **shown(await state_of(conversation_id))}

    async def poll(chat_pass: str | None, shown_upto: int):
        """Every 2 s: while a human is involved (or an agent has written, or an operator decided on an action the
        customer confirmed), show what is new in the store."""
        conversation_id = await opened(chat_pass)
        state = await state_of(conversation_id)
        try:
            new = await service.messages_after(conversation_id, shown_upto) if conversation_id else []
        except ConversationNotFoundError:
            new = []
        outside = any(m.role == "agent" or m.metadata.get("reason") == "action_outcome" for m in new)
        if not new or (state["_state"] == "bot" and not outside):
            return shown(state)  # nothing new, or the bot's own streaming
        return {**await from_store(conversation_id), **shown(state)}

    async def restore(chat_pass: str | None):
        empty = {chatbot: [], conversation: None, answer_ids: {}, shown_id: 0, status: "", cards: [],
                 human: gr.update(visible=True)}
        conversation_id = await opened(chat_pass)
        if not conversation_id:
            return empty
        try:
            view = await from_store(conversation_id)
        except ConversationNotFoundError:
            return empty
        return {**view, conversation: chat_pass, **shown(await state_of(conversation_id))}

    with gr.Blocks(title=f"{company} — support chat") as page:
        gr.Markdown(text["other"], elem_id="language")
        gr.Markdown(f"## {text['support'].format(company=company)}\n{text['intro']}", elem_id="chat-title")
        # this browser's pass to its conversation (assistant/ownership.py): the id alone opens nothing
        conversation = gr.BrowserState(None, storage_key="assistant-conversation")
        shown_id = gr.State(0)  # the newest stored message the page shows
        answer_ids = gr.State({})  # chat position -> stored answer id, for ratings
        disliked = gr.State(None)
        chatbot = gr.Chatbot(label=text["conversation"], height=520, elem_id="chatbot",
                             feedback_options=("Like", "Dislike"))
        cards = gr.State([])  # the product cards of the last answer, when it recommended

        @gr.render(inputs=[cards, conversation])
        def show_cards(current: list[dict], chat_pass: str | None):
            if not current:
                return
            with gr.Column(elem_id="recommendations"):
                gr.Markdown(f"**{LABELS[lang]['heading']}**")
                for card in current:
                    with gr.Row(elem_classes=["rec-row"]):
                        gr.HTML(card_html(card, lang), scale=5)
                        button = gr.Button(LABELS[lang]["dismiss"], size="sm", scale=1,
                                           elem_classes=["rec-dismiss"], elem_id=f"dismiss-{card['id']}")
                        button.click(dismiss, [gr.State(card["id"]), gr.State(card["answer_id"]), cards, conversation],
                                     cards, api_visibility="private")

        status = gr.Markdown(elem_id="chat-status")
        with gr.Row(visible=False, elem_id="feedback-row") as feedback_row:
            why = gr.Textbox(placeholder=text["why"], show_label=False, scale=4, elem_id="feedback-comment",
                             max_length=4000)
            send_why = gr.Button(text["send"], size="sm", scale=1, elem_id="send-feedback")
        box = gr.Textbox(placeholder=text["placeholder"], show_label=False, submit_btn=text["send"],
                         elem_id="message-box", max_length=service.settings.max_message_chars)
        with gr.Row():
            human = gr.Button(text["human"], size="sm", elem_id="talk-to-human")
            end = gr.Button(text["end"], size="sm", elem_id="end-chat")
        with gr.Row(visible=False, elem_id="csat-row") as csat_row:
            score = gr.Radio(["1", "2", "3", "4", "5"], label=text["csat"], scale=4, elem_id="csat-score")
            send_score = gr.Button(text["rate"], size="sm", scale=1, elem_id="send-csat")
        box.submit(respond, [box, chatbot, conversation, answer_ids, shown_id],
                   [chatbot, conversation, box, status, human, csat_row, answer_ids, shown_id, cards],
                   api_visibility="private", concurrency_limit=None)
        chatbot.like(rate, answer_ids, [disliked, feedback_row], api_visibility="private")
        gr.on([why.submit, send_why.click], comment, [why, disliked], [why, disliked, feedback_row],
              api_visibility="private")
        end.click(end_chat, conversation, [csat_row, status, human], api_visibility="private")
        send_score.click(rate_conversation, [score, conversation], csat_row, api_visibility="private")
        human.click(ask_for_human, conversation, [chatbot, conversation, status, human, answer_ids, shown_id, cards],
                    api_visibility="private")
        gr.Timer(2).tick(poll, [conversation, shown_id], [chatbot, answer_ids, shown_id, status, human, cards],
                         api_visibility="private")
        chatbot.clear(lambda: {conversation: None, shown_id: 0, status: "", answer_ids: {}, cards: [],
                               human: gr.update(visible=True)}, None,
                      [conversation, shown_id, status, answer_ids, human, cards], api_visibility="private")
        page.load(restore, [conversation], [chatbot, conversation, answer_ids, shown_id, status, human, cards],
                  api_visibility="private")
    return page


def prefers_chinese(request: Request) -> bool:
    """The browser asks for Chinese before English (Accept-Language), and no language was chosen in the URL."""
    if request.query_params.get("lang"):
        return request.query_params["lang"].lower().startswith("zh")
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return True
        if tag.startswith("en"):
            return False
    return False


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group: /chat/zh in Chinese, /chat in English; /chat sends browsers that
    prefer Chinese (or `?lang=zh`, as the widget's `data-lang="zh"` asks) to /chat/zh, keeping the query, and
    /chat/zh to /chat/zh/."""

    @app.middleware("http")
    async def chinese_chat(request: Request, call_next):
        path = request.url.path
        # "/chat/zh" typed without its slash would reach the English page's mount and be a 404
        to_chinese = path == "/chat/zh" or (path in ("/chat", "/chat/") and prefers_chinese(request))
        if request.method == "GET" and to_chinese:
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"/chat/zh/{query}", status_code=307)
        return await call_next(request)

    wait = getattr(app.state, "address_wait", None)  # set by assistant.api.access
    gr.mount_gradio_app(app, build_chat_page(service, "zh", wait), path="/chat/zh", css=CSS, footer_links=[])
    gr.mount_gradio_app(app, build_chat_page(service, "en", wait), path="/chat", css=CSS, footer_links=[])
