"""`assistant bench serve`: (a) our API over vLLM, (b) vLLM direct, (c) our API over transformers,
(d) sequential `model.generate`, at several concurrency levels; JSON + markdown under bench/results/.

Our API runs as its own `assistant serve` process (as in production), so the load generator in this
process does not share an interpreter with the server it measures. (b) is vLLM's own OpenAI server on the same
model and settings; (a) and (b) each run alone, in alternating phases: two vLLM engines on a small machine slow
each other down.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
from rich.console import Console

from assistant.bench import write_results
from assistant.bench.engine_time import read_vllm_metrics, time_split
from assistant.bench.load import SUPPORT_QUESTIONS, LevelResult, percentile, run_level
from assistant.errors import AssistantError
from assistant.ports import free_port

# serving is measured without retrieval on our API, so (a) and (b) generate for the same prompts
EXTRA_BODY = {"a": {"grounding": False, "repetition_penalty": 1.0}, "c": {"grounding": False}}
TARGETS = {
    "a": "our API over vLLM",
    "b": "vLLM direct",
    "c": "our API over transformers",
    "d": "sequential model.generate",
}


class Served(NamedTuple):
    api: str  # our API's /v1
    engine_metrics: str  # where vLLM's own /metrics are: our API (vllm.mode in_process) or the managed server
    model: str  # the served model's name
    pid: int  # the `assistant serve` process (vLLM's engine core runs in a process of its own)


def process_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) process `pid` has used so far; None where /proc cannot tell."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def served(engine: str, model: str, home: Path, log_path: Path, console: Console, env: dict | None = None,
           vllm_mode: str = "in_process"):
    """Run `assistant serve --no-ui` in its own process group (extra settings in `env`); yields `Served`."""
    port, vllm_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "assistant", "serve", "--no-ui", "--engine", engine, "--model", model,
           "--home", str(home), "--port", str(port), "--vllm-port", str(vllm_port), "--log-level", "warning"]
    env = dict(os.environ, ASSISTANT_GENERATION__TEMPERATURE="0", ASSISTANT_AUTH__REQUIRED="false",  # loopback
               ASSISTANT_VLLM__MODE=vllm_mode, **(env or {}))
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    api = f"http://127.0.0.1:{port}"
    try:
        with console.status(f"starting `assistant serve --engine {engine}` (log: {log_path})"):
            deadline = time.monotonic() + 600
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"assistant serve exited with {proc.returncode}; see {log_path}")
                try:
                    if httpx.get(f"{api}/healthz", timeout=2).json().get("engine_healthy"):
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"assistant serve did not become healthy; see {log_path}")
                time.sleep(1)
        name = httpx.get(f"{api}/v1/models", timeout=5).json()["data"][0]["id"]
        metrics = api if vllm_mode == "in_process" else f"http://127.0.0.1:{vllm_port}"
        yield Served(f"{api}/v1", metrics, name, proc.pid)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def vllm_direct(model, settings, log_dir: Path, console: Console):
    """(b): vLLM's own OpenAI server on `model` with the deployment's vLLM settings; yields its /v1 and the pid of
    its API server process (its engine core runs in a child process)."""
    from assistant.engines.vllm_process import VLLMProcess

    process = VLLMProcess(model.path, model.name, settings.vllm.model_copy(update={"port": free_port()}), log_dir)
    with console.status(f"starting vLLM's own server (log: {process.log_path})"):
        process.start(progress=False)
    try:
        yield process.base_url, process.proc.pid
    finally:
        process.terminate()


def phase_repeats(repeats: int, phases: int) -> list[int]:
    """`repeats` runs spread over `phases` phases as evenly as they go (the first phases take the rest)."""
    phases = max(1, min(phases, repeats))
    return [repeats // phases + (i < repeats % phases) for i in range(phases)]


def sequential_generate(model_path: str, requests: int, max_tokens: int) -> LevelResult:
    """(d): one `model.generate` call after another, greedy, same prompts."""
    import torch
    from transformers.generation.streamers import BaseStreamer

    from assistant.engines.base import ChatMessage
    from assistant.engines.transformers_engine import chat_input_ids, load_model

    tokenizer, model = load_model(model_path)

    class FirstToken(BaseStreamer):
        def __init__(self):
            self.calls, self.first = 0, None

        def put(self, value):
            self.calls += 1
            if self.calls == 2 and self.first is None:  # the first put is the prompt
                self.first = time.perf_counter()

        def end(self):
            pass

    def generate(question: str) -> tuple[float, int]:
        ids = torch.tensor([chat_input_ids(tokenizer, [ChatMessage("user", question)])])
        streamer = FirstToken()
        started = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                                 do_sample=False, streamer=streamer, pad_token_id=tokenizer.eos_token_id)
        return ((streamer.first or time.perf_counter()) - started) * 1000, out.shape[1] - ids.shape[1]

    generate(SUPPORT_QUESTIONS[0])  # warm-up
    ttfts, tokens = [], 0
    started = time.perf_counter()
    for i in range(requests):
        ttft, count = generate(SUPPORT_QUESTIONS[i % len(SUPPORT_QUESTIONS)])
        ttfts.append(ttft)
        tokens += count
    wall = time.perf_counter() - started
    return LevelResult("d", 1, requests, 0, tokens, round(wall, 3), round(tokens / wall, 2),
                       round(percentile(ttfts, 50), 1), round(percentile(ttfts, 95), 1))


def median_run(runs: list[LevelResult]) -> LevelResult:
    """The run with the median throughput, carrying the errors of all runs and the first-token percentiles of all
    their requests together (one run's 32 first tokens move with the machine's noise)."""
    ordered = sorted(runs, key=lambda r: r.tokens_per_s)
    median = ordered[len(ordered) // 2]
    errors = sum(r.errors for r in runs)
    first_error = next((r.first_error for r in runs if r.first_error), None)
    ttfts = [t for r in runs for t in r.ttfts_ms]
    pooled = {"ttft_p50_ms": round(percentile(ttfts, 50), 1), "ttft_p95_ms": round(percentile(ttfts, 95), 1)
              } if ttfts else {}
    cpu = [r.api_cpu_ms for r in runs if r.api_cpu_ms is not None]
    if cpu:
        pooled["api_cpu_ms"] = statistics.median(cpu)
    return LevelResult(**{**median.as_dict(), "errors": errors, "first_error": first_error, "repeats": len(runs),
                          **pooled}, ttfts_ms=ttfts)


def markdown_table(results: list[dict], meta: dict) -> str:
    lines = [
        f"# bench serve — {meta['model']} — {meta['date']}",
        "",
        f"{meta['cpus']} CPUs, {meta['max_tokens']} tokens per answer, {meta['requests_per_client']} requests "
        f"per client, greedy decoding, streamed; {meta['repeats']} runs per level after an uncounted warm-up, "
        "(a) and (b) each alone in alternating phases: tokens/s of the median run (requests = one run's), "
        "first-token percentiles of all runs' requests; the front end's CPU per request (the median of its runs, its "
        "background work included) is our API process's, vLLM's engine client in it, for (a) and (c), and vLLM's own "
        "API server process's for (b) (the engine core computes in a process of its own in both).",
        "",
        "| target | clients | requests | errors | tokens/s | TTFT p50 (ms) | TTFT p95 (ms) | vLLM queued / prefill / "
        "decode per request (ms) | prefix cache hits | front end's CPU per request (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        split = r.get("engine_time") or {}
        stages = f"{split['queue_ms']} / {split['prefill_ms']} / {split['decode_ms']}" if split.get("requests") else "-"
        hits = split.get("prefix_cache_hit_rate")
        lines.append(f"| ({r['target']}) {TARGETS[r['target']]} | {r['concurrency']} | {r['requests']} | "
                     f"{r['errors']} | {r['tokens_per_s']} | {r['ttft_p50_ms']} | {r['ttft_p95_ms']} | {stages} | "
                     f"{'-' if hits is None else f'{hits:.1%}'} | {r.get('api_cpu_ms') or '-'} |")
    if meta.get("ratios"):
        lines += ["", "| ratio | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in meta["ratios"].items()]
    return "\n".join(lines) + "\n"


def ratios(results: list[dict], top: int) -> dict[str, float]:
    by = {(r["target"], r["concurrency"]): r["tokens_per_s"] for r in results}
    d = by.get(("d", 1))
    out = {}
    if ("a", top) in by and d:
        out[f"(a)@{top} / (d) tokens/s"] = round(by[("a", top)] / d, 2)
    if ("a", top) in by and by.get(("b", top)):
        out[f"(a)@{top} / (b)@{top} tokens/s"] = round(by[("a", top)] / by[("b", top)], 3)
    first = {(r["target"], r["concurrency"]): r["ttft_p50_ms"] for r in results}
    if first.get(("a", top)) and first.get(("b", top)):  # our API's first-token overhead
        out[f"(a)@{top} / (b)@{top} first-token p50"] = round(first[("a", top)] / first[("b", top)], 3)
    if ("c", top) in by and d:
        out[f"(c)@{top} / (d) tokens/s"] = round(by[("c", top)] / d, 2)
    return out


def run_benchmark(args) -> int:
    from assistant.cli.options import load_from_args
    from assistant.model_files import resolve_model

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = set(targets) - set(TARGETS)
    if unknown:
        raise AssistantError(f"unknown targets {sorted(unknown)}; choose from {', '.join(TARGETS)}")
    model = resolve_model(settings.model, settings.models_dir)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = out_dir / f"serve-{stamp}.log"
    results: list[LevelResult] = []

    runs: dict[tuple[str, int], list[LevelResult]] = {}

    def measure(target: str, url: str, name: str, repeats: int, metrics: str | None = None,
                api_pid: int | None = None) -> None:
        """`repeats` runs of `target` per level after an uncounted warm-up run at that level (vLLM's first batch of
        a size, our API's first connections). With `metrics`, each run also records where vLLM's time went; with
        `api_pid`, the CPU the front end's process (our API, or vLLM's own API server) used per request."""
        for c in levels:
            asyncio.run(run_level("warm-up", url, name, c, 1, args.max_tokens, EXTRA_BODY.get(target)))
            for _ in range(repeats):
                done = len(runs.setdefault((target, c), []))
                console.print(f"({target}) {TARGETS[target]}: {c} clients, run {done + 1}/{args.repeats}")
                before = read_vllm_metrics(metrics) if metrics else None
                cpu_before = process_cpu_s(api_pid) if api_pid else None
                run = asyncio.run(run_level(target, url, name, c, args.requests_per_client, args.max_tokens,
                                            EXTRA_BODY.get(target)))
                if metrics:
                    run.engine_time = time_split(before, read_vllm_metrics(metrics))
                if cpu_before is not None and run.requests:
                    run.api_cpu_ms = round((process_cpu_s(api_pid) - cpu_before) * 1000 / run.requests, 2)
                runs[(target, c)].append(run)

    # (a) and (b) alone in turn: the runs of each spread over up to 3 phases, so a slow drift of a noisy machine
    # hits both alike
    both = {"a", "b"} <= set(targets)
    for repeats in phase_repeats(args.repeats, 3 if both else 1):
        if "a" in targets:
            with served("vllm", settings.model, settings.home_dir, log_path, console,
                        vllm_mode=settings.vllm.mode) as server:
                measure("a", server.api, server.model, repeats, server.engine_metrics, server.pid)
        if "b" in targets:
            with vllm_direct(model, settings, settings.logs_dir / "bench-serve", console) as (url, pid):
                measure("b", url, model.name, repeats, url, pid)
    if "c" in targets:
        with served("transformers", settings.model, settings.home_dir, log_path, console) as server:
            measure("c", server.api, server.model, args.repeats, api_pid=server.pid)
    for c in levels:
        for target in targets:
            if (target, c) in runs:
                result = median_run(runs[(target, c)])
                console.print(f"    ({target}) {c} clients: {result.tokens_per_s} tokens/s, TTFT p50 "
                              f"{result.ttft_p50_ms} ms, errors {result.errors}"
                              + (f" (first: {result.first_error})" if result.errors else ""))
                results.append(result)
    if "d" in targets:
        console.print("(d) sequential model.generate ...")
        results.append(sequential_generate(model.path, max(4, args.requests_per_client * 2), args.max_tokens))

    rows = [r.as_dict() for r in results]
    meta = {"model": model.name, "model_path": model.path, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpus": os.cpu_count(), "machine": platform.machine(), "max_tokens": args.max_tokens,
            "requests_per_client": args.requests_per_client, "concurrency": levels,
            "repeats": args.repeats}
    meta["ratios"] = ratios(rows, max(levels))
    report = {"benchmark": "serve", "meta": meta, "results": rows}
    table = markdown_table(rows, meta)
    write_results(out_dir, "serve", report, table, stamp)
    console.print(f"results: {out_dir / f'serve-{stamp}.json'} and .md")
    if args.json:
        print(json.dumps(report))
    else:
        print(table)
    return 0
