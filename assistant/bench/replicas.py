"""`assistant bench replicas`: several `assistant serve` replicas (their own processes) on one PostgreSQL and one
LLM server, simulated customers spread over them, and one replica SIGKILLed in the middle.

A customer talks to its replica like a browser behind a load balancer: when the replica stops answering, the next
request goes to another one (resending a message it never got an answer to under the same `client_message_id`,
so nothing is stored twice). Checked from the store afterwards: every message a replica accepted is stored; every
conversation got complete answers after the kill; the shared work ran on one replica at a time (the sentiment
monitor's lease terms never overlap) and every customer message was scored; a caller over its rate limit was
refused whichever replica it reached. Phases: 1 replica, 2 replicas (throughput over the same LLM server), then 2
with the kill."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from assistant.bench.customers import Outcome, Tally, send_message
from assistant.bench.load import SUPPORT_QUESTIONS, percentile
from assistant.ports import free_port

RATE_PROBE_NETWORK = "198.51.100."  # documentation addresses the probes' requests are counted under, one a phase


@dataclass
class Replica:
    index: int
    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class PhaseResult:
    replicas: int
    killed: bool
    customers: int
    duration_s: float
    sent: int = 0
    accepted: int = 0
    stored: int = 0
    complete: int = 0
    errors: int = 0
    failovers: int = 0
    answers_per_min: float = 0.0
    first_token_p50_ms: float | None = None
    first_token_p95_ms: float | None = None
    continued_after_kill: int | None = None  # conversations with a complete answer after the kill
    conversations: int = 0
    unscored: int | None = None  # customer messages the sentiment monitor had not scored at the end
    sentiment_terms: list[dict] = field(default_factory=list)
    sentiment_overlaps: int | None = None
    rate_limit: dict | None = None
    promotion: dict | None = None  # the retrieval version promoted mid-run and when each replica served it
    first_errors: list[str] = field(default_factory=list)


def start_replica(index: int, env: dict[str, str], work_dir: Path) -> Replica:
    port = free_port()
    log = work_dir / f"replica-{index}.log"
    command = [sys.executable, "-m", "assistant", "serve", "--no-ui", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning"]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=work_dir,
                                start_new_session=True)
    return Replica(index, port, proc, log)


def wait_ready(replica: Replica, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if replica.proc.poll() is not None:
            raise RuntimeError(f"replica {replica.index} exited with {replica.proc.returncode}: "
                               f"{replica.log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"replica {replica.index} was not ready in {timeout_s:.0f} s; see {replica.log}")
        time.sleep(0.5)


def stop(replica: Replica, sig: int = signal.SIGTERM) -> None:
    if replica.proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(replica.proc.pid, sig)
    try:
        replica.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait()


class Customer:
    """One simulated customer; `replica` is where its requests go until that one stops answering."""

    def __init__(self, index: int, urls: list[str], tally: Tally, seed: int):
        self.index, self.urls, self.tally = index, urls, tally
        self.replica = index % len(urls)
        self.rng = random.Random(seed + index)
        self.conversation: str | None = None
        self.complete_after: list[float] = []  # monotonic times of its complete answers
        self.failovers = 0

    async def run(self, stop_at: float) -> None:
        clients = [httpx.AsyncClient(base_url=u, timeout=httpx.Timeout(180, connect=5)) for u in self.urls]
        try:
            self.conversation = (await self._with_failover(
                clients, lambda c: c.post("/api/conversations", json={"customer_id": f"replicas-{self.index}",
                                                                        "channel": "bench"}))).json()["id"]
            await asyncio.sleep(self.rng.uniform(0, 2))
            for turn in itertools.count():
                if time.monotonic() >= stop_at:
                    break
                await self._message(clients, self.rng.choice(SUPPORT_QUESTIONS), f"{self.index}-{turn}")
                await asyncio.sleep(self.rng.uniform(1, 3))
        finally:
            for client in clients:
                await client.aclose()

    async def _with_failover(self, clients, call):
        for _ in range(len(clients) * 3):
            try:
                return await call(clients[self.replica])
            except httpx.TransportError:
                self._next_replica()
                await asyncio.sleep(0.5)
        raise RuntimeError("no replica answers")

    def _next_replica(self) -> None:
        self.replica = (self.replica + 1) % len(self.urls)
        self.failovers += 1

    async def _message(self, clients, text: str, key: str) -> None:
        accepted = False  # by a replica that died before answering: the same message is resent, counted once
        for _ in range(len(clients) * 3):
            outcome = await send_message(clients[self.replica], self.conversation, text, key)
            accepted = outcome.accepted = accepted or outcome.accepted
            if not any(("Error" in e or "HTTP 5" in e) for e in outcome.errors):
                self.tally.add(outcome)
                if outcome.complete:
                    self.complete_after.append(time.monotonic())
                return
            # the replica died under it: the same message goes to another (stored once: same client id)
            self._next_replica()
            await asyncio.sleep(0.5)
        self.tally.add(Outcome(accepted=accepted, errors=[f"customer {self.index}: no replica answered"]))


def probe_rate_limit(urls: list[str], limit: int, address: str) -> dict:
    """`limit + 5` quick requests from one client `address`, alternating between replicas: how many went
    through."""
    codes = []
    for i in range(limit + 5):
        try:
            codes.append(httpx.get(f"{urls[i % len(urls)]}/api/conversations/none/messages", timeout=10,
                                   headers={"X-Forwarded-For": address}).status_code)
        except httpx.HTTPError:
            codes.append(0)
    allowed = sum(1 for c in codes if c not in (429, 0))
    return {"limit_per_minute": limit, "sent": len(codes), "let_through": allowed,
            "refused": codes.count(429), "holds": allowed <= limit + 1}  # +1: one token refills in the probe


def promote_retrieval(home: Path) -> str:
    """Register the default encoder again as a retrieval version and promote it (what `assistant align retrieval`
    does with a better one): every replica must switch to it."""
    from assistant.registry import ModelVersion, retrieval_registry
    from retrieval.embeddings import encoder_path

    registry = retrieval_registry(home)
    version = registry.register(encoder_path("default"), ModelVersion(
        id="", parent=registry.active_id(), base_model="all-MiniLM-L6-v2", created_at="", data_hash="bench",
        decision="assistant bench replicas: the default encoder, promoted during the run"))
    registry.promote(version.id)
    return version.id


def served_versions(urls: list[str]) -> dict[str, str | None]:
    """The retrieval version each replica that answers says it searches with."""
    seen = {}
    for url in urls:
        try:
            seen[url] = httpx.get(f"{url}/healthz", timeout=5).json()["versions"]["retrieval"]
        except (httpx.HTTPError, ValueError, KeyError):
            continue
    return seen


def run_phase(env: dict[str, str], work_dir: Path, replicas: int, customers: int, duration_s: float,
              kill_at: float | None, database_url: str, rate_limit: int, seed: int, console,
              promote_at: float | None = None) -> PhaseResult:
    from assistant.store import Store

    store = Store(database_url, home=Path(env["ASSISTANT_HOME"]))  # the home's registries are in this database
    started_at_s = store.coordination.now_s()
    result = PhaseResult(replicas=replicas, killed=kill_at is not None, customers=customers, duration_s=duration_s)
    running = [start_replica(0, env, work_dir)]
    try:
        wait_ready(running[0])  # the first builds the shared knowledge base; the others read it
        running += [start_replica(i, env, work_dir) for i in range(1, replicas)]
        for replica in running[1:]:
            wait_ready(replica)
        urls = [r.url for r in running]
        result.rate_limit = probe_rate_limit(urls, rate_limit, f"{RATE_PROBE_NETWORK}{seed % 200 + replicas}")
        tally = Tally()
        people = [Customer(i, urls, tally, seed) for i in range(customers)]
        killed_at: float | None = None

        promoted: dict = {}

        async def everyone() -> None:
            nonlocal killed_at
            begin = time.monotonic()
            stop_at = begin + duration_s
            tasks = [asyncio.create_task(p.run(stop_at)) for p in people]
            while not all(t.done() for t in tasks):
                await asyncio.sleep(1)
                if promote_at is not None and not promoted and time.monotonic() - begin >= promote_at:
                    promoted["version"] = await asyncio.to_thread(promote_retrieval, Path(env["ASSISTANT_HOME"]))
                    promoted["at"], promoted["seconds_to_serve"] = time.monotonic(), {}
                    console.print(f"  retrieval {promoted['version']} promoted at {promote_at:.0f} s")
                if promoted and len(promoted["seconds_to_serve"]) < len(urls):
                    live = [r.url for r in running if r.proc.poll() is None]
                    for url, version in (await asyncio.to_thread(served_versions, live)).items():
                        if version == promoted["version"] and url not in promoted["seconds_to_serve"]:
                            promoted["seconds_to_serve"][url] = round(time.monotonic() - promoted["at"], 1)
                elapsed = time.monotonic() - begin
                if kill_at is not None and killed_at is None and elapsed >= kill_at:
                    # a promotion still on its way to a replica (they re-encode one at a time) delays the kill, for
                    # at most half of what the phase has left: the bench checks it reached every replica
                    spreading = promoted and len(promoted["seconds_to_serve"]) < len(urls)
                    if spreading and elapsed < kill_at + (duration_s - kill_at) / 2:
                        continue
                    await asyncio.to_thread(stop, running[0], signal.SIGKILL)
                    killed_at = time.monotonic()
                    console.print(f"  replica 0 killed (SIGKILL) at {elapsed:.0f} s")
            for task in tasks:
                task.result()

        began = time.monotonic()
        asyncio.run(everyone())
        wall = time.monotonic() - began
        if promoted:
            result.promotion = {"version": promoted["version"], "replicas_serving_it": len(promoted[
                "seconds_to_serve"]), "seconds_to_serve": list(promoted["seconds_to_serve"].values())}
        ids = [p.conversation for p in people if p.conversation]
        result.conversations = len(ids)
        result.stored = sum(1 for c in ids for m in store.conversations.messages(c) if m.role == "user")
        if killed_at is not None:
            result.continued_after_kill = sum(1 for p in people if any(t > killed_at for t in p.complete_after))
        deadline = time.monotonic() + 60  # the monitor scores in batches every few seconds
        while True:
            scored = sum(len(store.sentiment.sentiment_trajectory(c)) for c in ids)
            result.unscored = result.stored - scored
            if result.unscored <= 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        terms = [t for t in store.coordination.terms("sentiment") if t.expires_s >= started_at_s]
        result.sentiment_terms = [asdict(t) for t in terms]
        result.sentiment_overlaps = sum(1 for a, b in itertools.pairwise(terms) if a.expires_s > b.started_s)
        result.sent, result.accepted, result.complete = tally.sent, tally.accepted, tally.complete
        result.errors, result.first_errors = len(tally.errors), tally.errors[:5]
        result.failovers = sum(p.failovers for p in people)
        result.answers_per_min = round(tally.complete / wall * 60, 1)
        result.first_token_p50_ms = _ms(percentile(tally.first_token_ms, 50))
        result.first_token_p95_ms = _ms(percentile(tally.first_token_ms, 95))
        return result
    finally:
        for replica in running:
            stop(replica)
        store.close()


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value)


def passed(phase: PhaseResult) -> bool:
    """What the benchmark promises for a phase."""
    ok = phase.stored == phase.accepted and phase.sentiment_overlaps == 0 and (phase.unscored or 0) <= 0
    if phase.killed:
        ok = ok and phase.continued_after_kill == phase.conversations
    if phase.rate_limit is not None:
        ok = ok and phase.rate_limit["holds"]
    if phase.promotion is not None:
        ok = ok and phase.promotion["replicas_serving_it"] == phase.replicas
    return ok


def markdown(report: dict) -> str:
    m = report["meta"]
    lines = [f"# assistant bench replicas — {m['customers']} customers, {m['duration_s']} s a phase "
             f"({m['llm']}; answers: {m.get('answer_style', '-')})", "", m["machine"], "",
             "| replicas | kill | sent | accepted | stored | complete | errors | failovers | answers/min | "
             "first token p50 / p95 | continued after kill | unscored | sentiment terms (overlaps) | "
             "rate limit (let through / limit) | passed |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for p in report["phases"]:
        rate = p["rate_limit"] or {"let_through": "-", "limit_per_minute": "-"}
        lines.append(
            f"| {p['replicas']} | {'SIGKILL' if p['killed'] else '-'} | {p['sent']} | {p['accepted']} | "
            f"{p['stored']} | {p['complete']} | {p['errors']} | {p['failovers']} | {p['answers_per_min']} | "
            f"{p['first_token_p50_ms']} / {p['first_token_p95_ms']} ms | "
            f"{p['continued_after_kill'] if p['killed'] else '-'} / {p['conversations']} | {p['unscored']} | "
            f"{len(p['sentiment_terms'])} ({p['sentiment_overlaps']}) | "
            f"{rate['let_through']} / {rate['limit_per_minute']} | {p['passed']} |")
    for p in report["phases"]:
        if p.get("promotion"):
            lines += ["", f"retrieval {p['promotion']['version']} promoted during the {p['replicas']}-replica phase: "
                          f"served by {p['promotion']['replicas_serving_it']} of {p['replicas']} replicas after "
                          f"{p['promotion']['seconds_to_serve']} s"]
    if report.get("throughput_ratio") is not None:
        lines += ["", f"answers/min, 2 replicas / 1 replica over the same LLM server: "
                      f"**{report['throughput_ratio']:.2f}×**"]
    return "\n".join(lines) + "\n"


def run_replicas(database_url: str, llm_urls: list[str], customers: int, duration_s: float, phases: list[str],
                 out: Path | None, console, seed: int = 0, lease_ttl_s: float = 10, rate_limit: int = 20,
                 llm_name: str = "", extra_env: dict[str, str] | None = None) -> dict:
    """Run the phases (`one`, `two`, `kill`) and return the report (also written under `out` when given).
    `extra_env`: more settings for the replicas (ASSISTANT_… variables)."""
    work_dir = Path(tempfile.mkdtemp(prefix="assistant-replicas-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    env |= {"ASSISTANT_HOME": str(work_dir / "home"), "ASSISTANT_DATABASE_URL": database_url,
            "ASSISTANT_LLM_URL": ",".join(llm_urls), "ASSISTANT_AUTH__REQUIRED": "false",
            "ASSISTANT_AUTH__IP_REQUESTS_PER_MINUTE": str(rate_limit),
            "ASSISTANT_REPLICAS__LEASE_TTL_S": str(lease_ttl_s), "ASSISTANT_SENTIMENT__ENABLED": "true",
            "ASSISTANT_SENTIMENT__INTERVAL_S": "1", "ASSISTANT_RECOMMEND__MODE": "off",
            "ASSISTANT_GENERATION__TEMPERATURE": "0", **(extra_env or {})}
    plan = {"one": (1, None), "two": (2, None), "kill": (2, duration_s / 2)}
    promote = env.get("ASSISTANT_RETRIEVAL__ENABLED", "true").lower() != "false"  # the kill phase promotes first
    results = []
    for name in phases:
        replicas, kill_at = plan[name]
        console.print(f"phase {name}: {replicas} replica(s), {customers} customers for {duration_s:.0f} s"
                      + (f", replica 0 killed at {kill_at:.0f} s" if kill_at is not None else ""))
        phase = run_phase(env, work_dir, replicas, customers, duration_s, kill_at, database_url, rate_limit, seed,
                          console, promote_at=duration_s / 5 if name == "kill" and promote else None)
        results.append({**asdict(phase), "passed": passed(phase)})
        console.print(f"  {phase.complete} answers, {phase.answers_per_min}/min, stored {phase.stored} of "
                      f"{phase.accepted} accepted, passed: {results[-1]['passed']}")
    by_phase = dict(zip(phases, results, strict=True))
    ratio = None
    if "one" in by_phase and "two" in by_phase and by_phase["one"]["answers_per_min"]:
        ratio = by_phase["two"]["answers_per_min"] / by_phase["one"]["answers_per_min"]
    meta = {"customers": customers, "duration_s": duration_s, "llm": llm_name or ", ".join(llm_urls),
            "answer_style": (extra_env or {}).get("ASSISTANT_ANSWERS__STYLE", "the product's default"),
            "lease_ttl_s": lease_ttl_s, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
                                                   f"Python {platform.python_version()}"}
    report = {"benchmark": "replicas", "meta": meta, "phases": results, "throughput_ratio": ratio,
              "passed": all(r["passed"] for r in results)}
    if out is not None:
        from assistant.bench import write_results

        path = write_results(out, "replicas", report, markdown(report))
        console.print(f"results: {path} and .md")
    console.print(markdown(report), soft_wrap=True)
    return report
