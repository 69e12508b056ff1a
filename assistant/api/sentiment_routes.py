"""Sentiment API: a conversation's trajectory, the alert list, and trends over chats and feeds."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Query, Request

from assistant.api.errors import APIError

router = APIRouter(prefix="/api/sentiment", tags=["sentiment"])


@router.get("/conversations/{conversation_id}")
async def conversation_sentiment(request: Request, conversation_id: str) -> dict:
    """Scored customer messages of one conversation, oldest first, and the alerts raised on it."""
    sentiment = request.app.state.service.sentiment
    trajectory = await sentiment.trajectory(conversation_id)  # 404 when unknown
    alerts = await sentiment.alerts(500, "conversation", conversation_id)
    return {"conversation_id": conversation_id, "trajectory": [asdict(t) for t in trajectory],
            "alerts": [asdict(a) for a in alerts]}


@router.get("/alerts")
async def alerts(request: Request, scope: str | None = Query(None, pattern="^(conversation|feed)$"),
                 limit: int = Query(100, ge=1, le=1000)) -> dict:
    return {"alerts": [asdict(a) for a in await request.app.state.service.sentiment.alerts(limit, scope)]}


@router.get("/trends")
async def trends(request: Request, kind: str = Query("chats", pattern="^(chats|feeds)$"),
                 window: str = Query("1D"), by: str | None = Query(None, pattern="^(entity|topic|source)$")) -> dict:
    """Per-window item counts, label shares and mean score (`by` splits the lines per entity, topic or source)."""
    from assistant.sentiment.trends import window_table

    rows = await request.app.state.service.sentiment.rows(kind)
    try:
        table = window_table(rows, window, by)
    except ValueError as exc:
        raise APIError(400, f"window {window!r} is not a pandas offset such as 1h or 1D ({exc})",
                       param="window") from exc
    table["window"] = table["window"].astype(str)
    return {"kind": kind, "window": window, "by": by, "rows": table.to_dict(orient="records")}
