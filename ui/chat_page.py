"""The customer chat page (Gradio), mounted at /chat on the API's port: streamed answers, "talk to a human", the
agent's replies as they come, and a clear status while a human is asked for or has joined."""

from __future__ import annotations

import asyncio

import gradio as gr
from fastapi import FastAPI

from assistant.conversation import ConversationService
from assistant.store import ConversationNotFoundError, HandoffError

CSS = """
.gradio-container {max-width: 860px !important; margin: auto;}
#chat-title {text-align: center;}
#chat-status {min-height: 1.5em;}
"""


def status_line(conversation: dict | None, agent: str | None = None) -> str:
    """What the customer should know about who is answering."""
    status = (conversation or {}).get("status", "bot")
    if status == "waiting_human":
        return "⏳ A colleague has been asked to join. You can keep writing; they will see everything."
    if status == "human":
        return f"🧑 **{agent or 'A colleague'}** from our team has joined the conversation."
    if status == "closed":
        return "This conversation is closed. Clear the chat to start a new one."
    return ""


def shown_message(message: dict) -> dict | None:
    """A stored message as the customer sees it (agents are named); empty bot placeholders are left out."""
    if not message["content"]:
        return None
    if message["role"] == "user":
        return {"role": "user", "content": message["content"]}
    if message["role"] == "agent":
        name = message["metadata"].get("agent_name") or message["metadata"].get("agent") or "agent"
        return {"role": "assistant", "content": f"**{name}** (our team): {message['content']}"}
    return {"role": "assistant", "content": message["content"]}


def build_chat_page(service: ConversationService) -> gr.Blocks:
    company = service.settings.company_name
    store = service.store

    async def respond(text: str, history: list[dict], conversation_id: str | None, answers: dict):
        text = (text or "").strip()
        if not text:
            yield history, conversation_id, "", gr.update(), answers
            return
        if conversation_id is None:
            conversation_id = (await service.create_conversation(channel="web"))["id"]
        history = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        yield history, conversation_id, "", gr.update(), answers
        try:
            async for event in service.answer(conversation_id, text):
                if event.type == "accepted" and event.data.get("answer_id"):
                    answers = {**answers, str(len(history) - 1): event.data["answer_id"]}
                if event.type == "delta":
                    history[-1]["content"] += event.data["text"]
                    yield history, conversation_id, "", gr.update(), answers
                elif event.type == "error":
                    history[-1]["content"] += f"\n\n_{event.data['message']}_"
                    yield history, conversation_id, "", gr.update(), answers
        except ConversationNotFoundError:
            yield history[:-2], None, text, "", answers
            return
        except ValueError as exc:
            history[-1]["content"] = f"_{exc}_"
        if not history[-1]["content"]:  # the bot said nothing (a human has the conversation)
            answers = {k: v for k, v in answers.items() if k != str(len(history) - 1)}
            history = history[:-1]
        yield history, conversation_id, "", await _status(conversation_id), answers

    async def rate(answers: dict, selection: gr.LikeData):
        """Thumbs up/down on a bot answer; a thumbs-down opens the optional comment box."""
        message_id = answers.get(str(selection.index if isinstance(selection.index, int) else selection.index[0]))
        if message_id is None:
            gr.Info("Only the assistant's answers can be rated.")
            return None, gr.update(visible=False)
        liked = selection.liked is True or selection.liked == "Like"
        await asyncio.to_thread(store.add_feedback, message_id, 1 if liked else -1, None, None, "customer")
        return (None, gr.update(visible=False)) if liked else (message_id, gr.update(visible=True))

    async def comment(text: str, message_id: int | None):
        if message_id and text.strip():
            await asyncio.to_thread(store.add_feedback, message_id, None, text.strip()[:4000], None, "customer")
            gr.Info("Thank you, this helps us improve.")
        return "", None, gr.update(visible=False)

    async def end_chat(conversation_id: str | None):
        if conversation_id:
            await asyncio.to_thread(store.close_conversation, conversation_id)
        return gr.update(visible=bool(conversation_id)), await _status(conversation_id)

    async def rate_conversation(score: str | None, conversation_id: str | None):
        if conversation_id and score:
            await asyncio.to_thread(store.close_conversation, conversation_id, int(score))
            gr.Info("Thank you for your rating!")
        return gr.update(visible=False)

    async def ask_for_human(history: list[dict], conversation_id: str | None, answers: dict):
        if conversation_id is None:
            conversation_id = (await service.create_conversation(channel="web"))["id"]
        try:
            async for event in service.hand_to_human(conversation_id, None, "customer_asked"):
                if event.type == "delta":
                    history = [*history, {"role": "assistant", "content": event.data["text"]}]
                elif event.type == "done" and event.data["message_id"]:
                    answers = {**answers, str(len(history) - 1): event.data["message_id"]}
        except HandoffError as exc:
            return history, conversation_id, f"_{exc}_", answers
        return history, conversation_id, await _status(conversation_id), answers

    async def _status(conversation_id: str | None) -> str:
        if not conversation_id:
            return ""
        try:
            state = await asyncio.to_thread(store.handoff_state, conversation_id)
        except ConversationNotFoundError:
            return ""
        return status_line(state, state["agent_name"])

    async def poll(history: list[dict], conversation_id: str | None, last_agent_id: int):
        """While a human is involved, show the agent's new replies and the current status."""
        if not conversation_id:
            return gr.update(), last_agent_id, gr.update()
        try:
            conversation = await asyncio.to_thread(store.get_conversation, conversation_id)
        except ConversationNotFoundError:
            return gr.update(), last_agent_id, ""
        if conversation["status"] == "bot" and not last_agent_id:
            return gr.update(), last_agent_id, gr.update()
        new = [m for m in await asyncio.to_thread(store.messages_after, conversation_id, last_agent_id)
               if m["role"] == "agent"]
        status = await _status(conversation_id)
        if not new:
            return gr.update(), last_agent_id, status
        shown = [shown_message(m) for m in new]
        return [*history, *[m for m in shown if m]], new[-1]["id"], status

    async def restore(conversation_id: str | None):
        if not conversation_id:
            return [], None, 0, "", {}
        try:
            rows = await asyncio.to_thread(store.messages, conversation_id)
        except ConversationNotFoundError:
            return [], None, 0, "", {}
        agents = [m["id"] for m in rows if m["role"] == "agent"]
        kept = [(m, shown_message(m)) for m in rows]
        kept = [(m, s) for m, s in kept if s]
        answers = {str(i): m["id"] for i, (m, _) in enumerate(kept) if m["role"] == "assistant"}
        return ([s for _, s in kept], conversation_id, max(agents, default=0), await _status(conversation_id),
                answers)

    with gr.Blocks(title=f"{company} — support chat") as page:
        gr.Markdown(f"## {company} support\nAsk about your account, orders, shipping, returns or billing.",
                    elem_id="chat-title")
        conversation_id = gr.BrowserState(None, storage_key="assistant-conversation")
        last_agent_id = gr.State(0)
        answers = gr.State({})  # chat position -> stored answer id, for ratings
        disliked = gr.State(None)
        chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chatbot", feedback_options=("Like", "Dislike"))
        status = gr.Markdown(elem_id="chat-status")
        with gr.Row(visible=False, elem_id="feedback-row") as feedback_row:
            why = gr.Textbox(placeholder="What was wrong with this answer? (optional)", show_label=False, scale=4,
                             elem_id="feedback-comment", max_length=4000)
            send_why = gr.Button("Send", size="sm", scale=1, elem_id="send-feedback")
        box = gr.Textbox(placeholder="Type your question and press Enter", show_label=False,
                         submit_btn="Send", elem_id="message-box", max_length=service.settings.max_message_chars)
        with gr.Row():
            human = gr.Button("Talk to a human", size="sm", elem_id="talk-to-human")
            end = gr.Button("End chat", size="sm", elem_id="end-chat")
        with gr.Row(visible=False, elem_id="csat-row") as csat_row:
            score = gr.Radio(["1", "2", "3", "4", "5"], label="How satisfied are you with this conversation? "
                                                            "(5 = very)", scale=4, elem_id="csat-score")
            send_score = gr.Button("Rate", size="sm", scale=1, elem_id="send-csat")
        box.submit(respond, [box, chatbot, conversation_id, answers], [chatbot, conversation_id, box, status, answers],
                   api_visibility="private", concurrency_limit=None)
        chatbot.like(rate, answers, [disliked, feedback_row], api_visibility="private")
        gr.on([why.submit, send_why.click], comment, [why, disliked], [why, disliked, feedback_row],
              api_visibility="private")
        end.click(end_chat, conversation_id, [csat_row, status], api_visibility="private")
        send_score.click(rate_conversation, [score, conversation_id], csat_row, api_visibility="private")
        human.click(ask_for_human, [chatbot, conversation_id, answers], [chatbot, conversation_id, status, answers],
                    api_visibility="private")
        gr.Timer(2).tick(poll, [chatbot, conversation_id, last_agent_id], [chatbot, last_agent_id, status],
                         api_visibility="private")
        chatbot.clear(lambda: (None, 0, "", {}), None, [conversation_id, last_agent_id, status, answers],
                      api_visibility="private")  # a new conversation
        page.load(restore, [conversation_id], [chatbot, conversation_id, last_agent_id, status, answers],
                  api_visibility="private")
    return page


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group."""
    gr.mount_gradio_app(app, build_chat_page(service), path="/chat", css=CSS, footer_links=[])
