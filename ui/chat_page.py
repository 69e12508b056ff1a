"""The customer chat page (Gradio), mounted at /chat on the API's port."""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from assistant.conversation import ConversationService
from assistant.store import ConversationNotFoundError

CSS = """
.gradio-container {max-width: 860px !important; margin: auto;}
#chat-title {text-align: center;}
"""


def build_chat_page(service: ConversationService) -> gr.Blocks:
    company = service.settings.company_name

    async def respond(text: str, history: list[dict], conversation_id: str | None):
        text = (text or "").strip()
        if not text:
            yield history, conversation_id, ""
            return
        if conversation_id is None:
            conversation_id = (await service.create_conversation(channel="web"))["id"]
        history = [*history, {"role": "user", "content": text}, {"role": "assistant", "content": ""}]
        yield history, conversation_id, ""
        try:
            async for event in service.answer(conversation_id, text):
                if event.type == "delta":
                    history[-1]["content"] += event.data["text"]
                    yield history, conversation_id, ""
                elif event.type == "error":
                    history[-1]["content"] += f"\n\n_{event.data['message']}_"
                    yield history, conversation_id, ""
        except ConversationNotFoundError:
            yield history[:-2], None, text
        except ValueError as exc:
            history[-1]["content"] = f"_{exc}_"
            yield history, conversation_id, ""

    async def restore(conversation_id: str | None):
        if not conversation_id:
            return [], None
        try:
            messages = await _history(service, conversation_id)
        except ConversationNotFoundError:
            return [], None
        return messages, conversation_id

    with gr.Blocks(title=f"{company} — support chat") as page:
        gr.Markdown(f"## {company} support\nAsk about your account, orders, shipping, returns or billing.",
                    elem_id="chat-title")
        conversation_id = gr.BrowserState(None, storage_key="assistant-conversation")
        chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chatbot")
        box = gr.Textbox(placeholder="Type your question and press Enter", show_label=False,
                         submit_btn="Send", elem_id="message-box", max_length=service.settings.max_message_chars)
        box.submit(respond, [box, chatbot, conversation_id], [chatbot, conversation_id, box],
                   api_visibility="private", concurrency_limit=None)
        chatbot.clear(lambda: None, None, [conversation_id], api_visibility="private")  # a new conversation
        page.load(restore, [conversation_id], [chatbot, conversation_id], api_visibility="private")
    return page


async def _history(service: ConversationService, conversation_id: str) -> list[dict]:
    import asyncio

    rows = await asyncio.to_thread(service.store.messages, conversation_id)
    return [{"role": "user" if m["role"] == "user" else "assistant", "content": m["content"]}
            for m in rows if m["content"]]


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group."""
    gr.mount_gradio_app(app, build_chat_page(service), path="/chat", css=CSS, footer_links=[])
