"""`assistant bench replicas` at small scale, in CI: two `assistant serve` processes on one PostgreSQL and one LLM
server (an assistant on the fake engine), customers spread over them, a retrieval version promoted, then one replica
SIGKILLed half-way."""

from rich.console import Console

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.bench.replicas import run_replicas
from assistant.runtime import build_service
from tests.fake_engine import FakeEngine


def test_two_replica_processes_one_killed_lose_nothing(postgresql_url, make_settings, tmp_path):
    upstream = build_service(make_settings(home=str(tmp_path / "llm"), database_url=f"sqlite:///{tmp_path}/llm.db"),
                             make_engine=FakeEngine.build)
    with BackgroundServer(create_app(upstream, mount_views=False)) as llm:
        report = run_replicas(postgresql_url, [f"{llm}/v1"], customers=4, duration_s=30, phases=["kill"], out=None,
                              console=Console(stderr=True), lease_ttl_s=3, rate_limit=10)
    phase = report["phases"][0]
    assert phase["accepted"] == phase["stored"] > 8  # every accepted message stored
    assert phase["continued_after_kill"] == phase["conversations"] == 4  # each went on on the survivor
    assert phase["failovers"] >= 2  # the killed replica's customers moved
    assert phase["sentiment_overlaps"] == 0 and phase["unscored"] == 0  # one scorer at a time, nothing left
    rate = phase["rate_limit"]
    assert rate["let_through"] <= 11 and rate["refused"] >= 4  # across both replicas
    assert phase["promotion"]["replicas_serving_it"] == 2  # the promotion reached both before the kill
    assert report["passed"]
