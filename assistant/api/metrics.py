"""What a replica is doing, for Prometheus (`GET /metrics`) and for a load balancer or Kubernetes (`GET /readyz`).

`/metrics` (text format): HTTP requests by route template, method and status; their latency; requests in flight;
answers by how they were made (composed, written, "I don't know", fallen back), tokens and engine errors
(`chat_serving.AnswerCounts`); answers in progress; with several LLM servers, each one's state and load; with
vLLM's engine client in this process, vLLM's own metrics (`vllm:`). No conversation content and no key: let only
your scraper reach it. `/healthz` stays the human-readable summary; `/readyz` answers 200 only while the store
answers and the engine is healthy (503 with the reasons otherwise), so a replica that lost either is taken out of
rotation.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import text
from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
ANSWER_KINDS = ("composed", "written", "dont_know", "fell_back", "wrong_language", "busy")


class RequestMetrics:
    """ASGI middleware: counts and times every HTTP request under its route's template (`/api/conversations/{id}`,
    never the ids themselves; a mounted view under its mount path); paths nothing matched count as `unmatched`."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry, router: Router):
        self.app, self.router = app, router
        self.requests = Counter("assistant_http_requests", "HTTP requests", ["route", "method", "status"],
                                registry=registry)
        self.seconds = Histogram("assistant_http_request_seconds", "HTTP request time to the last byte",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight = Gauge("assistant_http_requests_in_flight", "HTTP requests being served", registry=registry)
        self._templates: dict[tuple[str, str], str] = {}  # (method, path) -> template: matching every route costs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()
        route = self.template(scope)

        async def sent(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.in_flight.inc()
        try:
            await self.app(scope, receive, sent)
        finally:
            self.in_flight.dec()
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.seconds.labels(route).observe(time.perf_counter() - started)


    def template(self, scope: Scope) -> str:
        """The path template of the route that will serve `scope` (a mounted app: its mount path). Matched here,
        before the app runs, so a request refused before routing (401, 429, 413) still counts under its route."""
        key = (scope["method"], scope["path"])
        found = self._templates.get(key)
        if found is None:
            if len(self._templates) >= 4096:  # paths with ids in them: start over rather than grow
                self._templates.clear()
            found = self._templates[key] = self._match(scope)
        return found

    def _match(self, scope: Scope) -> str:
        partial = None
        for route in self.router.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route.path
            if match is Match.PARTIAL and partial is None:
                partial = route.path
        return partial or "unmatched"


class AnswerCollector:
    """The serving layer's own counts, read at each scrape."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        counts = asdict(self.service.serving.counts)
        answers = CounterMetricFamily("assistant_answers", "answers by how they were made", labels=["kind"])
        for kind in ANSWER_KINDS:
            answers.add_metric([kind], counts[kind])
        yield answers
        yield CounterMetricFamily("assistant_answered", "answers sent, however made", value=counts["answered"])
        tokens = CounterMetricFamily("assistant_tokens", "tokens the engine read and wrote for answers",
                                     labels=["kind"])
        tokens.add_metric(["prompt"], counts["prompt_tokens"])
        tokens.add_metric(["completion"], counts["completion_tokens"])
        yield tokens
        yield CounterMetricFamily("assistant_engine_errors", "answers the engine failed", value=counts["engine_errors"])
        yield GaugeMetricFamily("assistant_answers_in_progress", "answers being made now (queued in or running on "
                                "the engine)", value=self.service.serving.answering)
        queue = self.service.serving.queue
        yield GaugeMetricFamily("assistant_answers_writing", "answers the model is writing or waits to start (its "
                                "queue, from this server)", value=queue.writing)
        yield GaugeMetricFamily("assistant_answer_wait_estimate_seconds", "how long a new answer would wait now for "
                                "the model's first word (answer_queue.py)", value=queue.estimated_wait_s())


class UpstreamCollector:
    """Each external LLM server's state when there are several (engines/balanced.py)."""

    def __init__(self, service):
        self.service = service

    def collect(self):
        upstreams = getattr(self.service.engine, "upstreams", None) or []
        healthy = GaugeMetricFamily("assistant_llm_upstream_healthy", "1 while an LLM server is in rotation",
                                    labels=["upstream"])
        in_flight = GaugeMetricFamily("assistant_llm_upstream_answers_in_flight", "answers this replica has on "
                                      "each LLM server now", labels=["upstream"])
        for upstream in upstreams:
            healthy.add_metric([upstream.url], int(upstream.healthy))
            in_flight.add_metric([upstream.url], upstream.in_flight)
        yield healthy
        yield in_flight


class InProcessEngineCollector:
    """vLLM's own metrics (its queue, prefill and decode times, prefix cache) where its engine client runs in this
    process (`vllm.mode: in_process`): vLLM registers them in prometheus_client's default registry."""

    def collect(self):
        from prometheus_client import REGISTRY

        for family in REGISTRY.collect():
            if family.name.startswith("vllm:"):
                yield family


async def readiness(service) -> tuple[bool, list[str]]:
    """(ready, why not): the store answers a query and the engine says it is healthy."""
    reasons = []

    def store_answers() -> None:
        with service.store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(asyncio.to_thread(store_answers), timeout=5)
    except Exception as exc:  # any failure means: not ready
        reasons.append(f"store: {type(exc).__name__}: {str(exc)[:200]}")
    try:
        if not await asyncio.wait_for(service.engine.health(), timeout=5):
            reasons.append(f"engine {service.engine.name}: not healthy")
    except Exception as exc:
        reasons.append(f"engine {service.engine.name}: {type(exc).__name__}")
    return not reasons, reasons


def install_metrics(app: FastAPI) -> None:
    """`/metrics` and `/readyz`, and the request metrics around every route (API, pages and views)."""
    service = app.state.service
    registry = CollectorRegistry()
    registry.register(AnswerCollector(service))
    registry.register(UpstreamCollector(service))
    registry.register(InProcessEngineCollector())
    app.add_middleware(RequestMetrics, registry=registry, router=app.router)

    @app.get("/metrics", tags=["health"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ready, reasons = await readiness(service)
        return JSONResponse({"ready": ready, "reasons": reasons}, status_code=200 if ready else 503)
