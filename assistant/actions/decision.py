"""The action decision: given the actions a conversation may use (OpenAI `tools`) and the conversation so far, the
model writes one JSON object, `{"action": null}` (reply in words) or `{"action": NAME, "arguments": {...}}`.

One home for the prompt, the JSON schema that constrains decoding (vLLM structured outputs, xgrammar in the
transformers engine), the training target and the parser, so serving, evaluation and alignment cannot drift apart.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from assistant.actions.values import normalise_arguments, parse_date, parse_time, reads_as, value_kind
from assistant.engines.base import ChatMessage, GenerationParams
from assistant.errors import AssistantError
from assistant.prompt import CJK

INSTRUCTIONS = (
    "Decide the next step. Write JSON only: {\"action\": null} to reply in words (a required detail is missing, "
    "the customer has not yet confirmed a change, or no action is needed); otherwise {\"action\": NAME, "
    "\"arguments\": {...}} with values the customer gave. Actions (* required):")
MAX_VALUE_CHARS = 80  # a free-text argument longer than this is a model rambling, not a value
MAX_TURNS = 8  # the last messages a decision reads: details are usually restated near the end (and every token costs)
MAX_VALUE_WORDS = 8  # the longest run of words a copied argument value may be


class ActionSchemaError(AssistantError, ValueError):
    """An action's description is not usable: the message names the action and the field."""


class InvalidDecision(AssistantError, ValueError):
    """What the model wrote is not a valid decision for the actions offered."""


@dataclass(frozen=True)
class Tool:
    """An action as the model sees it: name, what it does, its parameters (a JSON schema of an object)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    @property
    def properties(self) -> dict[str, dict]:
        return self.parameters.get("properties") or {}

    @property
    def required(self) -> list[str]:
        return list(self.parameters.get("required") or [])


@dataclass(frozen=True)
class ActionCall:
    name: str
    arguments: dict[str, Any]

    def argument_pairs(self) -> set[tuple[str, str]]:
        """(name, value) pairs, values compared as text, case and spacing aside (how calls are judged equal)."""
        return {(k, " ".join(str(v).split()).casefold()) for k, v in self.arguments.items()}


def tools_from_openai(tools: Sequence[dict], where: str = "tools") -> list[Tool]:
    """OpenAI `tools` entries (`{"type": "function", "function": {...}}`) as `Tool`s; errors name the entry."""
    out = []
    for index, entry in enumerate(tools):
        function = entry.get("function") if isinstance(entry, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ActionSchemaError(f"{where}[{index}]: expected {{\"type\": \"function\", \"function\": "
                                    "{\"name\": ..., \"parameters\": {...}}}")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if parameters.get("type", "object") != "object" or not isinstance(parameters.get("properties", {}), dict):
            raise ActionSchemaError(f"{where}[{index}] ({function['name']}): parameters must be a JSON schema "
                                    "of type object with properties")
        missing = [r for r in parameters.get("required", []) if r not in parameters.get("properties", {})]
        if missing:
            raise ActionSchemaError(f"{where}[{index}] ({function['name']}): required parameter(s) "
                                    f"{', '.join(missing)} not among its properties")
        out.append(Tool(function["name"], function.get("description") or "", parameters))
    return out


def _parameter(name: str, schema: dict, required: bool) -> str:
    options = schema.get("enum")
    shown = name + ("*" if required else "")
    return f"{shown}: {'|'.join(map(str, options))}" if options else shown


def render_tools(tools: Sequence[Tool]) -> str:
    """One line per action: `Name(param*, other: a|b) - description`: compact, because every token of it is read
    on every turn and trained on in every example."""
    lines = []
    for tool in tools:
        required = set(tool.required)
        params = ", ".join(_parameter(n, s, n in required) for n, s in tool.properties.items())
        lines.append(f"{tool.name}({params}) - {tool.description}".rstrip(" -"))
    return "\n".join(lines)


def plain_turn(role: str, content: str, tool_calls: Sequence[dict] | None = None) -> tuple[str, str]:
    """A turn a chat template can render: a turn that called actions says what it called (assistant), an action's
    result is shown as a note in the conversation (user) that the reply after it is grounded in."""
    if tool_calls:
        called = " ".join(f"[called {c['function']['name']} {c['function'].get('arguments', '{}')}]"
                          for c in tool_calls)
        return "assistant", called
    if role == "tool":
        return "user", f"[result of the call] {content}"
    return role, content


def decision_turns(conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The turns a decision reads: the last MAX_TURNS said by the customer and the agent."""
    return [m for m in conversation if m.role in ("user", "assistant")][-MAX_TURNS:]


def decision_messages(tools: Sequence[Tool], conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The prompt of one decision: the instructions with the actions, then the last turns of the conversation."""
    return [ChatMessage("system", f"{INSTRUCTIONS}\n{render_tools(tools)}"), *decision_turns(conversation)]


_CLAUSE = re.compile(r"[.!?;。！？；]\s+|[.!?;]$|[。！？；，、]")
_EDGE = ".,!?;:\"'()[]“”‘’。，！？；：（）"


def said_values(conversation: Sequence[ChatMessage]) -> list[str]:
    """Every run of up to MAX_VALUE_WORDS words (Chinese: up to MAX_VALUE_CHARS characters of a clause) said in the
    turns a decision reads: the values a copied argument may take."""
    found: dict[str, None] = {}
    for turn in decision_turns(conversation):
        for clause in _CLAUSE.split(turn.content):
            words = clause.split()
            if len(words) == 1 and CJK.search(clause):  # no spaces between Chinese words: every substring
                text = clause.strip(_EDGE)[:MAX_VALUE_CHARS]
                spans = (text[i:j] for i in range(len(text)) for j in range(i + 1, min(len(text), i + 12) + 1))
            else:
                spans = (" ".join(words[i:j]) for i in range(len(words))
                         for j in range(i + 1, min(len(words), i + MAX_VALUE_WORDS) + 1))
            for span in spans:
                value = span.strip(_EDGE)
                if value and len(value) <= MAX_VALUE_CHARS:
                    found.setdefault(value)
    return list(found)


def _fits(value: str, schema: dict) -> bool:
    return (schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", MAX_VALUE_CHARS)
            and ("pattern" not in schema or re.search(schema["pattern"], value) is not None))


def _arguments_schema(tool: Tool, values: Sequence[str] | None = None) -> dict | None:
    """The schema of `tool`'s arguments; with `values`, free-text ones must be one of the values that fit them, and
    None when a required one has no such value (the detail was not given: the action cannot be called yet)."""
    properties = {}
    for name, schema in tool.properties.items():
        kept = {k: v for k, v in schema.items() if k in ("type", "enum", "minimum", "maximum", "items", "format",
                                                          "pattern", "minLength", "maxLength")}
        kept = kept or {"type": "string"}
        if kept.get("type", "string") == "string" and "enum" not in kept:
            kept = {"maxLength": MAX_VALUE_CHARS} | kept
            if values is not None:  # copied from the conversation: a value nobody said cannot be written
                kind = value_kind(name, schema)
                said = [v for v in values if _fits(v, kept) and reads_as(kind, v)]
                if not said:
                    if name in tool.required:
                        return None
                    continue
                kept = {"type": "string", "enum": said}
        properties[name] = kept
    required = [r for r in tool.required if r in properties]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def decision_schema(tools: Sequence[Tool], may_reply: bool = True, values: Sequence[str] | None = None) -> dict:
    """The JSON schema every decision satisfies: decoding constrained by it cannot name an unknown action, leave out
    a required argument or invent a parameter. `may_reply` False: an action must be called. `values` (see
    `said_values`): free-text arguments must be one of them, words the conversation said."""
    choices: list[dict] = [{"type": "object", "properties": {"action": {"type": "null"}}, "required": ["action"],
                            "additionalProperties": False}] if may_reply else []
    for tool in tools:
        arguments = _arguments_schema(tool, values)
        if arguments is not None:
            choices.append({"type": "object", "properties": {"action": {"const": tool.name}, "arguments": arguments},
                            "required": ["action", "arguments"], "additionalProperties": False})
    return {"anyOf": choices}


def offers_a_call(schema: dict) -> bool:
    """Whether a decision schema lets any action be called (copying values can leave only the reply)."""
    return any("const" in choice["properties"]["action"] for choice in schema["anyOf"])


def decision_token_budget(tools: Sequence[Tool]) -> int:
    """Tokens enough for the longest decision the schema allows (a token is at least one character), so a
    constrained decision is never cut short into invalid JSON."""
    def longest(tool: Tool) -> int:
        size = len(tool.name) + 40
        for name, schema in tool.properties.items():
            options = schema.get("enum")
            value = max(len(json.dumps(o)) for o in options) if options else MAX_VALUE_CHARS + 2
            size += len(name) + 6 + value
        return size

    return max([24, *map(longest, tools)])


def decision_text(tools: Sequence[Tool], call: ActionCall | None) -> str:
    """What the model should write for `call` (the training target): arguments in the schema's order, the
    way constrained decoding writes them."""
    if call is None:
        return json.dumps({"action": None})
    tool = next((t for t in tools if t.name == call.name), None)
    order = list(tool.properties) if tool else []
    arguments = {k: call.arguments[k] for k in order if k in call.arguments}
    arguments |= {k: v for k, v in call.arguments.items() if k not in arguments}
    return json.dumps({"action": call.name, "arguments": arguments}, ensure_ascii=False)


def parse_decision(text: str, tools: Sequence[Tool], may_reply: bool = True) -> ActionCall | None:
    """The decision in `text`, checked against the actions offered (`InvalidDecision` says what is wrong)."""
    import jsonschema

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDecision(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    try:
        jsonschema.validate(value, decision_schema(tools, may_reply))
    except jsonschema.ValidationError:
        name = value.get("action") if isinstance(value, dict) else None
        known = {t.name for t in tools}
        reason = ("not a decision object" if not isinstance(name, str) else
                  f"unknown action {name!r}" if name not in known else "arguments do not fit the action's parameters")
        raise InvalidDecision(reason) from None
    return None if value["action"] is None else ActionCall(value["action"], dict(value["arguments"]))


def as_said(call: ActionCall, tools: Sequence[Tool], conversation: Sequence[ChatMessage], today: date) -> ActionCall:
    """`call` with its values written as the conversation said them (the training target of a model that copies):
    the said casing, and for a date or time the shortest said words that `as_services_take` turns into it. A value
    nothing said gives stays as it is."""
    tool = next(t for t in tools if t.name == call.name)
    said = said_values(conversation)
    folded = {v.casefold(): v for v in reversed(said)}  # the latest turn's casing wins
    out = dict(call.arguments)
    for name, value in call.arguments.items():
        if not isinstance(value, str) or value in said:
            continue
        kind = value_kind(name, tool.properties.get(name, {}))
        if kind is None:
            out[name] = folded.get(value.casefold(), value)
            continue
        read = (lambda v: (parse_date(v, today) or date.min).isoformat()) if kind == "date" else parse_time
        matches = [v for v in said if read(v) == value]
        if matches:
            out[name] = min(matches, key=len)
    return ActionCall(call.name, out)


def as_services_take(call: ActionCall, tools: Sequence[Tool], today: date) -> ActionCall:
    """`call` with the dates and times the customer said written as services take them (see `values`)."""
    tool = next(t for t in tools if t.name == call.name)
    return ActionCall(call.name, normalise_arguments(tool.properties, call.arguments, today))


async def decide(engine, tools: Sequence[Tool], conversation: Sequence[ChatMessage], params: GenerationParams,
                 may_reply: bool = True, classifier=None, copy_values: bool = False,
                 today: date | None = None, reader=None) -> ActionCall | None:
    """Ask `engine` for the next step of `conversation`: greedy, constrained to the decision schema, so what comes
    back is a valid call of one of `tools` or None (reply in words).

    With a `classifier` (CallClassifier) it decides call or reply first, and the model is asked only for a call's
    action and arguments. `copy_values`: free-text arguments are copied from what was said (`said_values`);
    `today`: the dates and times in them are then written as services take them, relative to that day. With a
    `reader` (CallReader) too, the reader fills the call instead of the model."""
    if classifier is not None and may_reply:
        if not await asyncio.to_thread(classifier.calls, conversation):  # an encoder: off the event loop
            return None
        if reader is not None:
            return await asyncio.to_thread(reader.read, tools, conversation, today)
        may_reply = False
    schema = decision_schema(tools, may_reply, said_values(conversation) if copy_values else None)
    if not offers_a_call(schema):  # no action has its required details yet: the reply asks for them
        return None
    asked = replace(params, max_new_tokens=decision_token_budget(tools), temperature=0.0, top_p=1.0, stop=[],
                    json_schema=schema)
    text = "".join([delta.text async for delta in engine.stream_chat(decision_messages(tools, conversation), asked)])
    call = parse_decision(text, tools, may_reply)
    return as_services_take(call, tools, today) if call is not None and today is not None else call
