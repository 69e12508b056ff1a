"""`/metrics` (Prometheus text) and `/readyz`: what a scraper and a load balancer see of one replica."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}, response.text


def samples(family, suffix: str = "_total") -> dict:
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name.endswith(suffix)}


def test_requests_answers_and_tokens_are_counted_by_route_template_never_by_id(make_client):
    client = make_client()
    conversation_id = client.post("/api/conversations").json()["id"]
    for question in ("How do I reset my password?", "Do you ship to Norway?"):
        answer = client.post(f"/api/conversations/{conversation_id}/messages",
                             json={"content": question, "stream": False})
        assert answer.status_code == 200
    assert client.get("/no/such/page").status_code == 404
    families, text = scrape(client)
    requests = samples(families["assistant_http_requests"])
    asked = (("method", "POST"), ("route", "/api/conversations/{conversation_id}/messages"), ("status", "200"))
    assert requests[asked] == 2
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert conversation_id not in text  # ids never become labels (nor anything a customer wrote)
    assert "reset" not in text
    timed = samples(families["assistant_http_request_seconds"], "_count")
    assert timed[(("route", "/api/conversations/{conversation_id}/messages"),)] == 2
    assert families["assistant_answered"].samples[0].value == 2
    assert set(samples(families["assistant_answers"])) == {(("kind", k),) for k in
                                                           ("composed", "written", "dont_know", "fell_back",
                                                            "wrong_language", "busy")}
    tokens = samples(families["assistant_tokens"])
    assert tokens[(("kind", "completion"),)] > 0 and tokens[(("kind", "prompt"),)] > 0
    assert families["assistant_http_requests_in_flight"].samples[0].value == 1  # the scrape itself
    assert families["assistant_answers_in_progress"].samples[0].value == 0
    assert families["assistant_answers_writing"].samples[0].value == 0  # the model's queue, from our side
    assert families["assistant_answer_wait_estimate_seconds"].samples[0].value > 0


def test_answers_in_progress_count_a_stream_until_it_ends(make_client):
    client = make_client()
    conversation_id = client.post("/api/conversations").json()["id"]
    with client.stream("POST", f"/api/conversations/{conversation_id}/messages",
                       json={"content": "Tell me about your shipping options please"}) as response:
        lines = response.iter_lines()
        while "delta" not in next(lines):  # the answer has started
            pass
        assert scrape(client)[0]["assistant_answers_in_progress"].samples[0].value == 1
        for _ in lines:
            pass
    assert scrape(client)[0]["assistant_answers_in_progress"].samples[0].value == 0


def test_ready_only_while_the_store_answers_and_the_engine_is_healthy(make_client, monkeypatch):
    client = make_client()
    service = client.app.state.service
    assert client.get("/readyz").json() == {"ready": True, "reasons": []}

    async def unhealthy() -> bool:
        return False

    monkeypatch.setattr(service.engine, "health", unhealthy)
    refused = client.get("/readyz")
    assert refused.status_code == 503 and "not healthy" in refused.json()["reasons"][0]
    monkeypatch.undo()

    def broken():
        raise ConnectionError("database is gone")

    monkeypatch.setattr(service.store.engine, "connect", broken)
    refused = client.get("/readyz")
    assert refused.status_code == 503 and refused.json()["reasons"] == ["store: ConnectionError: database is gone"]


@pytest.mark.usefixtures("database_url")
def test_metrics_and_readiness_on_both_databases(make_client):
    client = make_client()
    assert client.get("/readyz").status_code == 200
    families, _ = scrape(client)
    assert samples(families["assistant_http_requests"])[
        (("method", "GET"), ("route", "/readyz"), ("status", "200"))] == 1
