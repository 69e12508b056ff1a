"""Faults: the API server killed while customers write (nothing committed is lost, the database opens cleanly, cut
answers are marked, the next message works), and a knowledge base that cannot be read or written (a clear error).
The vLLM process killed mid-stream is in tests/test_vllm_integration.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import httpx
from sqlalchemy import text

from assistant.cli import main
from assistant.ports import free_port
from assistant.store import Store


def test_server_killed_during_writes_loses_no_committed_message(tmp_path, tiny_model_dir):
    home, port = tmp_path / "home", free_port()
    config = tmp_path / "assistant.yaml"
    config.write_text(f"home: {home}\nengine: transformers\nmodel: {tiny_model_dir}\nport: {port}\n"
                      "auth: {required: false}\nretrieval: {enabled: false}\nsentiment: {feeds: []}\n"
                      "generation: {max_new_tokens: 48, temperature: 0.0}\n")
    server = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--config", str(config), "--no-ui"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).json()["engine_healthy"]:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline
            time.sleep(0.5)
        accepted: dict[int, str] = {}  # message id -> text, for every message the server said it stored
        stop = threading.Event()

        def customer(index: int) -> None:
            with httpx.Client(base_url=url, timeout=30) as client:
                conversation = client.post("/api/conversations", json={"customer_id": f"c-{index}"}).json()["id"]
                for turn in range(1000):
                    if stop.is_set():
                        return
                    sent = f"customer {index} message {turn}"
                    try:
                        with client.stream("POST", f"/api/conversations/{conversation}/messages",
                                           json={"content": sent}) as reply:
                            event = None
                            for line in reply.iter_lines():
                                if line.startswith("event: "):
                                    event = line[7:]
                                elif event == "accepted" and line.startswith("data: "):
                                    accepted[json.loads(line[6:])["message_id"]] = sent  # committed
                    except httpx.HTTPError:
                        return  # the server is gone

        customers = [threading.Thread(target=customer, args=(i,)) for i in range(4)]
        for thread in customers:
            thread.start()
        deadline = time.monotonic() + 60
        while len(accepted) < 12:
            assert time.monotonic() < deadline, "the customers' messages were not accepted"
            time.sleep(0.05)
        os.killpg(server.pid, signal.SIGKILL)  # no shutdown, no flush: the power goes
        server.wait(timeout=30)
        stop.set()
        for thread in customers:
            thread.join(timeout=30)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)

    store = Store(f"sqlite:///{home}/assistant.db")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    with store.session() as session:
        from sqlalchemy import select

        from assistant.store.schema import Message

        stored = {m.id: m for m in session.scalars(select(Message))}
    assert all(stored[i].content == sent and stored[i].role == "user" for i, sent in accepted.items())
    cut = [m for m in stored.values() if m.status == "streaming"]

    # the next start marks answers cut by the kill, and the assistant answers again
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    from assistant.config import load_settings
    from assistant.runtime import build_service

    service = build_service(load_settings(config_file=config, environ={}))
    with TestClient(create_app(service, mount_views=False)) as client:
        assert all(service.store.conversations.messages(m.conversation_id)[-1].status != "streaming" for m in cut)
        conversation = client.post("/api/conversations", json={}).json()["id"]
        reply = client.post(f"/api/conversations/{conversation}/messages",
                            json={"content": "Are you back?", "stream": False}).json()
        assert reply["status"] == "complete"
    store.close()


def test_unreadable_or_unwritable_knowledge_base_is_a_clear_error(tmp_path, capsys, tiny_model_dir):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "returns.md").write_text("# Returns\n\nReturns are free within thirty days.\n")
    home = ["--home", str(tmp_path / "home")]
    assert main(["ingest", str(docs), *home]) == 0
    capsys.readouterr()
    current = tmp_path / "home" / "knowledge" / "current"
    (current / "dense.faiss").unlink()  # an index file lost
    assert main(["search", "returns", *home]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main(["serve", "--engine", "transformers", "--model", str(tiny_model_dir), "--port", str(free_port()),
                 *home]) == 2  # refuses to start rather than answer without its documents
    assert "cannot be read" in capsys.readouterr().err

    shutil.rmtree(tmp_path / "home" / "knowledge")
    (tmp_path / "home" / "knowledge").write_text("not a folder")  # the index folder cannot be written
    assert main(["ingest", str(docs), *home]) == 2
    assert "cannot write the knowledge base" in capsys.readouterr().err


def test_answers_cut_by_a_dead_process_are_marked_partial(database_url):
    import socket
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from assistant.store.schema import Message

    store = Store(database_url)
    conversation = store.conversations.create_conversation().id
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    cut = store.conversations.add_message(conversation, "assistant", "", "streaming", None,
                                          {"writer": f"{host}:{dead.pid}"})
    live = store.conversations.add_message(conversation, "assistant", "", "streaming", None,
                                           {"writer": f"{host}:{os.getpid()}"})
    elsewhere = store.conversations.add_message(conversation, "assistant", "", "streaming", None,
                                                {"writer": "other-host:1"})
    stale = store.conversations.add_message(conversation, "assistant", "", "streaming", None,
                                            {"writer": "other-host:2"})
    with store.session() as session, session.begin():
        session.execute(update(Message).where(Message.id == stale)
                        .values(created_at=datetime.now(UTC) - timedelta(hours=2)))
    assert store.conversations.recover_interrupted() == 2
    status = {m.id: m.status for m in store.conversations.messages(conversation)}
    assert status == {cut: "partial", live: "streaming", elsewhere: "streaming", stale: "partial"}
    store.close()


def test_bench_load_counts_every_message_it_sent(tmp_path, tiny_model_dir, with_demo_knowledge, capsys):
    """`assistant bench load` end to end on the tiny model (the real figures come from the default stack)."""
    with_demo_knowledge(tmp_path / "home")  # the server it starts answers from the demo help center, not indexed again
    code = main(["bench", "load", "--customers", "3", "--duration", "4", "--engine", "transformers",
                 "--model", str(tiny_model_dir), "--home", str(tmp_path / "home"), "--max-tokens", "8",
                 "--out", str(tmp_path / "results"), "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    result = report["result"]
    assert result["sent"] >= 1 and result["stored"] == result["accepted"] == result["sent"]
    assert result["errors"] == 0 and result["answer_p50_ms"] > 0
    assert list((tmp_path / "results").glob("load-*.md"))


def test_bench_serve_reports_what_our_api_costs_per_request(tmp_path, tiny_model_dir, capsys):
    """`assistant bench serve` end to end on the tiny model: tokens, first-token times, and the CPU our API process
    used per request (where the time goes besides the model)."""
    code = main(["bench", "serve", "--targets", "c", "--concurrency", "2", "--requests-per-client", "2",
                 "--max-tokens", "4", "--repeats", "2", "--model", str(tiny_model_dir),
                 "--home", str(tmp_path / "home"), "--out", str(tmp_path / "results"), "--json"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0
    (result,) = report["results"]
    assert result["target"] == "c" and result["errors"] == 0 and result["completion_tokens"] > 0
    assert result["ttft_p50_ms"] > 0 and result["api_cpu_ms"] > 0
    assert "front end's CPU per request" in next((tmp_path / "results").glob("serve-*.md")).read_text()
