"""Sentiment over time: per-window aggregates of scored texts (chats and feeds), feed alerts, drill-down.

Rows are dicts with `time` (aware datetime), `label`, `score`, `text` and optional `source`, `entity`, `topic`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

COLUMNS = ["time", "label", "score", "text", "source", "entity", "topic"]


def frame(rows: list[dict]) -> pd.DataFrame:
    data = pd.DataFrame(rows, columns=COLUMNS) if not rows else pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in data:
            data[column] = None
    data["time"] = pd.to_datetime(data["time"], utc=True)
    return data


def window_table(rows: list[dict], window: str = "1D", by: str | None = None) -> pd.DataFrame:
    """One row per window (and group): items, negative/neutral/positive shares, mean score.
    `by` is None (overall), 'entity', 'topic' or 'source'; missing group values become '(none)'."""
    data = frame(rows)
    columns = ["window", "group", "items", "negative_share", "neutral_share", "positive_share", "mean_score"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    data["group"] = data[by].fillna("(none)") if by else "all"
    data["window"] = data["time"].dt.floor(window)
    for label in ("negative", "neutral", "positive"):
        data[f"{label}_share"] = (data["label"] == label).astype(float)
    grouped = data.groupby(["window", "group"], sort=True).agg(
        items=("label", "size"), negative_share=("negative_share", "mean"), neutral_share=("neutral_share", "mean"),
        positive_share=("positive_share", "mean"), mean_score=("score", "mean")).reset_index()
    numeric = ["negative_share", "neutral_share", "positive_share", "mean_score"]
    grouped[numeric] = grouped[numeric].round(4)
    return grouped[columns]


def distribution(rows: list[dict]) -> pd.DataFrame:
    """Items per label (all three labels, zero when absent)."""
    labels = frame(rows)["label"]
    return pd.DataFrame({"label": ["negative", "neutral", "positive"],
                         "items": [int((labels == x).sum()) for x in ("negative", "neutral", "positive")]})


def texts_in_window(rows: list[dict], start: datetime, window: str = "1D", group: str | None = None,
                    by: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Drill-down: the texts behind one point of a trend line, most negative first."""
    data = frame(rows)
    if data.empty:
        return pd.DataFrame(columns=["time", "label", "score", "source", "entity", "text"])
    start = pd.Timestamp(start)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    mask = data["time"].dt.floor(window) == start.floor(window)
    if by and group not in (None, "all"):
        mask &= data[by].fillna("(none)") == group
    picked = data[mask].sort_values("score")
    return picked[["time", "label", "score", "source", "entity", "text"]].head(limit).reset_index(drop=True)


@dataclass(frozen=True)
class FeedAlert:
    rule: str  # negative_share | negative_jump
    group: str
    window_start: datetime
    detail: str


def feed_alerts(rows: list[dict], window: str, threshold: float, jump: float, baseline_windows: int,
                min_items: int, by: str | None = "entity") -> list[FeedAlert]:
    """Windows whose negative share passes `threshold`, or rises by `jump` over the pooled negative share of the
    previous `baseline_windows` windows of the same group (windows, and baselines, with fewer than `min_items`
    items never alert)."""
    table = window_table(rows, window, by)
    alerts = []
    for group, part in table.groupby("group", sort=False):
        shares = part.sort_values("window").reset_index(drop=True)
        for i, row in shares.iterrows():
            if row["items"] < min_items:
                continue
            label = f"{by or 'all'} {group}" if by else "all items"
            if row["negative_share"] >= threshold:
                alerts.append(FeedAlert("negative_share", str(group), row["window"].to_pydatetime(),
                                        f"{label}: {row['negative_share']:.0%} negative of {row['items']} items "
                                        f"(threshold {threshold:.0%})"))
            previous = shares.iloc[max(0, i - baseline_windows):i]
            if previous["items"].sum() >= min_items:
                baseline = float((previous["negative_share"] * previous["items"]).sum() / previous["items"].sum())
                if row["negative_share"] - baseline >= jump:
                    alerts.append(FeedAlert("negative_jump", str(group), row["window"].to_pydatetime(),
                                            f"{label}: negative share {row['negative_share']:.0%} against a baseline "
                                            f"of {baseline:.0%} over {len(previous)} windows"))
    return alerts
