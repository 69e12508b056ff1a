"""Several replicas on one database: leases on shared work (one holder, taken over when it stops), rate limits that
hold whichever replica a request reaches, one database per shared home, migrations that two starting replicas do
not run twice, and several LLM servers behind one replica (least busy, failed ones out and back)."""

import itertools
import os
import subprocess
import sys
import time

import httpx
import pytest

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.runtime import build_service
from assistant.store import SharedHomeError, Store
from tests.fake_engine import FakeEngine


def test_a_lease_has_one_holder_and_passes_on_when_it_lapses(database_url, monkeypatch):
    leases = Store(database_url).coordination
    assert leases.acquire("sentiment", "replica-a", ttl_s=1.0) == 1
    assert leases.acquire("sentiment", "replica-b", ttl_s=1.0) is None  # a holds it
    assert leases.holds("sentiment", "replica-a") and not leases.holds("sentiment", "replica-b")
    # the replicas' own clocks do not matter: only the database's
    monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)
    assert leases.acquire("sentiment", "replica-b", ttl_s=1.0) is None
    monkeypatch.undo()
    assert leases.acquire("sentiment", "replica-a", ttl_s=1.0) == 1  # renewed, same term
    time.sleep(1.3)  # a stops renewing (killed)
    assert leases.holder("sentiment") is None
    assert leases.acquire("sentiment", "replica-b", ttl_s=5.0) == 2  # taken over
    assert leases.acquire("sentiment", "replica-a", ttl_s=5.0) is None  # a, back, finds it taken
    leases.release("sentiment", "replica-b")  # a clean stop hands it over at once
    assert leases.acquire("sentiment", "replica-a", ttl_s=5.0) == 3
    terms = leases.terms("sentiment")
    assert [(t.term, t.holder) for t in terms] == [(1, "replica-a"), (2, "replica-b"), (3, "replica-a")]
    assert all(earlier.expires_s <= later.started_s for earlier, later in itertools.pairwise(terms))  # never two


def test_rate_buckets_refill_by_the_database_clock(database_url):
    buckets = Store(database_url).coordination
    taken = [buckets.take("key:abc", per_minute=3) for _ in range(4)]
    assert [allowed for allowed, _ in taken] == [True, True, True, False]
    assert 19 < taken[-1][1] <= 20  # one request every 20 s
    assert buckets.take("key:other", per_minute=3)[0]  # buckets are per caller


def test_two_replicas_share_an_address_limit(postgresql_url, make_client):
    first, second = (make_client(database_url=postgresql_url, **{"auth.ip_requests_per_minute": 4})
                     for _ in range(2))
    codes = [client.post("/api/conversations").status_code for client in (first, second, first, second, first)]
    assert codes == [201, 201, 201, 201, 429]
    assert second.post("/api/conversations").status_code == 429  # whichever replica it reaches


def test_shared_work_runs_on_one_replica_and_moves_when_it_stops(postgresql_url, make_settings, tmp_path):
    settings = {"database_url": postgresql_url, "sentiment.enabled": True, "sentiment.scorer": "lexicon",
                "sentiment.interval_s": 0.2, "replicas.lease_ttl_s": 3}
    first = BackgroundServer(create_app(build_service(make_settings(**settings), make_engine=FakeEngine.build),
                                        mount_views=False))
    second_service = build_service(make_settings(**settings), make_engine=FakeEngine.build)
    leases = second_service.store.coordination
    first.__enter__()
    with BackgroundServer(create_app(second_service, mount_views=False)) as second_url:
        deadline = time.monotonic() + 10
        while leases.holder("sentiment") is None and time.monotonic() < deadline:
            time.sleep(0.2)
        holders = {name: leases.holder(name) for name in ("sentiment", "topics", "recovery")}
        assert None not in holders.values()
        assert len(leases.live_holders("replica:")) == 2  # both present, whoever holds what
        first.__exit__(None, None, None)  # one replica stops: its work moves to the other
        survivor = next(iter(leases.live_holders("replica:").values()))
        deadline = time.monotonic() + 10
        while leases.holder("sentiment") != survivor and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leases.holder("sentiment") == survivor
        cid = httpx.post(f"{second_url}/api/conversations").json()["id"]
        httpx.post(f"{second_url}/api/conversations/{cid}/messages",
                   json={"content": "This is terrible, I am very angry", "stream": False}, timeout=60)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            labels = [t.label for t in second_service.store.sentiment.sentiment_trajectory(cid)]
            if labels:
                break
            time.sleep(0.2)
        assert labels == ["negative"]  # the survivor scores
    terms = leases.terms("sentiment")
    assert all(earlier.expires_s <= later.started_s for earlier, later in itertools.pairwise(terms))


def test_streaming_answers_of_a_replica_that_lapsed_become_partial(database_url):
    store = Store(database_url)
    cid = store.conversations.create_conversation().id
    store.conversations.add_message(cid, "user", "hello")
    store.conversations.add_message(cid, "assistant", "", status="streaming", metadata={"writer": "other-host:1"})
    assert store.conversations.streaming_writers() == {"other-host:1"}
    store.coordination.acquire("replica:other-host:1", "other-host:1", ttl_s=0.5)
    assert store.coordination.expired(["replica:other-host:1"]) == set()
    time.sleep(0.8)
    lapsed = store.coordination.expired(["replica:other-host:1"])
    assert store.conversations.recover_interrupted(dead_writers={n.removeprefix("replica:") for n in lapsed}) == 1
    assert store.conversations.messages(cid)[-1].status == "partial"


def test_a_process_on_sqlite_is_refused_on_a_home_replicas_share_on_postgresql(postgresql_url, tmp_path):
    home = tmp_path / "shared-home"
    Store(postgresql_url, home=home).close()
    assert (home / "database.json").is_file()
    with pytest.raises(SharedHomeError, match=r"shared by replicas on PostgreSQL at .*/assistant_test.*"
                                              r"would open a SQLite file.*--database-url"):
        Store(f"sqlite:///{home}/assistant.db", home=home)
    assert not (home / "assistant.db").exists()  # nothing written
    Store(postgresql_url, home=home).close()  # the same database: fine


def test_replicas_starting_together_migrate_once(postgresql_url):
    code = f"from assistant.store import Store; Store({postgresql_url!r}).close()"
    starts = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in starts]
    assert [code for code, _ in results] == [0, 0, 0], results


def test_answers_go_to_the_llm_servers_that_are_up(make_settings, tmp_path):
    upstreams = [build_service(make_settings(home=str(tmp_path / f"up{i}")), make_engine=FakeEngine.build)
                 for i in range(2)]
    servers = [BackgroundServer(create_app(service, mount_views=False)) for service in upstreams]
    urls = [server.__enter__() for server in servers]
    front = build_service(make_settings(llm_url=[f"{url}/v1" for url in urls], home=str(tmp_path / "front")))
    assert front.engine.name == "openai-http" and len(front.engine.upstreams) == 2

    def ask(url: str) -> dict:
        cid = httpx.post(f"{url}/api/conversations").json()["id"]
        return httpx.post(f"{url}/api/conversations/{cid}/messages",
                          json={"content": "Is my order shipped?", "stream": False}, timeout=60).json()

    def answered_by() -> list[int]:
        return [len(service.engine.current.prompts) for service in upstreams]

    try:
        with BackgroundServer(create_app(front, mount_views=False)) as url:
            for _ in range(4):
                assert ask(url)["status"] == "complete"
            assert answered_by() == [2, 2]  # shared
            port = servers[0].port
            servers[0].__exit__(None, None, None)  # one LLM server goes away
            for _ in range(3):
                assert ask(url)["status"] == "complete"  # retried on the other before the first word
            assert answered_by() == [2, 5]
            metrics = httpx.get(f"{url}/metrics").text
            assert f'assistant_llm_upstream_healthy{{upstream="{urls[0]}/v1"}} 0.0' in metrics
            assert httpx.get(f"{url}/readyz").status_code == 200  # one is enough
            servers[0] = BackgroundServer(create_app(upstreams[0], mount_views=False), port=port)
            servers[0].__enter__()  # it comes back
            deadline = time.monotonic() + 15
            while f'upstream="{urls[0]}/v1"}} 1.0' not in httpx.get(f"{url}/metrics").text:
                assert time.monotonic() < deadline, "the LLM server that came back was not put back"
                time.sleep(0.5)
            before = answered_by()[0]
            for _ in range(2):
                assert ask(url)["status"] == "complete"
            assert answered_by()[0] > before
    finally:
        for server in servers:
            server.__exit__(None, None, None)


def test_repeated_llm_url_flags_make_a_list(tmp_path):
    result = subprocess.run([sys.executable, "-m", "assistant", "config", "show", "--llm-url", "http://a:8000/v1",
                             "--llm-url", "http://b:8000/v1", "--home", str(tmp_path)],
                            capture_output=True, text=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "http://a:8000/v1" in result.stdout and "http://b:8000/v1" in result.stdout


def test_trusted_proxies_may_be_networks():
    from assistant.api.access import TrustedProxies

    trusted = TrustedProxies(["10.0.0.0/8", "::1", "testclient"])  # an ingress controller's pods, loopback, a name
    assert "10.42.0.7" in trusted and "::1" in trusted and "testclient" in trusted
    assert "11.0.0.1" not in trusted and "203.0.113.9" not in trusted


def test_llm_servers_unreachable_at_start_are_named(make_settings, tmp_path):
    import asyncio

    from assistant.engines.base import EngineUnavailableError
    from assistant.ports import free_port

    dead = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(2)]
    service = build_service(make_settings(llm_url=dead))
    with pytest.raises(EngineUnavailableError, match=r"no LLM server answers: http://127\.0\.0\.1:\d+/v1: .*; "
                                                     r"http://127\.0\.0\.1:\d+/v1: "):
        asyncio.run(service.engine.start())
    upstream = build_service(make_settings(home=str(tmp_path / "up")), make_engine=FakeEngine.build)
    with BackgroundServer(create_app(upstream, mount_views=False)) as url:
        front = build_service(make_settings(llm_url=[dead[0], f"{url}/v1"], home=str(tmp_path / "front")))
        with BackgroundServer(create_app(front, mount_views=False)) as front_url:  # starts on the one that answers
            assert httpx.get(f"{front_url}/readyz").status_code == 200
            states = {u.url: u.healthy for u in front.engine.upstreams}
            assert states == {dead[0]: False, f"{url}/v1": True}


def test_models_link_points_an_external_vllm_at_what_should_serve(make_settings, tiny_model_dir, tmp_path):
    from assistant.cli.models import link_served_model
    from assistant.errors import AssistantError

    link = tmp_path / "shared" / "served-model"
    assert link_served_model(make_settings().settings, str(link)) == 0
    assert link.is_symlink() and (link / "config.json").is_file()
    assert link.resolve() == tiny_model_dir.resolve()
    assert link_served_model(make_settings().settings, str(link)) == 0  # again: replaced in place
    (tmp_path / "plain").mkdir()
    with pytest.raises(AssistantError, match="exists and is not a link"):
        link_served_model(make_settings().settings, str(tmp_path / "plain"))


def test_registries_on_a_shared_home_keep_their_records_in_postgresql(postgresql_url, tmp_path, monkeypatch,
                                                                        capsys):
    import json

    from assistant.cli import main
    from assistant.registry import DatabaseRecords, ModelVersion, RegistryError, retrieval_registry
    from assistant.store import shared_home

    home, model = tmp_path / "shared-home", tmp_path / "encoder"
    model.mkdir()
    (model / "config.json").write_text("{}")

    def version() -> ModelVersion:
        return ModelVersion(id="", parent=None, base_model="encoder", created_at="", data_hash="data")

    alone = retrieval_registry(home)  # a single machine's registry: files
    alone.promote(alone.register(model, version()).id)
    store = Store(postgresql_url, home=home)  # the home is now shared on PostgreSQL
    registry = retrieval_registry(home)
    assert isinstance(registry.records, DatabaseRecords)
    assert [v.id for v in registry.list()] == ["v1"] and registry.active_id() == "v1"  # imported on first use
    registry.promote(registry.register(model, version()).id)
    home_id = json.loads((home / "database.json").read_text())["home_id"]
    assert store.registries.state(f"{home_id}/retrieval-registry") == ("v2", ["v1", "v2"])
    assert json.loads((home / "retrieval-registry" / "active.json").read_text())["active"] == "v1"  # not read now
    Store(postgresql_url, home=tmp_path / "another-home").close()  # another home on the same database
    assert retrieval_registry(tmp_path / "another-home").list() == []  # keeps its registries apart

    monkeypatch.setattr(shared_home, "_attached", {})  # another process, which knows no database for the home
    with pytest.raises(RegistryError, match=r"kept in PostgreSQL at .*assistant_test.*--database-url"):
        retrieval_registry(home)
    assert main(["models", "rollback", "--retrieval", "--home", str(home), "--database-url", postgresql_url]) == 0
    assert "now serving v1" in capsys.readouterr().out
    assert registry.active_id() == "v1"  # the first process sees the rollback
    assert retrieval_registry(home).get("v2").data_hash == "data"


def test_two_replicas_follow_one_promotion_from_the_database(postgresql_url, make_settings, tmp_path):
    import asyncio

    from assistant.model_swap import follow_registry
    from assistant.registry import ModelVersion, retrieval_registry

    home = tmp_path / "shared-home"
    Store(postgresql_url, home=home).close()
    model = tmp_path / "encoder"
    model.mkdir()
    (model / "config.json").write_text("{}")
    seen: dict[str, list] = {"a": [], "b": []}

    async def replicas() -> None:
        async def follow(name):
            async def switch(wanted):
                seen[name].append(wanted)
            await follow_registry(retrieval_registry(home), switch, "retrieval", 0.05)

        followers = [asyncio.create_task(follow(n)) for n in seen]
        await asyncio.sleep(0.2)
        registry = retrieval_registry(home)
        await asyncio.to_thread(lambda: registry.promote(registry.register(model, ModelVersion(
            id="", parent=None, base_model="encoder", created_at="", data_hash="data")).id))
        await asyncio.sleep(0.5)
        for task in followers:
            task.cancel()

    asyncio.run(replicas())
    assert seen == {"a": ["v1"], "b": ["v1"]}
