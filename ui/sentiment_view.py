"""The sentiment view (Gradio), mounted at /sentiment: trend lines first (negative share and mean score per window,
overall or per entity/topic/source), the label distribution, the alert list, and the texts behind a chart region."""

from __future__ import annotations

from datetime import UTC, datetime

import gradio as gr
import pandas as pd
from fastapi import FastAPI

from assistant.conversation import ConversationService
from assistant.sentiment import trends
from assistant.store.records import ScoredText, SentimentAlertRecord, TrajectoryPoint
from ui import operator_auth

CSS = """
.gradio-container {max-width: 1200px !important; margin: auto;}
#sentiment-title h2 {margin-bottom: 0;}
"""
WINDOWS = {"hour": "1h", "6 hours": "6h", "day": "1D", "week": "7D"}
SPLITS = {"overall": None, "per entity": "entity", "per topic": "topic", "per source": "source"}
LABEL_COLORS = {"negative": "#d1495b", "neutral": "#9aa5b1", "positive": "#2e8b57"}


async def load_rows(service: ConversationService, kind: str) -> list[ScoredText]:
    return await service.sentiment.rows(kind)


def trend_frame(rows: trends.Rows, window: str, by: str | None) -> pd.DataFrame:
    """The window table as plot points: percent negative, naive UTC time for the x axis. A line needs two
    points, so a group seen in one window only is drawn flat across that window."""
    table = trends.window_table(rows, window, by)
    table["negative %"] = (table["negative_share"] * 100).round(1)
    table["time"] = pd.to_datetime(table["window"], utc=True).dt.tz_localize(None)
    single = table[table.groupby("group")["group"].transform("size") == 1].copy()
    single["time"] = single["time"] + pd.Timedelta(window) - pd.Timedelta(seconds=1)
    columns = ["time", "group", "items", "negative %", "mean_score"]
    return pd.concat([table, single]).sort_values(["group", "time"])[columns].reset_index(drop=True)


def selection_bounds(index) -> tuple[datetime, datetime] | None:
    """A brushed x range of a time chart (epoch ms, epoch s or ISO strings) as UTC datetimes."""
    if not isinstance(index, list | tuple) or len(index) != 2:
        return None

    def to_time(value) -> datetime:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        parsed = pd.Timestamp(value)
        return (parsed.tz_localize("UTC") if parsed.tzinfo is None else parsed.tz_convert("UTC")).to_pydatetime()

    start, end = sorted(to_time(v) for v in index)
    return start, end


def alerts_frame(alerts: list[SentimentAlertRecord]) -> pd.DataFrame:
    rows = [{"raised": a.created_at.strftime("%Y-%m-%d %H:%M"), "scope": a.scope, "rule": a.rule,
             "where": a.conversation_id or a.entity or "all", "detail": a.detail} for a in alerts]
    return pd.DataFrame(rows, columns=["raised", "scope", "rule", "where", "detail"])


def trajectory_frame(trajectory: list[TrajectoryPoint]) -> pd.DataFrame:
    """One conversation's scored customer turns: turn number, score, label, text."""
    rows = [{"turn": i, "score": t.score, "label": t.label, "text": t.text}
            for i, t in enumerate(trajectory, 1)]
    return pd.DataFrame(rows, columns=["turn", "score", "label", "text"])


def conversations_to_watch(alerts: list[SentimentAlertRecord], messages: list[ScoredText],
                           limit: int = 50) -> list[str]:
    """Conversations with alerts first (newest first), then the latest scored ones."""
    flagged = [a.conversation_id for a in alerts if a.conversation_id]
    recent = [m.conversation_id for m in reversed(messages)]
    return list(dict.fromkeys(flagged + recent))[:limit]


def build_sentiment_view(service: ConversationService) -> gr.Blocks:
    company = service.settings.company_name

    async def refresh(kind: str, window_name: str, split_name: str):
        window, by = WINDOWS[window_name], SPLITS[split_name]
        rows = await load_rows(service, kind)
        table = trend_frame(rows, window, by)
        raised = await service.sentiment.alerts(100)
        counts = trends.distribution(rows)
        negatives = int(counts.loc[counts["label"] == "negative", "items"].iloc[0])
        line = (f"**{len(rows)}** scored {'feed items' if kind == 'feeds' else 'customer messages'} · "
                f"**{negatives / len(rows):.0%}** negative · **{len(raised)}** alerts" if rows
                else "Nothing scored yet: customer messages are scored as they arrive; "
                     "`assistant monitor ingest FILE` adds a news or comment feed.")
        chats = rows if kind == "chats" else await load_rows(service, "chats")
        watch = conversations_to_watch(raised, chats)
        return {negative: table, mean: table, distribution: counts, alerts: alerts_frame(raised), summary: line,
                groups: sorted(table["group"].unique()), conversation: gr.Dropdown(choices=watch)}

    async def show_conversation(conversation_id: str | None):
        trajectory = trajectory_frame(await service.sentiment.trajectory(conversation_id) if conversation_id else [])
        return {turns: trajectory, turn_texts: trajectory[["turn", "label", "score", "text"]]}

    def pick_alert(alert_rows: pd.DataFrame, selection: gr.SelectData):
        row = alert_rows.iloc[selection.index[0]]
        return {conversation: row["where"]} if row["scope"] == "conversation" else {}

    def legends(names: list[str]):
        # Gradio keeps a plot's colour domain from its first data; naming the groups redraws the plot
        return {negative: gr.LinePlot(colors_in_legend=names), mean: gr.LinePlot(colors_in_legend=names)}

    async def drill_down(kind: str, window_name: str, selection: gr.SelectData):
        bounds = selection_bounds(selection.index)
        if bounds is None:
            return {drill_note: "Drag across a chart to pick a time range."}
        rows = await load_rows(service, kind)
        picked = trends.texts_between(rows, *bounds, WINDOWS[window_name])
        return {texts: picked,
                drill_note: f"{len(picked)} texts from {bounds[0]:%Y-%m-%d %H:%M} to {bounds[1]:%Y-%m-%d %H:%M} UTC"}

    with gr.Blocks(title=f"{company} — sentiment") as page:
        gr.Markdown(f"## {company}: how customers and the news feel", elem_id="sentiment-title")
        with gr.Row():
            kind = gr.Radio(["chats", "feeds"], value="chats", label="texts", elem_id="sentiment-kind")
            window = gr.Radio(list(WINDOWS), value="day", label="window")
            split = gr.Radio(list(SPLITS), value="overall", label="lines")
        summary = gr.Markdown(elem_id="sentiment-summary")
        with gr.Row():
            negative = gr.LinePlot(x="time", y="negative %", color="group", title="Negative share",
                                   y_lim=[0, 100], height=300, scale=3, elem_id="negative-trend")
            distribution = gr.BarPlot(x="label", y="items", color="label", color_map=LABEL_COLORS, y_lim=[0, None],
                                      title="Labels", height=300, scale=1, elem_id="label-distribution")
        mean = gr.LinePlot(x="time", y="mean_score", color="group", title="Mean score (-1 negative .. +1 positive)",
                           y_lim=[-1, 1], height=260, elem_id="score-trend")
        drill_note = gr.Markdown("Drag across a chart to see the texts behind it, most negative first.")
        # feed items, customer messages and alert details are external text: shown as plain-text cells ("str"),
        # never as markdown or HTML (no remote images, no links)
        texts = gr.Dataframe(headers=["time", "label", "score", "source", "entity", "text"], wrap=True, datatype="str",
                             column_widths=["13%", "8%", "7%", "8%", "12%", "52%"], interactive=False,
                             max_height=360, elem_id="drill-down")
        gr.Markdown("### Alerts")
        alerts = gr.Dataframe(headers=["raised", "scope", "rule", "where", "detail"], wrap=True, datatype="str",
                              column_widths=["13%", "9%", "11%", "17%", "50%"], interactive=False,
                              max_height=300, elem_id="alerts")
        gr.Markdown("### A conversation, turn by turn")
        with gr.Row():
            conversation = gr.Dropdown(label="conversation (with alerts first)", choices=[], scale=1,
                                       allow_custom_value=True, elem_id="conversation-pick")
            turns = gr.LinePlot(x="turn", y="score", title="Customer sentiment per turn", y_lim=[-1, 1],
                                x_axis_format="d", height=260, scale=2, elem_id="conversation-trajectory")
        turn_texts = gr.Dataframe(headers=["turn", "label", "score", "text"], wrap=True, interactive=False,
                                  datatype="str", column_widths=["7%", "10%", "8%", "75%"], max_height=300,
                                  elem_id="conversation-turns")
        conversation.change(show_conversation, conversation, [turns, turn_texts], api_visibility="private")
        alerts.select(pick_alert, alerts, conversation, api_visibility="private")
        groups = gr.State([])
        outputs = [negative, mean, distribution, alerts, summary, groups, conversation]
        inputs = [kind, window, split]
        for trigger in [*(c.change for c in inputs), gr.Timer(15).tick, page.load]:
            trigger(refresh, inputs, outputs, api_visibility="private").then(
                legends, groups, [negative, mean], api_visibility="private")
        for chart in (negative, mean):
            chart.select(drill_down, [kind, window], [texts, drill_note], api_visibility="private")
    return page


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group; operators sign in as for the console."""
    gr.mount_gradio_app(app, build_sentiment_view(service), path="/sentiment", css=CSS, footer_links=[],
                        auth_dependency=operator_auth.session_user(app, service))
