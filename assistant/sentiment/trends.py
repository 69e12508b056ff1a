"""Sentiment over time: per-window aggregates of scored texts (chats and feeds), feed alerts, drill-down.

Rows are the store's `ScoredText` records (or dicts with the same keys): `time` (aware datetime), `label`, `score`,
`text` and optional `source`, `entity`, `topic`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

import pandas as pd

from assistant.sentiment.labels import LABELS
from assistant.store.records import ScoredText

COLUMNS = ["time", "label", "score", "text", "source", "entity", "topic"]


Rows = Sequence[ScoredText | Mapping]


def frame(rows: Rows) -> pd.DataFrame:
    rows = [asdict(r) if isinstance(r, ScoredText) else r for r in rows]
    data = pd.DataFrame(rows, columns=COLUMNS) if not rows else pd.DataFrame(rows)
    for column in COLUMNS:
        if column not in data:
            data[column] = None
    data["time"] = pd.to_datetime(data["time"], utc=True)
    return data


def window_table(rows: Rows, window: str = "1D", by: str | None = None) -> pd.DataFrame:
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


def distribution(rows: Rows) -> pd.DataFrame:
    """Items per label (all three labels, zero when absent)."""
    labels = frame(rows)["label"]
    return pd.DataFrame({"label": list(LABELS), "items": [int((labels == x).sum()) for x in LABELS]})


def texts_between(rows: Rows, start: datetime, end: datetime, window: str) -> pd.DataFrame:
    """Drill-down: texts of every window touched by [start, end], most negative first."""
    data = frame(rows)
    columns = ["time", "label", "score", "source", "entity", "text"]
    if data.empty:
        return pd.DataFrame(columns=columns)
    first, last = pd.Timestamp(start).floor(window), pd.Timestamp(end).floor(window)
    windows = data["time"].dt.floor(window)
    picked = data[(windows >= first) & (windows <= last)].sort_values("score")
    picked = picked[columns].head(300).copy()
    picked["time"] = picked["time"].dt.strftime("%Y-%m-%d %H:%M")
    return picked.reset_index(drop=True)


@dataclass(frozen=True)
class FeedAlert:
    rule: str  # negative_share | negative_jump
    group: str
    window_start: datetime
    detail: str


def feed_alerts(rows: Rows, window: str, threshold: float, jump: float, baseline_windows: int,
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
