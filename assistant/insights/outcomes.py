"""Outcomes: what happened to the conversations of a period, defined once here (and in the README):

- conversations: started (created) in the period, after the filters (channel, language, widget key).
- handed_off: asked for a human at least once (a handoff row), by the first handoff's reason.
- resolved_alone: closed without a handoff, and the same customer did not start another conversation within
  `REOPEN_HOURS` of the close (had they, the question was not settled).
- open: neither (still with the bot, or abandoned).
- resolution_rate: resolved_alone / conversations.
- csat: the customers' 1-5 ratings at the end (mean, how many rated); thumbs: up/down on the assistant's answers.
- first response: bot = first assistant answer - first customer message; human = handoff accepted - requested.
- resolution time: closed - started, for closed conversations.
- sentiment: the customer messages' sentiment labels.
- language: `zh` when the first customer message is mostly Chinese, else `en` (kept on the conversation as it
  arrives, with the times of the first customer message and the first answer: the numbers read no messages).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Float, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from assistant.errors import AssistantError
from assistant.store.schema import Conversation, ConversationTopic, Feedback, Handoff, Message

REOPEN_HOURS = 24
BUCKETS = {"day": "D", "week": "W-SUN"}  # weeks start on Monday


class OutcomeQueryError(AssistantError, ValueError):
    """A period or filter that cannot be used; the message says which."""


@dataclass(frozen=True)
class OutcomeFilter:
    since: datetime
    until: datetime
    channel: str | None = None
    language: str | None = None  # en | zh
    widget_key: int | None = None  # the id of the widget key the conversations came through
    bucket: str = "day"

    @property
    def window(self) -> tuple[datetime, datetime]:
        return self.since, self.until

    def check(self) -> OutcomeFilter:
        if self.since >= self.until:
            raise OutcomeQueryError(f"the period is empty: since {self.since:%Y-%m-%d %H:%M} is not before until "
                                    f"{self.until:%Y-%m-%d %H:%M}")
        if self.bucket not in BUCKETS:
            raise OutcomeQueryError(f"bucket must be one of {', '.join(BUCKETS)}, not '{self.bucket}'")
        if self.language not in (None, "en", "zh"):
            raise OutcomeQueryError(f"language must be 'en' or 'zh', not '{self.language}'")
        return self


def last_days(days: int, **filters) -> OutcomeFilter:
    until = datetime.now(UTC)
    return OutcomeFilter(until - timedelta(days=days), until, **filters)


def _in_period(query, f: OutcomeFilter):
    query = query.where(Conversation.created_at >= f.since, Conversation.created_at < f.until)
    if f.channel:
        query = query.where(Conversation.channel == f.channel)
    if f.widget_key is not None:
        query = query.where(Conversation.owner == f"key:{f.widget_key}")
    if f.language:
        query = query.where(Conversation.language == f.language)
    return query


def _conversation_rows(session, f: OutcomeFilter) -> pd.DataFrame:
    """One row per conversation of the period, from the conversation's own facts (no message is read)."""
    times = ("created_at", "closed_at", "first_user_at", "first_answer_at")
    query = _in_period(select(Conversation.id, Conversation.customer_id,
                              *(epoch_seconds(getattr(Conversation, t)) for t in times), Conversation.csat,
                              func.coalesce(Conversation.language, "en"), ConversationTopic.topic_id)
                       .outerjoin(ConversationTopic, ConversationTopic.conversation_id == Conversation.id), f)
    frame = frame_of(session, query, ["id", "customer_id", *times, "csat", "language", "topic_id"])
    frame["csat"] = pd.to_numeric(frame["csat"])
    frame["topic_id"] = pd.to_numeric(frame["topic_id"])
    as_times(frame, times)
    return frame


class epoch_seconds(FunctionElement):  # a SQL function, named as one
    """A timestamp column as seconds since 1970 UTC, computed by the database: 100k numbers fetch far faster than
    100k timestamps, which the driver parses one by one."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds)
def _epoch_seconds(element, compiler, **kw) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element, compiler, **kw) -> str:  # stored as UTC text
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def as_times(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Columns of epoch seconds (`epoch_seconds`) become UTC timestamps, in place (to the microsecond)."""
    for column in columns:
        seconds = pd.to_numeric(frame[column]).round(6)
        frame[column] = pd.to_datetime(seconds, unit="s", utc=True).astype("datetime64[ns, UTC]")


def frame_of(session, query, columns: list[str]) -> pd.DataFrame:
    """A query's rows as a DataFrame, built column by column (row by row is slow for 100k rows); text columns stay
    Python objects, whose `isin` is a hash lookup."""
    rows = session.execute(query).all()
    values = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, values, strict=True)})


def _reopened(session, frame: pd.DataFrame, f: OutcomeFilter) -> pd.Series:
    """Whether the customer of each closed conversation started another one (through any channel) within
    REOPEN_HOURS of its close."""
    closed = frame[frame["closed_at"].notna() & frame["customer_id"].notna()]
    if closed.empty:
        return pd.Series(False, index=frame.index)
    window = timedelta(hours=REOPEN_HOURS)
    unfiltered = not (f.channel or f.language or f.widget_key is not None)
    # the period's own starts are in the frame when nothing was filtered out: only the day after is read then
    query = select(Conversation.customer_id, epoch_seconds(Conversation.created_at)).where(
        Conversation.customer_id.is_not(None), Conversation.created_at >= (f.until if unfiltered else f.since),
        Conversation.created_at < f.until + window)
    starts = frame_of(session, query, ["customer_id", "created_at"])
    as_times(starts, ("created_at",))
    if unfiltered:
        starts = pd.concat([frame.loc[frame["customer_id"].notna(), ["customer_id", "created_at"]], starts],
                           ignore_index=True)
    # the customer's next start after each close (merge_asof: sorted, per customer)
    nxt = pd.merge_asof(closed[["customer_id", "closed_at"]].reset_index().sort_values("closed_at"),
                        starts.sort_values("created_at"), left_on="closed_at", right_on="created_at",
                        by="customer_id", direction="forward", allow_exact_matches=False)
    back = set(nxt.loc[nxt["created_at"] <= nxt["closed_at"] + pd.Timedelta(window), "index"])
    return pd.Series(frame.index.isin(list(back)), index=frame.index)


def _seconds(values: pd.Series) -> dict:
    values = values.dropna()
    if values.empty:
        return {"p50": None, "p90": None, "count": 0}
    return {"p50": round(float(values.quantile(0.5)), 1), "p90": round(float(values.quantile(0.9)), 1),
            "count": len(values)}


def classified(session, f: OutcomeFilter) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The conversations of the period, one row each with its outcome flags (`handed_off`, `resolved_alone`, `open`)
    and topic (`topic_id`), and the first handoff of each one handed off."""
    frame = _conversation_rows(session, f)
    period = _in_period(select(Conversation.id), f).subquery()
    handoffs = frame_of(session, select(Handoff.conversation_id, Handoff.reason, epoch_seconds(Handoff.requested_at),
                                        epoch_seconds(Handoff.accepted_at))
                        .join(period, period.c.id == Handoff.conversation_id).order_by(Handoff.id),
                        ["conversation_id", "reason", "requested_at", "accepted_at"])
    reopened = _reopened(session, frame, f)
    first_handoff = handoffs.drop_duplicates("conversation_id").set_index("conversation_id")
    as_times(first_handoff, ("requested_at", "accepted_at"))
    frame["handed_off"] = frame["id"].isin(first_handoff.index)
    frame["resolved_alone"] = frame["closed_at"].notna() & ~frame["handed_off"] & ~reopened
    frame["open"] = ~frame["handed_off"] & ~frame["resolved_alone"]
    return frame, first_handoff


def outcomes(store, f: OutcomeFilter) -> dict:
    """The outcomes of the conversations started in the period (module docstring), in total and per bucket."""
    f.check()
    with store.session() as session:
        frame, first_handoff = classified(session, f)
        period = _in_period(select(Conversation.id), f).subquery()
        thumbs = dict(session.execute(
            select(Feedback.rating, func.count()).join(Message, Message.id == Feedback.message_id)
            .join(period, period.c.id == Message.conversation_id).where(Feedback.rating.is_not(None))
            .group_by(Feedback.rating)).all())
        moods = {label or "unscored": n for label, n in session.execute(
            select(Message.sentiment_label, func.count()).join(period, period.c.id == Message.conversation_id)
            .where(Message.role == "user").group_by(Message.sentiment_label)).all()}
    total = len(frame)
    reasons = first_handoff["reason"].value_counts().to_dict()
    # an operator who takes a conversation nobody asked for is accepted as it is requested: no wait, not less
    human_wait = (first_handoff["accepted_at"] - first_handoff["requested_at"]).dt.total_seconds().clip(lower=0)
    rated = frame["csat"].dropna()
    totals = {
        "conversations": total,
        "resolved_alone": int(frame["resolved_alone"].sum()),
        "handed_off": int(frame["handed_off"].sum()),
        "open": int(frame["open"].sum()),
        "resolution_rate": round(float(frame["resolved_alone"].mean()), 4) if total else None,
        "handoff_reasons": {str(k): int(v) for k, v in reasons.items()},
        "csat": {"rated": len(rated), "mean": round(float(rated.mean()), 2) if len(rated) else None},
        "thumbs": {"up": int(thumbs.get(1, 0)), "down": int(thumbs.get(-1, 0))},
        "first_response_s": {
            "bot": _seconds((frame["first_answer_at"] - frame["first_user_at"]).dt.total_seconds()),
            "human": _seconds(human_wait)},
        "resolution_s": _seconds((frame["closed_at"] - frame["created_at"]).dt.total_seconds()),
        "sentiment": {str(k): int(v) for k, v in moods.items()},
        "languages": {str(k): int(v) for k, v in frame["language"].value_counts().items()},
    }
    series = []
    if total:
        buckets = frame["created_at"].dt.tz_convert(None).dt.to_period(BUCKETS[f.bucket]).dt.start_time
        grouped = frame.assign(bucket=buckets).groupby("bucket")
        for start, part in grouped:
            series.append({"period": start.strftime("%Y-%m-%d"), "conversations": len(part),
                           "resolved_alone": int(part["resolved_alone"].sum()),
                           "handed_off": int(part["handed_off"].sum()), "open": int(part["open"].sum()),
                           "csat_mean": round(float(part["csat"].dropna().mean()), 2) if part["csat"].notna().any()
                           else None})
    return {"since": f.since.isoformat(), "until": f.until.isoformat(), "bucket": f.bucket,
            "filters": {"channel": f.channel, "language": f.language, "widget_key": f.widget_key},
            "totals": totals, "series": series,
            "note": None if total else "no conversations started in this period (with these filters)"}


def series_csv(result: dict) -> str:
    """The per-bucket outcomes as CSV (one row per day or week)."""
    columns = ["period", "conversations", "resolved_alone", "handed_off", "open", "csat_mean"]
    return pd.DataFrame(result["series"], columns=columns).to_csv(index=False)
