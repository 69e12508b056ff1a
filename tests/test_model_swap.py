"""Hot swap: a promoted model starts beside the serving one; answers in flight finish on the old model, new ones
go to the new model, and a version that cannot start leaves the old one serving."""

from __future__ import annotations

import asyncio

import pytest

from assistant.engines.base import Delta, EngineUnavailableError
from assistant.engines.context import estimated_window
from assistant.engines.swappable import SwappableEngine


class ScriptedEngine:
    """An engine that answers with its own name, one word at a time, each word released by the test."""

    def __init__(self, name: str, starts: bool = True):
        self.name, self.starts = name, starts
        self.running = False
        self.asked = asyncio.Event()  # an answer has begun
        self.release = asyncio.Event()

    async def start(self) -> None:
        if not self.starts:
            raise EngineUnavailableError(f"{self.name} failed to start: out of memory")
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def health(self) -> bool:
        return self.running

    def model_names(self) -> list[str]:
        return [self.name]

    def context_window(self):
        return estimated_window(2048)

    async def stream_chat(self, messages, params):
        assert self.running, f"{self.name} was asked after it stopped"
        self.asked.set()
        yield Delta(text=f"{self.name} ")
        await self.release.wait()
        yield Delta(text="done")
        yield Delta(finish_reason="stop")


async def answer(engine) -> str:
    return "".join([d.text async for d in engine.stream_chat([], None)])


async def test_answers_in_flight_finish_on_the_old_model_and_new_ones_use_the_new():
    old, new = ScriptedEngine("model@v1"), ScriptedEngine("model@v2")
    engine = SwappableEngine(old)
    await engine.start()
    in_flight = asyncio.create_task(answer(engine))
    await asyncio.wait_for(old.asked.wait(), 5)  # the answer has begun on v1
    swap = asyncio.create_task(engine.swap(new, drain_timeout_s=30))
    while engine.current is not new:
        await asyncio.sleep(0.01)
    assert new.running and old.running  # both serve while v1 finishes its answer
    new.release.set()
    assert await answer(engine) == "model@v2 done"  # a new answer goes to v2 at once
    old.release.set()
    assert await in_flight == "model@v1 done"  # the answer in flight was not cut
    await swap
    assert not old.running and engine.model_names()[0] == "model@v2"
    assert "model@v1" in engine.model_names()  # clients that name the old version keep working


async def test_a_version_that_cannot_start_leaves_the_old_one_serving():
    old, broken = ScriptedEngine("model@v1"), ScriptedEngine("model@v2", starts=False)
    old.release.set()
    engine = SwappableEngine(old)
    await engine.start()
    with pytest.raises(EngineUnavailableError, match="failed to start"):
        await engine.swap(broken)
    assert engine.current is old and old.running
    assert await answer(engine) == "model@v1 done"
