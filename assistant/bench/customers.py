"""`assistant bench load`: N simulated customers chat with the default stack (`assistant serve`: vLLM or the
transformers engine, retrieval on the demo help center) over loopback for a bounded time. Each opens a conversation,
asks support questions one after another with a short pause to read and type, through the conversation API, and
opens a new one when an answer hands it to a human.

Reported: answer latency p50/p95 (first token and whole answer), error rate, answers per minute, and the messages the
server accepted against the messages stored (they must be equal). The store is a scratch SQLite file, so the
company's conversations are not touched."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from rich.console import Console

from assistant.bench import write_results
from assistant.bench.engine_time import read_vllm_metrics, split_sentence, time_split
from assistant.bench.load import SUPPORT_QUESTIONS, percentile
from assistant.bench.serve import served


@dataclass
class Tally:
    sent: int = 0
    accepted: int = 0
    complete: int = 0
    handed_off: int = 0  # answers that handed the conversation to a human (the customer then starts a new one)
    busy: int = 0  # answers given at once because the model's queue was too long
    errors: list[str] = field(default_factory=list)
    first_token_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    engine_time: dict | None = None  # where vLLM's time went during the run (assistant.bench.engine_time)

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        self.accepted += outcome.accepted
        self.complete += outcome.complete
        self.handed_off += outcome.handed_off
        self.busy += outcome.busy
        self.errors += outcome.errors
        self.first_token_ms += [] if outcome.first_token_ms is None else [outcome.first_token_ms]
        self.answer_ms += [] if outcome.answer_ms is None else [outcome.answer_ms]


@dataclass
class Outcome:
    """What one customer message got back: its own, so concurrent customers never read each other's counts."""

    accepted: bool = False
    complete: bool = False
    errors: list[str] = field(default_factory=list)
    first_token_ms: float | None = None
    answer_ms: float | None = None  # None also when the bot stayed silent (a human has the conversation)
    handed_off: bool = False
    busy: bool = False  # answered at once because the model's queue was too long


async def send_message(client: httpx.AsyncClient, conversation: str, text: str, key: str) -> Outcome:
    outcome, started, event = Outcome(), time.perf_counter(), None
    try:
        async with client.stream("POST", f"/api/conversations/{conversation}/messages",
                                 json={"content": text, "client_message_id": key}) as reply:
            if reply.status_code != 200:
                outcome.errors.append(f"HTTP {reply.status_code}: {(await reply.aread())[:200]!r}")
                return outcome
            async for line in reply.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                    continue
                if not line.startswith("data: "):
                    continue
                data = json.loads(line[6:])
                if event == "accepted":
                    outcome.accepted = True
                elif event == "delta" and outcome.first_token_ms is None and data.get("text"):
                    outcome.first_token_ms = (time.perf_counter() - started) * 1000
                elif event == "done":
                    outcome.complete = True
                    outcome.handed_off = data.get("status") == "waiting_for_human"
                    outcome.busy = "busy" in (data.get("reason"), data.get("finish_reason"))
                    if data.get("message_id") is not None:
                        outcome.answer_ms = (time.perf_counter() - started) * 1000
                elif event == "error":
                    outcome.errors.append(data.get("message", "error event"))
    except httpx.HTTPError as exc:
        outcome.errors.append(f"{type(exc).__name__}: {exc}")
    return outcome


async def customer(base: str, index: int, stop_at: float, tally: Tally, seed: int) -> list[str]:
    """One simulated customer's conversations: when an answer hands one to a human, the next question opens a new
    one (the bot is silent in a conversation a human has, which would time nothing)."""
    rng = random.Random(seed + index)
    conversations: list[str] = []
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(180, connect=10)) as client:
        await asyncio.sleep(rng.uniform(0, 3))  # customers arrive over the first seconds
        turn, handed_off = 0, True
        while time.monotonic() < stop_at:
            if handed_off:
                conversations.append((await client.post("/api/conversations", json={
                    "customer_id": f"load-{index}", "channel": "load"})).json()["id"])
            outcome = await send_message(client, conversations[-1], rng.choice(SUPPORT_QUESTIONS), f"{index}-{turn}")
            tally.add(outcome)
            handed_off = outcome.handed_off
            turn += 1
            await asyncio.sleep(rng.uniform(1, 3))  # reading the answer, typing the next question
        return conversations


def stored_messages(database: Path, conversations: list[str]) -> int:
    from assistant.store import Store

    store = Store(f"sqlite:///{database}")
    try:
        return sum(1 for c in conversations for m in store.conversations.messages(c) if m.role == "user")
    finally:
        store.close()


def markdown(report: dict) -> str:
    r, m = report["result"], report["meta"]
    return "\n".join([
        f"# assistant bench load — {m['customers']} customers for {m['duration_s']} s ({m['engine']}, {m['model']}; "
        f"answers: {m.get('answer_style', '-')}, max wait {m.get('max_wait_s', '-')} s)",
        "", f"{m['machine']}", "",
        "| customers | messages sent | accepted | stored | answers complete | handed to a human | busy: answered at "
        "once | error rate | answers/min | first token p50 / p95 | whole answer p50 / p95 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {m['customers']} | {r['sent']} | {r['accepted']} | {r['stored']} | {r['complete']} | "
        f"{r.get('handed_off', '-')} | {r.get('busy', '-')} | "
        f"{r['error_rate']:.1%} | {r['answers_per_min']:.1f} | "
        f"{r['first_token_p50_ms']} / {r['first_token_p95_ms']} ms | {r['answer_p50_ms']} / {r['answer_p95_ms']} ms |",
        "", f"stored == accepted: **{r['stored'] == r['accepted']}**",
        *(["", split_sentence(r.get("engine_time"))] if m["engine"] == "vllm" else []),
        *(["", "first errors:", *[f"- {e}" for e in r["first_errors"]]] if r["first_errors"] else []), ""])


def run_load(args) -> int:
    from assistant.cli.options import load_from_args
    from assistant.engines.vllm_process import vllm_installed

    console = Console(stderr=True)
    settings = load_from_args(args).settings
    engine = args.engine or ("vllm" if vllm_installed() else "transformers")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="assistant-load-"))
    database = scratch / "load.db"
    env = {"ASSISTANT_DATABASE_URL": f"sqlite:///{database}"}
    if args.max_tokens:
        env["ASSISTANT_GENERATION__MAX_NEW_TOKENS"] = str(args.max_tokens)
    if args.answer_style:
        env["ASSISTANT_ANSWERS__STYLE"] = args.answer_style
    if args.max_wait is not None:
        env["ASSISTANT_ANSWERS__MAX_WAIT_S"] = str(args.max_wait)
    tally = Tally()
    try:
        conversations, wall, name = _drive(args, engine, settings, out, stamp, env, tally, console)
    except (RuntimeError, TimeoutError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    stored = stored_messages(database, conversations)
    return _report(args, engine, name, settings, out, stamp, tally, stored, wall, console)


def _drive(args, engine, settings, out, stamp, env, tally, console) -> tuple[list[str], float, str]:
    with served(engine, settings.model, settings.home_dir, out / f"load-{stamp}.log", console, env,
                settings.vllm.mode) as server:
        api, vllm, name = server.api, server.engine_metrics, server.model
        base = api.removesuffix("/v1")
        before = read_vllm_metrics(vllm) if engine == "vllm" else None
        console.print(f"{args.customers} customers for {args.duration} s against {base} ({engine}, {name})")

        async def everyone() -> list[str]:
            stop_at = time.monotonic() + args.duration
            tasks = [asyncio.create_task(customer(base, i, stop_at, tally, args.seed)) for i in range(args.customers)]
            while not all(t.done() for t in tasks):
                await asyncio.sleep(5)
                left = max(0, stop_at - time.monotonic())
                console.print(f"  {tally.complete} answers, {len(tally.errors)} errors, {left:.0f} s left"
                              + ("" if left else " (finishing the answers in flight)"))
            return [c for t in tasks for c in t.result()]

        started = time.monotonic()
        conversations = asyncio.run(everyone())
        wall = time.monotonic() - started
        tally.engine_time = time_split(before, read_vllm_metrics(vllm)) if engine == "vllm" else None
        return conversations, wall, name


def _report(args, engine, name, settings, out, stamp, tally, stored, wall, console) -> int:
    result = {
        "sent": tally.sent, "accepted": tally.accepted, "stored": stored, "complete": tally.complete,
        "handed_off": tally.handed_off, "busy": tally.busy, "errors": len(tally.errors),
        "error_rate": len(tally.errors) / max(1, tally.sent),
        "answers_per_min": tally.complete / wall * 60, "wall_s": round(wall, 1),
        "first_token_p50_ms": _ms(percentile(tally.first_token_ms, 50)),
        "first_token_p95_ms": _ms(percentile(tally.first_token_ms, 95)),
        "answer_p50_ms": _ms(percentile(tally.answer_ms, 50)), "answer_p95_ms": _ms(percentile(tally.answer_ms, 95)),
        "first_errors": tally.errors[:5], "engine_time": tally.engine_time,
    }
    meta = {"customers": args.customers, "duration_s": args.duration, "engine": engine, "model": name,
            "max_tokens": args.max_tokens or settings.generation.max_new_tokens,
            "answer_style": args.answer_style or settings.answers.style,
            "max_wait_s": settings.answers.max_wait_s if args.max_wait is None else args.max_wait,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}
    report = {"benchmark": "load", "meta": meta, "result": result}
    path = write_results(out, "load", report, markdown(report), stamp)
    console.print(markdown(report))
    console.print(f"results: {path} and .md")
    if args.json:
        print(json.dumps(report))
    return 0 if stored == tally.accepted else 1


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)
