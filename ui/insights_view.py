"""The Insights view (Gradio), mounted at /insights for signed-in operators: what happened to the conversations of a
period (plots first: outcomes per day or week, why they went to a human), the numbers behind them (defined in
`assistant/insights/outcomes.py`), a CSV export, the topics customers ask about (with their outcomes, drill-down to
the conversations, rename and merge), the knowledge gaps and the curated answers served before the model."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import gradio as gr
import pandas as pd
from fastapi import FastAPI

from assistant.conversation import ConversationService
from assistant.insights.gaps import GapError, KnowledgeGap, extractive_draft
from assistant.insights.outcomes import OutcomeFilter, OutcomeQueryError, last_days, outcomes, series_csv
from assistant.insights.stored_topics import topics_csv
from assistant.store import ConversationNotFoundError, CuratedAnswerError, TopicError
from ui import operator_auth
from ui.operator_console import signed_in_operator, transcript_messages

CSS = """
.gradio-container {max-width: 1200px !important; margin: auto;}
"""
PERIODS = {"7 days": 7, "30 days": 30, "90 days": 90, "365 days": 365}
OUTCOME_COLORS = {"resolved by the assistant": "#2e8b57", "handed to a human": "#d1495b", "open": "#9aa5b1"}
CURATED_COLUMNS = ["id", "version", "question", "answer", "served", "by"]


def plotted(rows: list[dict], columns: list[str]) -> pd.DataFrame | None:
    """A plot's value; None when there is nothing to draw (a Gradio plot that first gets an empty frame draws no
    bars for the frames after it)."""
    return pd.DataFrame(rows, columns=columns) if rows else None


def outcome_bars(result: dict) -> pd.DataFrame | None:
    """The per-bucket outcomes in long form (one row per bucket and outcome) for a stacked bar plot."""
    rows = [{"period": s["period"], "outcome": name, "conversations": s[key]}
            for s in result["series"]
            for name, key in (("resolved by the assistant", "resolved_alone"), ("handed to a human", "handed_off"),
                              ("open", "open"))]
    return plotted(rows, ["period", "outcome", "conversations"])


def reason_bars(result: dict) -> pd.DataFrame | None:
    reasons = result["totals"]["handoff_reasons"]
    return plotted([{"reason": k.replace("_", " "), "conversations": v} for k, v in reasons.items()],
                   ["reason", "conversations"])


def headline(result: dict) -> str:
    t = result["totals"]
    if not t["conversations"]:
        return f"**No conversations** in this period ({result['note']})."
    bot = t["first_response_s"]["bot"]["p50"]
    human = t["first_response_s"]["human"]["p50"]
    csat = t["csat"]
    return (f"**{t['conversations']}** conversations · **{t['resolution_rate']:.0%}** resolved by the assistant alone "
            f"· **{t['handed_off']}** handed to a human · **{t['open']}** open · CSAT "
            f"**{csat['mean'] if csat['mean'] is not None else '–'}** ({csat['rated']} rated) · thumbs "
            f"{t['thumbs']['up']} up / {t['thumbs']['down']} down · first answer p50 "
            f"{'–' if bot is None else f'{bot:.1f} s'} (bot), {'–' if human is None else f'{human / 60:.1f} min'} "
            "(human)")


TOPIC_COLUMNS = ["id", "topic", "conversations", "trend", "resolved alone", "handed off", "CSAT", "example"]
TOPIC_CONVERSATION_COLUMNS = ["started", "outcome", "CSAT", "question", "conversation"]
TOP_TOPICS = 12


def topic_frame(result: dict) -> pd.DataFrame:
    rows = [{"id": t["id"], "topic": t["topic"], "conversations": t["conversations"],
             "trend": "new" if t["trend"] is None and t["later"] else "" if t["trend"] is None
             else f"{t['trend']:+.0%}",
             "resolved alone": f"{t['resolution_rate']:.0%}", "handed off": t["handed_off"],
             "CSAT": "" if t["csat"] is None else f"{t['csat']:.1f} ({t['rated']})",
             "example": t["examples"][0] if t["examples"] else ""} for t in result["topics"]]
    return pd.DataFrame(rows, columns=TOPIC_COLUMNS)


def topic_bars(result: dict) -> pd.DataFrame | None:
    """The largest topics' conversations by outcome, long form for a stacked bar plot."""
    rows = []
    for t in [t for t in result["topics"] if t["id"] >= 0][:TOP_TOPICS]:
        handed, resolved = t["handed_off"], t["resolved_alone"]
        for name, count in (("resolved by the assistant", resolved), ("handed to a human", handed),
                            ("open", t["conversations"] - resolved - handed)):
            rows.append({"topic": f"{t['topic'][:40]} (#{t['id']})", "outcome": name, "conversations": count})
    return plotted(rows, ["topic", "outcome", "conversations"])


def topic_summary(result: dict) -> str:
    if result["note"] and not result["topics"]:
        return result["note"]
    named = sum(t["id"] >= 0 for t in result["topics"])
    text = f"**{named}** topics in **{result['conversations']}** conversations"
    if result["unassigned"]:
        text += f" ({result['unassigned']} not in a topic: no topic close enough, or not assigned yet)"
    return text + (f". {result['note']}" if result["note"] else "")


def topic_conversation_frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"started": r["started"], "outcome": r["outcome"] + (f" ({r['reason'].replace('_', ' ')})"
                                                                             if r["reason"] else ""),
                          "CSAT": "" if r["csat"] is None else str(r["csat"]), "question": r["question"],
                          "conversation": r["conversation"]} for r in rows], columns=TOPIC_CONVERSATION_COLUMNS)


def exported(name: str, text: str) -> str:
    """A CSV download's file (in the temporary folder), written with `text`; its path."""
    path = Path(tempfile.gettempdir()) / name
    path.write_text(text, encoding="utf-8")
    return str(path)


GAP_COLUMNS = ["#", "topic", "questions", "why", "human replies", "example"]


def gaps_frame(gaps: list[KnowledgeGap]) -> pd.DataFrame:
    rows = []
    for i, gap in enumerate(gaps, 1):
        why = pd.Series([q.why.replace("_", " ") for q in gap.questions]).value_counts()
        rows.append({"#": i, "topic": gap.label, "questions": len(gap.questions),
                     "why": ", ".join(f"{k} {v}" for k, v in why.items()), "human replies": len(gap.human_replies),
                     "example": gap.questions[0].text})
    return pd.DataFrame(rows, columns=GAP_COLUMNS)


def gap_detail(gap: KnowledgeGap) -> pd.DataFrame:
    """The gap's questions beside what a human answered to each."""
    rows = [{"question": q.text, "why": q.why.replace("_", " "), "human reply": q.human_reply or "",
             "conversation": q.conversation_id} for q in gap.questions]
    return pd.DataFrame(rows, columns=["question", "why", "human reply", "conversation"])


def curated_frame(service: ConversationService) -> pd.DataFrame:
    rows = [{"id": a.id, "version": a.version, "question": a.question, "answer": a.answer, "served": a.served,
             "by": a.created_by} for a in service.store.curated.listed()]
    return pd.DataFrame(rows, columns=CURATED_COLUMNS)


def build_insights_view(service: ConversationService) -> gr.Blocks:
    company = service.settings.company_name

    def period_filter(period: str, channel: str, language: str, bucket: str = "day") -> OutcomeFilter:
        return last_days(PERIODS[period], channel=channel.strip() or None,
                         language=None if language == "all" else language, bucket=bucket)

    async def refresh(period: str, bucket: str, channel: str, language: str):
        try:
            result = await asyncio.to_thread(outcomes, service.store, period_filter(period, channel, language, bucket))
        except OutcomeQueryError as exc:
            raise gr.Error(str(exc)) from None
        return {bars: outcome_bars(result), reasons: reason_bars(result), summary: headline(result),
                download: exported("assistant-outcomes.csv", series_csv(result))}

    async def load_topics(period: str, channel: str, language: str):
        try:
            result = await service.insights.topics(period_filter(period, channel, language))
        except OutcomeQueryError as exc:
            raise gr.Error(str(exc)) from None
        return {topic_plot: topic_bars(result), topic_table: topic_frame(result), topic_note: topic_summary(result),
                topic_download: exported("assistant-topics.csv", topics_csv(result))}

    async def find_topics(period: str, channel: str, language: str, request: gr.Request):
        signed_in_operator(request)
        try:
            found = await service.insights.find_topics(*last_days(PERIODS[period]).window)
        except TopicError as exc:
            raise gr.Error(str(exc)) from None
        shown = await load_topics(period, channel, language)
        shown[topic_note] = f"Found **{len(found)}** topics in the last {period}. " + shown[topic_note]
        return shown

    async def pick_topic(period: str, channel: str, language: str, table: pd.DataFrame, selection: gr.SelectData):
        topic_id = int(table.iloc[selection.index[0]]["id"])
        rows = await service.insights.topic_conversations(period_filter(period, channel, language), topic_id)
        return {picked_topic: topic_id, topic_conversations: topic_conversation_frame(rows),
                topic_name: "" if topic_id < 0 else str(table.iloc[selection.index[0]]["topic"])}

    async def open_conversation(table: pd.DataFrame, selection: gr.SelectData):
        conversation_id = str(table.iloc[selection.index[0]]["conversation"])
        try:
            transcript, _ = await service.operators.transcript(conversation_id)
        except ConversationNotFoundError:
            raise gr.Error(f"Conversation {conversation_id} no longer exists (deleted or erased).") from None
        return transcript_messages(transcript, service.settings.link_domains)

    async def change_topic(topic_id: int | None, name: str, into: float | None, request: gr.Request):
        signed_in_operator(request)
        if topic_id is None or topic_id < 0:
            raise gr.Error("Pick a topic in the table first.")
        try:
            if into:
                record = await asyncio.to_thread(service.store.topics.merge, topic_id, int(into))
                return f"Topic {topic_id} is now part of topic {record.id} ({record.title})."
            record = await asyncio.to_thread(service.store.topics.rename, topic_id, name)
            return f"Topic {record.id} is now called “{record.title}”."
        except TopicError as exc:
            raise gr.Error(str(exc)) from None

    async def add_curated(question: str, answer: str, replaces: float | None, request: gr.Request):
        author = signed_in_operator(request)
        try:
            record = await asyncio.to_thread(service.curated.add, question, answer, author, "manual",
                                             int(replaces) if replaces else None)
        except CuratedAnswerError as exc:
            raise gr.Error(str(exc)) from None
        note = f"Curated answer {record.id} (version {record.version}) is served from now on."
        return {curated: curated_frame(service), curated_note: note, new_question: "", new_answer: ""}

    async def withdraw_curated(answer_id: float | None, request: gr.Request):
        if not answer_id:
            raise gr.Error("Give the id of the curated answer to withdraw.")
        try:
            await asyncio.to_thread(service.curated.withdraw, int(answer_id), signed_in_operator(request))
        except CuratedAnswerError as exc:
            raise gr.Error(str(exc)) from None
        return {curated: curated_frame(service), curated_note: f"Curated answer {int(answer_id)} is withdrawn."}

    async def load_gaps(period: str):
        gaps = await service.insights.gaps(*last_days(PERIODS[period]).window)
        groups = f"**{len(gaps)}** group{'s' if len(gaps) > 1 else ''}"
        return {gap_state: gaps, gap_table: gaps_frame(gaps),
                gap_note: f"{groups} of questions the assistant could not answer" if gaps
                else "No failed questions in this period."}

    def pick_gap(gaps: list[KnowledgeGap], selection: gr.SelectData):
        gap = gaps[selection.index[0]]
        draft = extractive_draft(gap)
        title = draft.splitlines()[0].removeprefix("# ").strip()
        return {picked: selection.index[0], gap_questions: gap_detail(gap), article_title: title,
                article_text: draft.split("\n", 2)[-1].strip()}

    async def model_draft(gaps: list[KnowledgeGap], index: int | None):
        if index is None or index >= len(gaps):
            raise gr.Error("Pick a group of questions first.")
        return {article_text: await service.insights.draft(gaps[index])}

    async def publish(title: str, text: str, request: gr.Request):
        signed_in_operator(request)
        try:
            done = await service.insights.publish(title, text)
        except GapError as exc:
            raise gr.Error(str(exc)) from None
        return {publish_note: f"Published: {done['passages_added']} passages added; the next answer can cite it."}

    async def curate_gap(gaps: list[KnowledgeGap], index: int | None, text: str, request: gr.Request):
        author = signed_in_operator(request)
        if index is None or index >= len(gaps):
            raise gr.Error("Pick a group of questions first.")
        question = gaps[index].questions[0].text
        try:
            record = await asyncio.to_thread(service.curated.add, question, text, author, "gap")
        except CuratedAnswerError as exc:
            raise gr.Error(str(exc)) from None
        return {publish_note: f"Curated answer {record.id}: served word for word to questions like “{question}”.",
                curated: curated_frame(service)}

    with gr.Blocks(title=f"{company} — insights") as page:
        gr.Markdown(f"## {company}: what customers ask and how the assistant does")
        with gr.Row():
            period = gr.Radio(list(PERIODS), value="30 days", label="period")
            bucket = gr.Radio(["day", "week"], value="day", label="per")
            channel = gr.Textbox(label="channel (empty: all)", placeholder="widget, api, ...")
            language = gr.Radio(["all", "en", "zh"], value="all", label="language")
        summary = gr.Markdown(elem_id="insights-summary")
        with gr.Row():
            bars = gr.BarPlot(x="period", y="conversations", color="outcome", color_map=OUTCOME_COLORS,
                              title="Conversations by outcome", height=320, scale=3, elem_id="outcome-bars")
            reasons = gr.BarPlot(x="reason", y="conversations", title="Why they went to a human", height=320,
                                 y_lim=[0, None], scale=2, elem_id="handoff-reasons")
        download = gr.File(label="outcomes per day/week (CSV)", interactive=False, elem_id="outcomes-csv")
        gr.Markdown("### Topics\nWhat customers ask about (their first question), grouped by meaning; new "
                    "conversations join the nearest topic as they arrive. Pick a topic to see its conversations, "
                    "pick a conversation to read it; rename a topic, or merge it into another.")
        with gr.Row():
            topic_note = gr.Markdown(elem_id="topic-summary")
            find = gr.Button("Find topics in this period", scale=0, elem_id="topics-find")
        topic_plot = gr.BarPlot(x="topic", y="conversations", color="outcome", color_map=OUTCOME_COLORS,
                                title="The largest topics by outcome", height=360, sort="-y", x_label_angle=-20,
                                elem_id="topic-bars")
        picked_topic = gr.State(None)
        topic_table = gr.Dataframe(headers=TOPIC_COLUMNS, datatype="str", wrap=True, interactive=False,
                                   column_widths=["5%", "22%", "10%", "8%", "10%", "9%", "9%", "27%"],
                                   max_height=320, elem_id="topics")
        topic_download = gr.File(label="topics (CSV)", interactive=False, elem_id="topics-csv")
        with gr.Row():
            topic_name = gr.Textbox(label="name of the picked topic", scale=2, elem_id="topic-name")
            rename = gr.Button("Rename", scale=0, elem_id="topic-rename")
            merge_into = gr.Number(label="merge the picked topic into topic id", value=None, precision=0, scale=1)
            merge = gr.Button("Merge", scale=0, elem_id="topic-merge")
        topic_change_note = gr.Markdown()
        with gr.Row():
            topic_conversations = gr.Dataframe(headers=TOPIC_CONVERSATION_COLUMNS, datatype="str", wrap=True,
                                               interactive=False, column_widths=["14%", "20%", "7%", "40%", "19%"],
                                               max_height=420, scale=3, elem_id="topic-conversations")
            transcript = gr.Chatbot(label="conversation", height=420, scale=2, elem_id="topic-transcript")
        gr.Markdown("### Knowledge gaps\nQuestions the assistant could not answer (no source, thumbs down, "
                    "corrected, handed to a human), grouped. Pick one to see what your team answered, draft an "
                    "article from it, and publish: it is in the knowledge base at once.")
        gap_note = gr.Markdown(elem_id="gap-summary")
        gap_state, picked = gr.State([]), gr.State(None)
        gap_table = gr.Dataframe(headers=GAP_COLUMNS, datatype="str", wrap=True, interactive=False,
                                 column_widths=["4%", "22%", "9%", "20%", "9%", "36%"], max_height=300,
                                 elem_id="knowledge-gaps")
        gap_questions = gr.Dataframe(headers=["question", "why", "human reply", "conversation"], datatype="str",
                                     wrap=True, interactive=False, column_widths=["35%", "10%", "40%", "15%"],
                                     max_height=300, elem_id="gap-questions")
        article_title = gr.Textbox(label="article title", elem_id="article-title")
        article_text = gr.Textbox(label="article (Markdown; edit before publishing)", lines=6,
                                  elem_id="article-text")
        with gr.Row():
            draft = gr.Button("Draft with the model", elem_id="article-draft")
            publish_button = gr.Button("Publish to the knowledge base", variant="primary", elem_id="article-publish")
            curate_button = gr.Button("Serve as a curated answer", elem_id="article-curate")
        publish_note = gr.Markdown()
        gr.Markdown("### Curated answers\nServed word for word, before the model, to questions that match the "
                    "question closely enough; marked as curated in the conversation.")
        # questions and answers are text: plain-text cells, never markdown or HTML
        curated = gr.Dataframe(headers=CURATED_COLUMNS, datatype="str", wrap=True, interactive=False,
                               column_widths=["6%", "7%", "30%", "42%", "7%", "8%"], max_height=360,
                               elem_id="curated-answers")
        with gr.Row():
            new_question = gr.Textbox(label="question", scale=2, elem_id="curated-question")
            new_answer = gr.Textbox(label="answer", lines=3, scale=3, elem_id="curated-answer")
            replaces = gr.Number(label="new version of id (optional)", value=None, precision=0, scale=1)
        with gr.Row():
            add = gr.Button("Serve this answer", variant="primary", elem_id="curated-add")
            withdraw_id = gr.Number(label="id to withdraw", value=None, precision=0)
            withdraw = gr.Button("Withdraw", elem_id="curated-withdraw")
        curated_note = gr.Markdown()
        inputs = [period, bucket, channel, language]
        outputs = [bars, reasons, summary, download]
        for trigger in [*(c.change for c in (period, bucket, language)), channel.submit, gr.Timer(60).tick,
                        page.load]:
            trigger(refresh, inputs, outputs, api_visibility="private")
        page.load(lambda: curated_frame(service), None, curated, api_visibility="private")
        topic_inputs = [period, channel, language]
        topic_outputs = [topic_plot, topic_table, topic_note, topic_download]
        for trigger in [*(c.change for c in (period, language)), channel.submit, page.load]:
            trigger(load_topics, topic_inputs, topic_outputs, api_visibility="private")
        found = find.click(find_topics, topic_inputs, topic_outputs, api_visibility="private")
        topic_table.select(pick_topic, [*topic_inputs, topic_table], [picked_topic, topic_conversations, topic_name],
                           api_visibility="private")
        topic_conversations.select(open_conversation, topic_conversations, transcript, api_visibility="private")
        for button, merge_input in ((rename, gr.State(None)), (merge, merge_into)):
            button.click(change_topic, [picked_topic, topic_name, merge_input], topic_change_note,
                         api_visibility="private").success(load_topics, topic_inputs, topic_outputs,
                                                           api_visibility="private")
        for trigger in (period.change, page.load, found.success):  # gaps are grouped by the topics found
            trigger(load_gaps, period, [gap_state, gap_table, gap_note], api_visibility="private")
        gap_table.select(pick_gap, gap_state, [picked, gap_questions, article_title, article_text],
                         api_visibility="private")
        draft.click(model_draft, [gap_state, picked], article_text, api_visibility="private")
        publish_button.click(publish, [article_title, article_text], publish_note, api_visibility="private")
        curate_button.click(curate_gap, [gap_state, picked, article_text], [publish_note, curated],
                            api_visibility="private")
        add.click(add_curated, [new_question, new_answer, replaces], [curated, curated_note, new_question, new_answer],
                  api_visibility="private")
        withdraw.click(withdraw_curated, withdraw_id, [curated, curated_note], api_visibility="private")
    return page


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group; operators sign in as for the console."""
    gr.mount_gradio_app(app, build_insights_view(service), path="/insights", css=CSS, footer_links=[],
                        auth_dependency=operator_auth.session_user(app, service))
