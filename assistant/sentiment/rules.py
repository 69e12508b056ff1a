"""Conversation rules: when a customer turns negative, raise an alert (and, if configured, ask for a human)."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.config import SentimentSettings
from assistant.store.records import TrajectoryPoint


@dataclass(frozen=True)
class Finding:
    rule: str  # negative_turns | sharp_drop | churn_words
    detail: str
    message_id: int


def conversation_findings(trajectory: list[TrajectoryPoint], settings: SentimentSettings) -> list[Finding]:
    """Every rule that fires on a conversation's scored customer messages (oldest first); each at its first
    firing message, so re-checking the same conversation finds the same findings."""
    findings: dict[str, Finding] = {}
    streak, best = 0, None
    words = [w.lower() for w in settings.churn_words if w.strip()]
    for turn in trajectory:
        streak = streak + 1 if turn.label == "negative" else 0
        if streak >= settings.negative_turns and "negative_turns" not in findings:
            findings["negative_turns"] = Finding("negative_turns", f"{streak} negative customer turns in a row",
                                                 turn.message_id)
        if best is not None and best - turn.score >= settings.drop and "sharp_drop" not in findings:
            findings["sharp_drop"] = Finding("sharp_drop", f"sentiment fell from {best:+.2f} to {turn.score:+.2f}",
                                             turn.message_id)
        best = turn.score if best is None else max(best, turn.score)
        text = turn.text.lower()
        hits = [w for w in words if w in text]
        if hits and "churn_words" not in findings:
            findings["churn_words"] = Finding("churn_words", f"churn or complaint words: {', '.join(hits[:5])}",
                                              turn.message_id)
    return list(findings.values())
