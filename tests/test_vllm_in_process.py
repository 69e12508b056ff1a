"""vLLM's engine client inside our process (`vllm.mode: in_process`, the default), on the packaged default model.

The whole serving story (concurrent answers, the engine core killed mid-answer and restarted, Ctrl-C) is
tests/test_vllm_integration.py's, in both modes."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest

from assistant.config import VLLMSettings
from assistant.engines.base import ChatMessage, EngineError, GenerationParams
from assistant.engines.vllm_process import VLLMStartError, vllm_installed

GREEDY = GenerationParams(max_new_tokens=40, temperature=0.0, top_p=1.0, repetition_penalty=1.0)


def test_extra_args_are_parsed_as_vllm_parses_them_and_a_server_option_is_named(default_model_dir):
    pytest.importorskip("vllm")
    from assistant.engines.vllm_in_process import engine_arguments

    folder = str(default_model_dir)
    arguments = engine_arguments(folder, "name", VLLMSettings(extra_args=["--max-num-seqs", "24"],
                                                              max_model_len=1024))
    assert (arguments.model, arguments.served_model_name, arguments.max_model_len) == (folder, ["name"], 1024)
    assert arguments.max_num_seqs == 24 and arguments.enforce_eager
    with pytest.raises(VLLMStartError, match=r"--enable-auto-tool-choice is not an option of vLLM's engine.*"
                                             r"vllm.mode: server"):
        engine_arguments(folder, "name", VLLMSettings(extra_args=["--enable-auto-tool-choice"]))


def test_vllm_logs_go_to_its_log_file_and_other_loggers_are_left_alone(tmp_path):
    import logging.config

    from assistant.engines.vllm_in_process import vllm_logging_config

    mine = logging.getLogger("assistant.test.kept")
    mine.disabled = False
    logging.config.dictConfig(vllm_logging_config(tmp_path / "vllm.log"))
    try:
        logging.getLogger("vllm.engine").warning("engine says hello")
        assert not mine.disabled
        assert "engine says hello" in (tmp_path / "vllm.log").read_text()
    finally:
        for handler in logging.getLogger("vllm").handlers:
            handler.close()
        logging.getLogger("vllm").handlers.clear()


def test_an_engine_core_left_by_a_killed_server_is_ended_at_the_next_start_and_a_live_ones_is_not(tmp_path):
    """A server killed hard (SIGKILL, the OOM killer) cannot stop its engine core, which keeps the model's memory
    and cores; the next start finds it by its record and ends it. An engine core whose server runs is left alone."""
    import os
    import subprocess
    import time

    psutil = pytest.importorskip("psutil")
    from assistant.engines.vllm_in_process import end_orphaned_engine_cores, record_engine_cores

    def engine_core() -> subprocess.Popen:  # a process named as vLLM names its engine core
        process = subprocess.Popen(["bash", "-c", "exec -a VLLM::EngineCore sleep 120"])
        deadline = time.monotonic() + 10
        while psutil.Process(process.pid).cmdline()[:1] != ["VLLM::EngineCore"]:  # until bash has exec'd
            assert time.monotonic() < deadline, "the stand-in engine core did not start"
            time.sleep(0.01)
        return process

    gone = subprocess.Popen(["true"])
    gone.wait()  # the killed server: its pid no longer runs
    orphan, kept = engine_core(), engine_core()
    cores = tmp_path / "vllm-engine-cores"
    try:
        record_engine_cores(cores, [kept.pid])  # started by this process, which runs
        (cores / f"{orphan.pid}.json").write_text(json.dumps({"core": orphan.pid, "parent": gone.pid}))
        (cores / "999999999.json").write_text(json.dumps({"core": 999999999, "parent": gone.pid}))  # long gone
        assert end_orphaned_engine_cores(cores) == [orphan.pid]
        assert orphan.wait(5) is not None and psutil.Process(kept.pid).is_running()
        assert sorted(p.name for p in cores.iterdir()) == [f"{kept.pid}.json"]
        assert end_orphaned_engine_cores(cores) == [] and kept.poll() is None
    finally:
        for process in (orphan, kept):
            process.kill()
            process.wait()
    assert os.getpid() == json.loads((cores / f"{kept.pid}.json").read_text())["parent"]


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed")
def test_in_process_engine_streams_answers_keeps_to_a_schema_and_refuses_a_prompt_too_long(tmp_path,
                                                                                          default_model_dir):
    from assistant.engines.vllm_in_process import InProcessVLLMEngine

    engine = InProcessVLLMEngine(str(default_model_dir), "SmolLM2-135M-Instruct", VLLMSettings(max_model_len=512),
                                 tmp_path / "logs")

    async def story():
        await engine.start()
        try:
            assert await engine.health() and engine.engine_core_pids()
            question = [ChatMessage("user", "How do I change my delivery address?")]
            deltas = [d async for d in engine.stream_chat(question, GREEDY)]
            text = "".join(d.text for d in deltas)
            # the first token alone, then pieces of `stream_interval` (4) tokens, then the end with the counts
            assert text.strip() and 2 <= len(deltas) - 1 <= 12
            last = deltas[-1]
            assert last.finish_reason in ("stop", "length") and last.prompt_tokens > 10
            assert 0 < last.completion_tokens <= 40

            schema = {"type": "object", "properties": {"order_id": {"type": "string"}, "urgent": {"type": "boolean"}},
                      "required": ["order_id", "urgent"]}
            asked = [ChatMessage("user", "Where is order A-1001? It is urgent.")]
            written = "".join([d.text async for d in engine.stream_chat(asked, replace(GREEDY, json_schema=schema))])
            value = json.loads(written)
            assert isinstance(value["order_id"], str) and isinstance(value["urgent"], bool)

            with pytest.raises(EngineError, match="maximum context length is 512 tokens"):
                async for _ in engine.stream_chat([ChatMessage("user", "word " * 2000)], GREEDY):
                    pass
            assert await engine.health()  # a refused request leaves the engine serving
        finally:
            await engine.stop()
        assert not await engine.health()

    asyncio.run(story())
    log = (tmp_path / "logs" / "vllm.log").read_text()
    assert "starting vLLM in process" in log and "vllm." in log  # vLLM's own records, not on the terminal


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed")
def test_an_in_process_engine_that_cannot_start_names_the_cause_and_the_log(tmp_path):
    from assistant.engines.vllm_in_process import InProcessVLLMEngine

    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    engine = InProcessVLLMEngine(str(broken), "broken", VLLMSettings(startup_timeout_s=240), tmp_path / "logs")
    with pytest.raises(VLLMStartError) as err:
        asyncio.run(engine.start())
    message = str(err.value)
    assert "no-such-architecture" in message and str(tmp_path / "logs" / "vllm.log") in message
    assert not asyncio.run(engine.health())
