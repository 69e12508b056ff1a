"""The model's queue as this server sees it: answers the model is writing (or waits to start), and how long a new one
would wait for its first word. The estimate comes from recent answers: each one's wait for its first word divided by
the answers it shared the engine with, times the answers in flight or admitted (a burst of customers counts itself
before any reaches the model) plus one. Past `answers.max_wait_s` a customer is not left in silence: the answer is
composed from the sources at once or, with none, a short "busy" reply offers a human (chat_serving.py). `/healthz`
and `/metrics` show both figures."""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import TypeVar

T = TypeVar("T")

ADMITTED_FOR_S = 30.0  # an admitted answer that never reached the model stops counting after this
# the wait per answer assumed until one is measured (a small CPU's figure), so a burst of customers at start is not
# all sent to the model at once
FIRST_WAIT_PER_ANSWER_S = 1.0


class AnswerQueue:
    """Answers being written by the model, and the measured first-word wait per answer sharing the engine."""

    def __init__(self, window: int = 32):
        self.writing = 0
        self._admitted: deque[float] = deque()  # when each answer on its way to the model was admitted
        self._wait_per_answer_s: deque[float] = deque(maxlen=window)

    def admit(self) -> None:
        """An answer goes to the model: counted from now, before its stream starts."""
        self._admitted.append(time.monotonic())

    def waiting(self) -> int:
        """Answers admitted that have not reached the model yet."""
        while self._admitted and self._admitted[0] < time.monotonic() - ADMITTED_FOR_S:
            self._admitted.popleft()
        return len(self._admitted)

    def estimated_wait_s(self) -> float:
        """Seconds a new answer would keep its customer waiting now for its first words."""
        per_answer = statistics.median(self._wait_per_answer_s) if self._wait_per_answer_s else FIRST_WAIT_PER_ANSWER_S
        return per_answer * (self.writing + self.waiting() + 1)

    async def timed(self, events: AsyncIterator[T], shows_text: Callable[[T], bool],
                    admitted: bool = False) -> AsyncIterator[T]:
        """`events` (an answer on its way to the customer), counted while they run and timed to the first one that
        `shows_text`: the customer's wait. The support check can make it longer than the wait for the model's first
        word: it releases only supported sentences, and with none the answer composed from the sources comes at the
        end. `admitted`: it was counted by `admit` until now."""
        if admitted and self._admitted:
            self._admitted.popleft()
        self.writing += 1
        sharing, started, waiting = self.writing, time.monotonic(), True
        try:
            async with aclosing(events):
                async for event in events:
                    if waiting and shows_text(event):
                        self._wait_per_answer_s.append((time.monotonic() - started) / sharing)
                        waiting = False
                    yield event
        finally:
            self.writing -= 1
