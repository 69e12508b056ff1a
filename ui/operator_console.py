"""The operator console (Gradio, login required), mounted at /operator: live conversations with status, waiting
time, sentiment and alerts; take over, reply as the agent, hand back, close; correct a bot answer (stored as the
better answer, which `assistant align --from-store` turns into a preference pair); export transcripts."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

import gradio as gr
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask

from assistant.conversation import ConversationService
from assistant.privacy import write_export
from assistant.store import ActionStateError, CuratedAnswerError, HandoffError
from assistant.store.records import ConversationSummary, FeedbackSummary, TranscriptEntry
from ui import operator_auth
from ui.text import literal, safe_markdown

CSS = """
.gradio-container {max-width: 1400px !important; margin: auto;}
"""
STATUSES = {"all": None, "waiting for a human": "waiting_human", "with a human": "human", "bot": "bot",
            "closed": "closed"}
SESSION_ENDED = ("Your session has ended. Sign in again at /operator/login (a new tab keeps this one as it is), "
                 "then retry: what you typed is still here.")
SESSION_ENDED_BANNER = "⚠️ Your session has ended: [sign in again](/operator/login)"
EXPORT_NAME = re.compile(r"transcripts-[0-9-]+\.jsonl")
EXPORT_TTL_S = 600  # an export not downloaded within 10 minutes is deleted
OVERVIEW_COLUMNS = ["status", "waiting", "customer", "last message", "sentiment", "alerts", "agent", "updated", "id"]


def _minutes(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    minutes = int((now - since).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def overview_frame(rows: list[ConversationSummary], now: datetime | None = None,
                   alerts_only: bool = False) -> pd.DataFrame:
    """The conversation list: waiting ones first (longest wait first), then by last activity."""
    now = now or datetime.now(UTC)
    if alerts_only:
        rows = [r for r in rows if r.alerts]
    rows = sorted(rows, key=lambda r: (r.waiting_since is None, r.waiting_since or now, -r.updated_at.timestamp()))
    table = [{
        "status": r.status.replace("_", " "), "waiting": _minutes(r.waiting_since, now),
        "customer": r.customer_id or r.channel,
        "last message": f"{r.last_role or ''}: {r.last_message[:120]}" if r.last_role else "",
        "sentiment": f"{r.sentiment} ({r.sentiment_score:+.2f})" if r.sentiment else "",
        "alerts": r.alerts or "", "agent": r.agent or "", "updated": r.updated_at.strftime("%H:%M:%S"),
        "id": r.id} for r in rows]
    return pd.DataFrame(table, columns=OVERVIEW_COLUMNS)


def signed_in_operator(request: gr.Request) -> str:
    """The signed-in operator; an ended session stops the action with a clear message, the typed text kept."""
    if not request.username:
        raise gr.Error(SESSION_ENDED, title="Signed out")
    return request.username


def transcript_messages(transcript: list[TranscriptEntry], link_domains: Collection[str] = ()) -> list[dict]:
    """Chatbot messages: customer on the right, bot and agents on the left (named), feedback under an answer."""
    shown = []
    for m in transcript:
        if m.role == "user":
            shown.append({"role": "user", "content": literal(m.content)})
            continue
        who = f"**{literal(m.agent)}** (agent)" if m.role == "agent" else "bot"
        text = literal(m.content) if m.role == "agent" else safe_markdown(m.content, link_domains)
        text = text or f"_({m.status})_"
        feedback = m.feedback or FeedbackSummary()
        notes = []
        if feedback.rating:
            notes.append("👍" if feedback.rating > 0 else "👎")
        if feedback.comment:
            notes.append(f"“{literal(feedback.comment)}”")
        if feedback.corrected_text:
            notes.append(f"corrected to: {literal(feedback.corrected_text)}")
        footer = f"\n\n> {' · '.join(notes)}" if notes else ""
        checked = [f"✂ cut before sending: “{literal(sentence)}” ({literal(why)})" for sentence, why in m.cut]
        if m.fell_back:
            checked.append("the model's answer was mostly unsupported: the answer quoted from the sources was sent")
        footer += "".join(f"\n\n> {line}" for line in checked)
        shown.append({"role": "assistant", "content": f"{who} · #{m.id}\n\n{text}{footer}"})
    return shown


def answer_choices(transcript: list[TranscriptEntry]) -> list[tuple[str, int]]:
    """Every finished bot answer can be corrected, an empty or broken one too."""
    return [(f"#{m.id}: {m.content.strip()[:70] or '(' + m.status + ', empty)'}", m.id)
            for m in transcript if m.role == "assistant" and m.status != "streaming"]


def parse_day(text: str, field: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise gr.Error(f"{field}: '{text}' is not a date like 2026-11-28") from None


APPROVAL_COLUMNS = ["run", "conversation", "action", "arguments", "confirmed"]


def build_operator_console(service: ConversationService) -> gr.Blocks:
    operators = service.operators

    def signed_in_as(request: gr.Request) -> dict:
        return {signed_in: operator_auth.signed_in_line(request.username, request.cookies)
                if request.username else ""}

    async def refresh(status_name: str, with_alerts: bool, request: gr.Request):
        if not request.username:
            return {waiting: SESSION_ENDED_BANNER}
        rows = await operators.overview(STATUSES[status_name])
        count = sum(1 for r in rows if r.status == "waiting_human")
        return {table: overview_frame(rows, alerts_only=with_alerts), waiting: f"**{count}** waiting for a human"}

    async def show(conversation_id: str | None, request: gr.Request):
        signed_in_operator(request)
        return await open_conversation(conversation_id)

    async def open_conversation(conversation_id: str | None) -> dict:
        """The conversation as the console shows it: transcript, bot answers to correct, status line; the reply box
        emptied (callers that keep the draft drop `answer`)."""
        if not conversation_id:
            return {chat: [], which: gr.Dropdown(choices=[], value=None), answer: "",
                    heading: "Pick a conversation in the list."}
        try:
            transcript, info = await operators.transcript(conversation_id)
        except LookupError:
            return {chat: [], which: gr.Dropdown(choices=[], value=None), answer: "",
                    heading: "That conversation no longer exists."}
        line = f"**{info.status.replace('_', ' ')}** · {literal(info.channel)} · {conversation_id}"
        if info.csat:
            line += f" · CSAT {info.csat}/5"
        return {chat: transcript_messages(transcript, service.settings.link_domains),
                which: gr.Dropdown(choices=answer_choices(transcript)), answer: "", heading: line}

    async def follow(conversation_id: str | None, request: gr.Request):
        """The timer's refresh of the open conversation: new messages and status, never the operator's drafts."""
        if not request.username:
            return {}
        view = await open_conversation(conversation_id)
        return {chat: view[chat], heading: view[heading]}

    async def keeping_draft(conversation_id: str):
        """The conversation refreshed after an action; the reply being typed stays (only sending clears it)."""
        view = await open_conversation(conversation_id)
        del view[answer]
        return view

    def pick(rows: pd.DataFrame, selection: gr.SelectData) -> dict:
        return {current: rows.iloc[selection.index[0]]["id"]}

    async def act(action: str, conversation_id: str | None, request: gr.Request):
        name = signed_in_operator(request)
        if not conversation_id:
            raise gr.Error("pick a conversation first")
        try:
            if action == "take":
                await operators.take_over(conversation_id, name)
            elif action == "back":
                await operators.hand_back(conversation_id)
            else:
                await operators.close(conversation_id)
        except HandoffError as exc:
            raise gr.Error(str(exc)) from exc
        return await keeping_draft(conversation_id)

    async def reply(text: str, conversation_id: str | None, request: gr.Request):
        name = signed_in_operator(request)
        if not conversation_id:
            raise gr.Error("pick a conversation first")
        try:
            await operators.reply(conversation_id, name, text)
        except (HandoffError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        return await open_conversation(conversation_id)

    async def load_answer(conversation_id: str | None, message_id: int | None, request: gr.Request):
        signed_in_operator(request)
        if not conversation_id or not message_id:
            return {better: ""}
        transcript, _ = await operators.transcript(conversation_id)
        content = next((m.content for m in transcript if m.id == message_id), "")
        return {better: content} if content.strip() else {}  # start from the bot's words, if it had any

    async def correct(conversation_id: str | None, message_id: int | None, text: str, curate: bool,
                      request: gr.Request):
        name = signed_in_operator(request)
        if not message_id or not text.strip():
            raise gr.Error("pick a bot answer and write the better answer")
        await operators.correct(message_id, text, name)
        gr.Info("Saved: the next `assistant align --from-store` learns from it.")
        if curate:
            transcript, _ = await operators.transcript(conversation_id)
            asked = [m.content for m in transcript if m.role == "user" and m.id < message_id]
            if not asked:
                gr.Warning("No customer question before this answer: nothing to serve the correction for.")
            else:
                try:
                    record = await asyncio.to_thread(service.curated.add, asked[-1], text, name, "correction")
                    gr.Info(f"Curated answer {record.id}: served from now on to questions like “{asked[-1][:80]}”.")
                except CuratedAnswerError as exc:
                    gr.Warning(f"The correction is saved, but not served as a curated answer: {exc}")
        return await keeping_draft(conversation_id)

    async def export(first: str, last: str, request: gr.Request):
        signed_in_operator(request)
        start, end = parse_day(first, "from"), parse_day(last, "to") + timedelta(days=1)
        rows = await operators.export(start, end)
        if not rows:
            raise gr.Error(f"no conversations from {first} to {last}")
        folder = service.settings.exports_dir
        await asyncio.to_thread(delete_stale_exports, folder)
        path = await asyncio.to_thread(write_export, rows, folder)
        return {exported: f"[⬇ {path.name}]({operator_auth.PATH}/exports/{path.name}) ({len(rows)} conversations; "
                          f"the file is deleted once downloaded, or after {EXPORT_TTL_S // 60} minutes)"}

    async def approvals(request: gr.Request):
        if not request.username:
            return {}
        queue = await service.approval_queue()
        rows = [[r.id, r.conversation_id, r.action, ", ".join(f"{k}: {v}" for k, v in r.arguments.items()),
                 r.created_at.strftime("%Y-%m-%d %H:%M")] for r in queue]
        return {queued: pd.DataFrame(rows, columns=APPROVAL_COLUMNS),
                run_pick: gr.Dropdown(choices=[(f"#{r.id} {r.action}", r.id) for r in queue]),
                approvals_heading: f"Actions waiting for approval ({len(queue)})"}

    async def decide(approve: bool, run_id: int | None, why: str, request: gr.Request):
        name = signed_in_operator(request)
        if not run_id:
            raise gr.Error("pick an action first")
        try:
            reply = await service.decide_action(int(run_id), name, approve, why)
        except (ActionStateError, ValueError) as exc:
            raise gr.Error(str(exc)) from exc
        gr.Info(f"The customer reads: {reply.text}")
        return {**await approvals(request), reason: ""}

    today = datetime.now(UTC).strftime("%Y-%m-%d")
    with gr.Blocks(title=f"{service.settings.company_name} — operator console") as page:
        with gr.Row():
            gr.Markdown(f"## {service.settings.company_name}: operator console")
            waiting = gr.Markdown(elem_id="waiting-count")
            signed_in = gr.Markdown(elem_id="signed-in")
        with gr.Row():
            with gr.Column(scale=5):
                with gr.Row():
                    status = gr.Radio(list(STATUSES), value="all", label="show", elem_id="status-filter")
                    alerts_only = gr.Checkbox(label="only with sentiment alerts")
                table = gr.Dataframe(headers=OVERVIEW_COLUMNS, interactive=False, wrap=True, max_height=640,
                                     column_widths=["9%", "7%", "9%", "33%", "12%", "5%", "7%", "8%", "10%"],
                                     elem_id="conversations")
            with gr.Column(scale=4):
                current = gr.Textbox(visible=False, elem_id="current-conversation")
                heading = gr.Markdown("Pick a conversation in the list.", elem_id="conversation-status")
                chat = gr.Chatbot(label="transcript", height=420, elem_id="transcript")
                with gr.Row():
                    take = gr.Button("Take over", variant="primary", elem_id="take-over")
                    back = gr.Button("Hand back to the bot", elem_id="hand-back")
                    close = gr.Button("Close", variant="stop", elem_id="close-conversation")
                answer = gr.Textbox(placeholder="Reply as the agent and press Enter", show_label=False,
                                    submit_btn="Send", elem_id="agent-reply")
                with gr.Accordion("Correct a bot answer", open=False, elem_id="correction-panel"):
                    which = gr.Dropdown(label="bot answer", choices=[], elem_id="answer-pick")
                    better = gr.Textbox(label="the better answer", lines=4, elem_id="better-answer")
                    curate = gr.Checkbox(label="also serve it, word for word, to customers who ask this question "
                                               "(a curated answer: Insights lists it, and can withdraw it)",
                                         value=False, elem_id="correction-curate")
                    save = gr.Button("Save as the better answer", elem_id="save-correction")
                with gr.Accordion("Actions waiting for approval", open=False, elem_id="approvals") as panel:
                    approvals_heading = gr.Markdown(elem_id="approvals-heading")
                    queued = gr.Dataframe(headers=APPROVAL_COLUMNS, interactive=False, wrap=True,
                                          elem_id="approval-queue")
                    run_pick = gr.Dropdown(label="action", choices=[], elem_id="approval-pick")
                    reason = gr.Textbox(label="reason if rejected (the customer reads it)", elem_id="reject-reason")
                    with gr.Row():
                        approve_button = gr.Button("Approve and run", variant="primary", elem_id="approve-action")
                        reject_button = gr.Button("Reject", variant="stop", elem_id="reject-action")
                with gr.Accordion("Export transcripts (align JSONL)", open=False):
                    with gr.Row():
                        first = gr.Textbox(value=today, label="from (YYYY-MM-DD)")
                        last = gr.Textbox(value=today, label="to (YYYY-MM-DD)")
                    export_button = gr.Button("Export")
                    exported = gr.Markdown(elem_id="export-file")
        shown = [chat, which, answer, heading]
        for trigger in (status.change, alerts_only.change, gr.Timer(5).tick, page.load):
            trigger(refresh, [status, alerts_only], [table, waiting], api_visibility="private")
        page.load(signed_in_as, None, signed_in, api_visibility="private")
        table.select(pick, table, current, api_visibility="private")
        current.change(show, current, shown, api_visibility="private")
        gr.Timer(3).tick(follow, current, [chat, heading], api_visibility="private")
        for button, action in ((take, "take"), (back, "back"), (close, "close")):
            button.click(act, [gr.State(action), current], shown, api_visibility="private").success(
                refresh, [status, alerts_only], [table, waiting], api_visibility="private")  # the list at once
        answer.submit(reply, [answer, current], shown, api_visibility="private")
        which.change(load_answer, [current, which], better, api_visibility="private")
        save.click(correct, [current, which, better, curate], shown, api_visibility="private")
        export_button.click(export, [first, last], exported, api_visibility="private")
        listed = [queued, run_pick, approvals_heading]
        for trigger in (gr.Timer(5).tick, page.load, panel.expand):
            trigger(approvals, None, listed, api_visibility="private")
        approve_button.click(decide, [gr.State(True), run_pick, reason], [*listed, reason], api_visibility="private")
        reject_button.click(decide, [gr.State(False), run_pick, reason], [*listed, reason], api_visibility="private")
    return page


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group; operators sign in with accounts from `assistant operators`."""

    @app.get(f"{operator_auth.PATH}/exports/{{name}}", include_in_schema=False)
    async def download_export(request: Request, name: str) -> Response:
        """An export, to a signed-in operator only, once: the file is deleted when sent."""
        session = await operator_auth.operator_session(service, request)
        if session is None or session.expired:
            return JSONResponse({"error": {"message": "sign in at /operator/login to download exports"}}, 401)
        folder = service.settings.exports_dir
        await asyncio.to_thread(delete_stale_exports, folder)
        path = folder / name
        if not EXPORT_NAME.fullmatch(name) or not path.is_file():
            return JSONResponse({"error": {"message": "no such export (exports are deleted once downloaded, or "
                                                      f"after {EXPORT_TTL_S // 60} minutes)"}}, 404)
        return FileResponse(path, media_type="application/x-ndjson", filename=name,
                            headers={"Cache-Control": "no-store"}, background=BackgroundTask(path.unlink, True))

    gr.mount_gradio_app(app, build_operator_console(service), path=operator_auth.PATH, css=CSS, footer_links=[],
                        auth_dependency=operator_auth.session_user(app, service))


def delete_stale_exports(folder: Path) -> None:
    """Exports not downloaded in time are deleted: transcripts do not linger on disk."""
    cutoff = time.time() - EXPORT_TTL_S
    for path in folder.glob("transcripts-*.jsonl") if folder.is_dir() else []:
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
