"""`assistant bench actions`: the cost of our code around an action's HTTP call (validation, identity, building
the request, parsing, the audit summary, the reply) against the demo company's real order service, and the whole
call, one at a time and with concurrent customers."""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import time
from pathlib import Path

from assistant.bench import write_results

DEMO_ACTIONS = Path(__file__).resolve().parents[2] / "data" / "orders" / "actions.yaml"


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3)}


async def _measure(runner, calls: int, concurrency: int) -> dict:
    from assistant.actions.decision import ActionCall

    orders = [("1040", "c-1001"), ("1041", "c-1002"), ("1042", "c-1003"), ("1043", "c-1004")]
    overhead, network, whole = [], [], []
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        order, customer = orders[i % len(orders)]
        async with semaphore:
            started = time.perf_counter()
            outcome = await runner.run(ActionCall("order_status", {"order_id": order}), {"customer_id": customer})
            whole.append((time.perf_counter() - started) * 1000)
        assert outcome.ok, outcome.message
        overhead.append(outcome.overhead_ms)
        network.append(outcome.latency_ms)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    seconds = time.perf_counter() - started
    return {"calls": calls, "concurrency": concurrency, "calls_per_s": round(calls / seconds, 1),
            "overhead_ms": _percentiles(overhead), "http_ms": _percentiles(network), "call_ms": _percentiles(whole)}


ASKED = ["Where is my order {order}?", "Has order {order} shipped yet?", "我的订单{order}到哪里了？",
         "Can you check order {order} for me?"]


async def _turns(service, engine, params, turns: int) -> dict:
    """Whole customer turns as serving runs them, one at a time: the answer is the action's reply, or None when
    the decision was to reply in words (counted as a miss)."""
    from assistant.engines.base import ChatMessage

    orders = [("1040", "c-1001"), ("1041", "c-1002"), ("1042", "c-1003"), ("1043", "c-1004")]
    timings, acted = [], 0
    for i in range(turns):
        order, customer = orders[i % len(orders)]
        conversation = service.store.conversations.create_conversation(customer_id=customer).id
        said = ChatMessage("user", ASKED[i % len(ASKED)].format(order=order))
        started = time.perf_counter()
        reply = await service.turn(conversation, [said], {"customer_id": customer}, engine, params)
        timings.append((time.perf_counter() - started) * 1000)
        acted += reply is not None and reply.run is not None and reply.run.status == "succeeded" and order in reply.text
    return {"turns": turns, "looked_up": acted, "turn_ms": _percentiles(timings)}


def _measure_turns(args, catalog, scratch: Path) -> dict:
    from assistant.actions.service import ActionService
    from assistant.cli.options import load_from_args
    from assistant.engines import build_engine
    from assistant.engines.base import GenerationParams
    from assistant.runtime import choose_engine, model_by_spec, with_private_vllm_port
    from assistant.store import Store

    loaded = load_from_args(args)
    model = model_by_spec(args.model, loaded.settings)
    settings = with_private_vllm_port(loaded.settings).model_copy(update={"engine": choose_engine(loaded),
                                                                          "llm_url": None})
    store = Store(f"sqlite:///{scratch}/bench.db")
    service = ActionService(catalog, store)
    service.use_model(model)

    async def measure() -> dict:
        engine = build_engine(settings, model)
        await engine.start()
        try:
            params = GenerationParams.from_settings(settings.generation)
            await _turns(service, engine, params, 2)  # warm-up
            return await _turns(service, engine, params, args.turns)
        finally:
            await engine.stop()

    try:
        return asyncio.run(measure()) | {"model": model.name, "engine": settings.engine,
                                         "call_classifier": service.classifier is not None}
    finally:
        store.close()


def run_benchmark(args: argparse.Namespace) -> int:
    from rich.console import Console

    from assistant.actions.execution import ActionRunner
    from assistant.actions.spec import load_actions
    from assistant.demo.order_service import OrderService

    async def measure_all(catalog) -> list[dict]:
        runner = ActionRunner(catalog)  # as serving runs it: its own client, kept across calls
        await _measure(runner, 20, 1)  # warm-up: the client, connections, first imports
        return [await _measure(runner, args.calls, c) for c in (1, args.concurrency)]

    with tempfile.TemporaryDirectory() as scratch, OrderService(Path(scratch) / "orders.db") as service:
        catalog = load_actions(DEMO_ACTIONS, service.environment())
        runs = asyncio.run(measure_all(catalog))
        turns = _measure_turns(args, catalog, Path(scratch)) if getattr(args, "turns", 0) else None
    result = {"machine": {"cpu": platform.processor() or platform.machine()}, "action": "order_status", "runs": runs}
    if turns:
        result["turns"] = turns
    lines = ["# bench actions (demo order service, order_status)", "",
             "| concurrency | calls | calls/s | our overhead p50 / p95 ms | HTTP p50 / p95 ms "
             "| whole call p50 / p95 ms |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r['concurrency']} | {r['calls']} | {r['calls_per_s']} | {r['overhead_ms']['p50']} / "
                     f"{r['overhead_ms']['p95']} | {r['http_ms']['p50']} / {r['http_ms']['p95']} | "
                     f"{r['call_ms']['p50']} / {r['call_ms']['p95']} |")
    if turns:
        lines += ["", f"whole turns ({turns['model']}, {turns['engine']}, call classifier: "
                      f"{'yes' if turns['call_classifier'] else 'no'}): {turns['turns']} turns, "
                      f"{turns['looked_up']} answered from the order service; turn p50 / p95: "
                      f"{turns['turn_ms']['p50']} / {turns['turn_ms']['p95']} ms"]
    path = write_results(args.out, "actions", result, "\n".join(lines) + "\n")
    Console(stderr=True).print("\n".join(lines) + f"\n\nwritten: {path}")
    if args.json:
        import json

        print(json.dumps(result))
    return 0
