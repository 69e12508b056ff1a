"""Action decisions to learn from and to judge: one decision point each (the conversation so far, the actions
offered, the call the human agent made next or None). Read from the action-evaluation contract (DESIGN.md, the
`sgd_actions` rows) and from transcripts whose agent turns carry OpenAI `tool_calls`."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

from alignment.transcripts import InvalidLine
from assistant.actions.decision import (
    ActionCall,
    ActionSchemaError,
    Tool,
    as_said,
    decision_messages,
    decision_schema,
    decision_text,
    decision_turns,
    plain_turn,
    said_values,
    tools_from_openai,
)
from assistant.actions.values import parse_date, value_kind
from assistant.engines.base import ChatMessage
from retrieval.loaders import BadLine, jsonl_objects


@dataclass(frozen=True)
class ActionExample:
    id: str
    tools: tuple[Tool, ...]
    conversation: tuple[ChatMessage, ...]  # ends with the customer's turn
    call: ActionCall | None  # what the agent did next; None: it replied in words
    service: str = ""
    today: date | None = None  # the day of the conversation ("tomorrow" is relative to it); None: today

    @property
    def day(self) -> date:
        return self.today or date.today()

    def prompt(self) -> list[dict]:
        return [{"role": m.role, "content": m.content} for m in decision_messages(self.tools, self.conversation)]

    def schema(self, may_reply: bool = True) -> dict:
        """As when serving: free-text values copied from the conversation."""
        return decision_schema(self.tools, may_reply, said_values(self.conversation))

    def target(self) -> str:
        """The decision as the model should write it: values copied as said (our code writes dates as ISO)."""
        call = self.call and as_said(self.call, self.tools, self.conversation, self.day)
        return decision_text(self.tools, call)

    def sft_row(self) -> dict:
        """TRL's conversational prompt/completion row: the loss is on the decision only."""
        return {"prompt": self.prompt(), "completion": [{"role": "assistant", "content": self.target()}]}


def _call(value, where: str) -> ActionCall | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise InvalidLine(f"{where}: field call: expected null or {{\"name\": ..., \"arguments\": {{...}}}}")
    arguments = value.get("arguments") or {}
    if isinstance(arguments, str):  # OpenAI's tool_calls carry the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise InvalidLine(f"{where}: field call.arguments: not JSON ({exc.msg})") from exc
    if not isinstance(arguments, dict):
        raise InvalidLine(f"{where}: field call.arguments: expected an object")
    return ActionCall(value["name"], arguments)


def load_action_file(path: Path) -> list[ActionExample]:
    """Rows `{"id", "tools": [OpenAI tools], "messages": [...], "call": {"name", "arguments"} | null}`; a bad
    row stops the load with `file:line: field ...: reason`."""
    path = Path(path)
    if not path.is_file():
        raise InvalidLine(f"{path}: no such file (expected JSONL rows with tools, messages and call)")
    examples = []
    with path.open(encoding="utf-8") as handle:
        try:
            for line_no, row in jsonl_objects(handle):
                where = f"{path}:{line_no}"
                missing = [f for f in ("tools", "messages", "call") if f not in row]
                if missing:
                    raise InvalidLine(f"{where}: missing field(s) {', '.join(missing)}")
                try:
                    tools = tools_from_openai(row["tools"], "field tools")
                except ActionSchemaError as exc:
                    raise InvalidLine(f"{where}: {exc}") from exc
                messages = row["messages"]
                if not messages or not all(isinstance(m, dict) and isinstance(m.get("content"), str)
                                           for m in messages):
                    raise InvalidLine(f"{where}: field messages: expected a list of {{\"role\", \"content\"}}")
                call = _call(row["call"], where)
                if call is not None and call.name not in {t.name for t in tools}:
                    raise InvalidLine(f"{where}: field call.name: {call.name!r} is not among the row's tools")
                try:
                    today = date.fromisoformat(row["today"]) if row.get("today") else None
                except (TypeError, ValueError):
                    raise InvalidLine(f"{where}: field today: expected a date YYYY-MM-DD, "
                                      f"got {row['today']!r}") from None
                examples.append(ActionExample(str(row.get("id", line_no)), tuple(tools),
                                              tuple(ChatMessage(m.get("role", "user"), m["content"])
                                                    for m in messages), call, str(row.get("service", "")), today))
        except BadLine as exc:
            raise InvalidLine(f"{path}:{exc.line_no}: {exc.reason}") from exc
    if not examples:
        raise InvalidLine(f"{path}: no rows")
    day = dialogue_date(examples)
    return [e if e.today or day is None else replace(e, today=day) for e in examples]


def dialogue_date(examples: Sequence[ActionExample], most: int = 300) -> date | None:
    """The day a file's dialogues were held, for rows that do not say (`today`): the day that best explains the
    dates its calls were made with from what customers said relative to it ("tomorrow", "next Friday"). None when
    no call says."""
    votes: Counter[date] = Counter()
    dated = [e for e in examples if e.call is not None and e.today is None][:most]
    for example in dated:
        tool = next(t for t in example.tools if t.name == example.call.name)
        wanted = set()
        for name, value in example.call.arguments.items():
            if value_kind(name, tool.properties.get(name, {})) == "date" and isinstance(value, str):
                try:
                    wanted.add(date.fromisoformat(value))
                except ValueError:
                    continue
        said = [m.content for m in decision_turns(example.conversation)]
        for day in wanted:
            for text in said:
                for back in range(14):
                    ref = day - timedelta(days=back)
                    if parse_date(text, ref) == day and parse_date(text, ref + timedelta(days=1)) != day:
                        votes[ref] += 1
    return votes.most_common(1)[0][0] if votes else None


def transcript_action_examples(messages: Sequence[dict], tools: Sequence[Tool], where: str) -> list[ActionExample]:
    """The decision points of one transcript: before every agent/assistant turn that follows a customer turn (or an
    action's result), the call it made (`tool_calls`) or None when it replied in words."""
    examples = []
    so_far: list[ChatMessage] = []
    known = {t.name for t in tools}
    for index, message in enumerate(messages):
        role = message.get("role")
        if role in ("agent", "assistant") and so_far and so_far[-1].role == "user":
            calls = message.get("tool_calls") or []
            call = _call(calls[0].get("function"), f"{where} message {index}") if calls else None
            if call is None or call.name in known:
                examples.append(ActionExample(f"{where}#{index}", tuple(tools), tuple(so_far), call))
        if role in ("user", "agent", "assistant", "tool"):
            shown_role, text = plain_turn(role, message.get("content") or "", message.get("tool_calls"))
            so_far.append(ChatMessage("assistant" if shown_role == "agent" else shown_role, text))
    return examples


def balanced_subset(examples: Sequence[ActionExample], limit: int | None, seed: int = 13) -> list[ActionExample]:
    """At most `limit` examples, as many calls as replies where the data allows, spread over the services."""
    if limit is None or limit >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    calls = [e for e in examples if e.call is not None]
    replies = [e for e in examples if e.call is None]
    rng.shuffle(calls)
    rng.shuffle(replies)
    take_calls = min(len(calls), max(limit - len(replies), limit // 2))
    chosen = calls[:take_calls] + replies[: limit - take_calls]
    rng.shuffle(chosen)
    return chosen
