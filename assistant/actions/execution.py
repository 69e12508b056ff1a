"""Calling the company's systems: one HTTP request per action call, with the verified identity filled in by us,
a timeout, retries for reads only, a circuit breaker per action, and a reply the customer reads that is filled
from the response by a template, never written by the model (an instruction hidden in a response stays data).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from assistant.actions.decision import ActionCall
from assistant.actions.spec import PLACEHOLDER, ActionCatalog, ActionSpec
from assistant.errors import AssistantError
from assistant.redaction import Redactor

SUMMARY_CHARS = 600
FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ActionRefused(AssistantError, ValueError):
    """The call cannot be made as asked; the message is safe to show the customer."""


@dataclass(frozen=True)
class ActionOutcome:
    ok: bool
    message: str  # what the customer reads: the filled reply, or why it did not work
    data: Any = None  # the parsed response
    http_status: int | None = None
    latency_ms: float = 0.0  # the HTTP exchange itself
    overhead_ms: float = 0.0  # our code around it (validation, building, parsing, the reply)
    summary: str = ""  # the response, redacted and cut, for the audit trail


@dataclass
class CircuitBreaker:
    """Open after `failures` failures in a row: calls fail fast for `cooldown_s`, then one trial call decides."""

    failures: int = 3
    cooldown_s: float = 30.0
    _count: int = 0
    _opened_at: float | None = None

    def allows(self, now: float) -> bool:
        return self._opened_at is None or now - self._opened_at >= self.cooldown_s

    def record(self, ok: bool, now: float) -> None:
        if ok:
            self._count, self._opened_at = 0, None
            return
        self._count += 1
        if self._count >= self.failures:
            self._opened_at = now


def validate_call(spec: ActionSpec, call: ActionCall) -> dict[str, Any]:
    """The call's arguments checked against the action's parameters (`ActionRefused` names the first problem)."""
    import jsonschema

    schema = {"type": "object", "properties": spec.parameters, "required": list(spec.required),
              "additionalProperties": False}
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(call.arguments), key=lambda e: e.path)
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "arguments"
        raise ActionRefused(f"{spec.name}: {where}: {errors[0].message}")
    return dict(call.arguments)


def fill_reply(template: str | None, values: Mapping[str, Any]) -> str:
    """`{field}` placeholders from the response (then the arguments); nothing else of a format string is read."""
    if template is None:
        shown = {k: v for k, v in values.items() if isinstance(v, str | int | float | bool)}
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in list(shown.items())[:8]) or "done"
    return FIELD.sub(lambda m: str(values.get(m.group(1), "unknown")), template)


def _failure_message(spec: ActionSpec, response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, str) and response.status_code < 500:
        return detail[:300]
    return f"{spec.name} is not available right now (the service answered {response.status_code})"


@dataclass
class ActionRunner:
    """Runs the calls of one catalog; one breaker per action, one HTTP connection pool for all."""

    catalog: ActionCatalog
    client: httpx.AsyncClient | None = None  # None: the runner keeps its own, one per event loop
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    redactor: Redactor = field(default_factory=Redactor)
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _own_client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    def _client(self) -> httpx.AsyncClient:
        """The given client, else this runner's own for the running loop (made once, not per call: a client's
        set-up, its TLS context above all, costs more than our whole overhead budget)."""
        if self.client is not None:
            return self.client
        loop = asyncio.get_running_loop()
        if self._own_client is None or self._own_client[0] is not loop:
            self._own_client = (loop, httpx.AsyncClient())
        return self._own_client[1]

    def spec(self, call: ActionCall) -> ActionSpec:
        spec = self.catalog.get(call.name)
        if spec is None:
            raise ActionRefused(f"there is no action called {call.name!r}")
        return spec

    def _request(self, spec: ActionSpec, arguments: dict[str, Any], identity: Mapping[str, str] | None,
                 idempotency_key: str | None) -> tuple[str, dict, dict | None, dict]:
        values = dict(arguments)
        for param, claim in spec.identity.items():
            if not identity or not identity.get(claim):
                raise ActionRefused(f"{spec.name} needs you to be signed in, so I can only look up your own "
                                    "orders. Please sign in on the website and ask again.")
            values[param] = identity[claim]
        in_url = set(PLACEHOLDER.findall(spec.url))
        url = PLACEHOLDER.sub(lambda m: quote(str(values[m.group(1)]), safe=""), spec.url)
        rest = {k: v for k, v in values.items() if k not in in_url}
        headers = dict(spec.headers)
        if spec.kind == "write" and idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        sends_body = spec.method in ("POST", "PUT", "PATCH")
        return url, (rest if not sends_body else {}), (rest if sends_body else None), headers

    async def run(self, call: ActionCall, identity: Mapping[str, str] | None = None,
                  idempotency_key: str | None = None) -> ActionOutcome:
        """Make the call. Refusals (unknown action, bad arguments, no identity) raise `ActionRefused`; a slow,
        failing or refusing service gives an outcome with `ok` False and a message for the customer."""
        started = time.perf_counter()
        spec = self.spec(call)
        arguments = validate_call(spec, call)
        url, params, body, headers = self._request(spec, arguments, identity, idempotency_key)
        breaker = self._breakers.setdefault(spec.name, CircuitBreaker(self.breaker_failures, self.breaker_cooldown_s))
        if not breaker.allows(time.monotonic()):
            return ActionOutcome(False, f"{spec.name} is not available right now; please try again in a minute "
                                        "or ask for a person", overhead_ms=_ms(started))
        client = self._client()
        network = 0.0
        response = None
        error = ""
        for attempt in range(1 + (spec.retries if spec.kind == "read" else 0)):
            if attempt:
                await asyncio.sleep(0.2 * attempt)
            sent = time.perf_counter()
            try:
                response = await client.request(spec.method, url, params=params or None, json=body,
                                                headers=headers, timeout=spec.timeout_s)
                error = ""
            except httpx.TimeoutException:
                response, error = None, f"{spec.name} did not answer in time"
            except httpx.HTTPError as exc:
                response, error = None, f"{spec.name} could not be reached ({type(exc).__name__})"
            network += time.perf_counter() - sent
            if response is not None and response.status_code < 500:
                break
        ok = response is not None and response.is_success
        breaker.record(response is not None and response.status_code < 500, time.monotonic())
        if response is None:
            return ActionOutcome(False, f"{error}; nothing was changed by this attempt" if spec.kind == "write"
                                 else error, latency_ms=network * 1000, overhead_ms=_ms(started) - network * 1000)
        try:
            data = response.json()
        except ValueError:
            data = response.text
        summary = self.redactor.redact(json.dumps(data, ensure_ascii=False, default=str))[:SUMMARY_CHARS]
        if ok:
            values = {**arguments, **data} if isinstance(data, dict) else arguments
            message = fill_reply(spec.reply, values)
        else:
            message = _failure_message(spec, response)
        return ActionOutcome(ok, message, data, response.status_code, network * 1000,
                             _ms(started) - network * 1000, summary)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
