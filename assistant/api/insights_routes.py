"""Insights API (admin key): the outcomes of a period, as JSON or CSV, its topics, knowledge gaps and the curated
answers."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from assistant.api.errors import APIError
from assistant.insights.outcomes import OutcomeFilter, OutcomeQueryError, last_days, outcomes, series_csv
from assistant.insights.stored_topics import topics_csv
from assistant.store import CuratedAnswerError, TopicError

router = APIRouter(prefix="/api/insights", tags=["insights"])


def _period(days: int = Query(30, ge=1, le=3660), until: datetime | None = None,
            bucket: str = Query("day", pattern="^(day|week)$"), channel: str | None = None,
            language: str | None = Query(None, pattern="^(en|zh)$"), widget_key: int | None = None) -> OutcomeFilter:
    end = (until or datetime.now(UTC)).astimezone(UTC)
    return OutcomeFilter(end - timedelta(days=days), end, channel, language, widget_key, bucket)


Period = Annotated[OutcomeFilter, Depends(_period)]


def _csv(text: str, filename: str) -> PlainTextResponse:
    return PlainTextResponse(text, media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get("/outcomes")
async def outcome_report(request: Request, wanted: Period,
                         format: str = Query("json", pattern="^(json|csv)$")):
    """Conversations of the last `days` (to `until`, default now): resolved alone, handed off (by reason), open,
    CSAT, thumbs, response and resolution times, sentiment; per day or week. Definitions:
    `assistant/insights/outcomes.py`."""
    try:
        result = await asyncio.to_thread(outcomes, request.app.state.service.store, wanted)
    except OutcomeQueryError as exc:
        raise APIError(400, str(exc)) from exc
    return _csv(series_csv(result), "outcomes.csv") if format == "csv" else result


class CuratedAnswerIn(BaseModel):
    question: str = Field(min_length=1, max_length=2000)
    answer: str = Field(min_length=1, max_length=8000)
    author: str = Field(min_length=1, max_length=128)
    replaces: int | None = None
    source: str = "manual"


@router.get("/curated")
async def curated_list(request: Request, include_withdrawn: bool = False) -> dict:
    store = request.app.state.service.store
    answers = await asyncio.to_thread(store.curated.listed, include_withdrawn)
    return {"curated": [asdict(a) for a in answers]}


@router.post("/curated", status_code=201)
async def curated_add(request: Request, body: CuratedAnswerIn) -> dict:
    """Serve `answer` to the questions that match `question` from now on (`replaces`: as a new version)."""
    curated = request.app.state.service.curated
    try:
        record = await asyncio.to_thread(curated.add, body.question, body.answer, body.author, body.source,
                                         body.replaces)
    except CuratedAnswerError as exc:
        raise APIError(409 if "already answers" in str(exc) else 400, str(exc)) from exc
    return asdict(record)


@router.delete("/curated/{answer_id}")
async def curated_withdraw(request: Request, answer_id: int, author: str = Query(..., min_length=1)) -> dict:
    try:
        record = await asyncio.to_thread(request.app.state.service.curated.withdraw, answer_id, author)
    except CuratedAnswerError as exc:
        raise APIError(404 if "no curated answer" in str(exc) else 409, str(exc)) from exc
    return asdict(record)


@router.get("/gaps")
async def gaps(request: Request, days: int = Query(30, ge=1, le=3660), limit: int = Query(20, ge=1, le=200)) -> dict:
    """The questions the assistant could not answer, grouped (largest first), with the human replies to them."""
    found = await request.app.state.service.insights.gaps(*last_days(days).window)
    return {"days": days, "gaps": [
        {"label": g.label, "questions": [asdict(q) for q in g.questions], "human_replies": g.human_replies}
        for g in found[:limit]]}


class ArticleIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=50_000)


@router.post("/articles", status_code=201)
async def publish(request: Request, body: ArticleIn) -> dict:
    """Publish an article (a knowledge gap's fix) into the knowledge base now: the next answer can cite it."""
    from assistant.insights.gaps import GapError

    try:
        return await request.app.state.service.insights.publish(body.title, body.text)
    except GapError as exc:
        raise APIError(400, str(exc)) from exc


@router.get("/topics")
async def topics(request: Request, wanted: Period,
                 format: str = Query("json", pattern="^(json|csv)$")):
    """The period's conversations per topic: volume, trend, resolved alone, handed off, CSAT
    (`assistant/insights/stored_topics.py`)."""
    try:
        result = await request.app.state.service.insights.topics(wanted)
    except OutcomeQueryError as exc:
        raise APIError(400, str(exc)) from exc
    return _csv(topics_csv(result), "topics.csv") if format == "csv" else result


class FindTopicsIn(BaseModel):
    days: int = Field(90, ge=1, le=3660)


@router.post("/topics/find", status_code=201)
async def find(request: Request, body: FindTopicsIn) -> dict:
    """Group the first questions of the last `days` into topics (replacing the current ones; names and merges
    carry over to the nearest new topic)."""
    try:
        found = await request.app.state.service.insights.find_topics(*last_days(body.days).window)
    except TopicError as exc:
        raise APIError(400, str(exc)) from exc
    return {"topics": [asdict(t) for t in found]}


@router.get("/topics/{topic_id}/conversations")
async def conversations(request: Request, topic_id: int, wanted: Period) -> dict:
    """The period's conversations of a topic (-1: of none), newest first, with their outcome."""
    return {"topic": topic_id,
            "conversations": await request.app.state.service.insights.topic_conversations(wanted, topic_id)}


class TopicChangeIn(BaseModel):
    name: str | None = Field(None, max_length=200)
    merge_into: int | None = None


@router.patch("/topics/{topic_id}")
async def change(request: Request, topic_id: int, body: TopicChangeIn) -> dict:
    """Rename a topic (`name`) or merge it into another (`merge_into`)."""
    store = request.app.state.service.store
    if (body.name is None) == (body.merge_into is None):
        raise APIError(400, "give either 'name' (to rename) or 'merge_into' (to merge)")
    try:
        if body.name is not None:
            return asdict(await asyncio.to_thread(store.topics.rename, topic_id, body.name))
        return asdict(await asyncio.to_thread(store.topics.merge, topic_id, body.merge_into))
    except TopicError as exc:
        raise APIError(404 if str(exc).startswith("no topic") else 400, str(exc)) from exc
