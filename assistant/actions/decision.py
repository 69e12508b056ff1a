"""The action decision: given the actions a conversation may use (OpenAI `tools`) and the conversation so far, the
model writes one JSON object, `{"action": null}` (reply in words) or `{"action": NAME, "arguments": {...}}`.

One home for the prompt, the JSON schema that constrains decoding (vLLM structured outputs, xgrammar in the
transformers engine), the training target and the parser, so serving, evaluation and alignment cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from assistant.engines.base import ChatMessage, GenerationParams
from assistant.errors import AssistantError

INSTRUCTIONS = (
    "Decide the next step. Write JSON only: {\"action\": null} to reply in words (a required detail is missing, "
    "the customer has not yet confirmed a change, or no action is needed); otherwise {\"action\": NAME, "
    "\"arguments\": {...}} with values the customer gave. Actions (* required):")
MAX_VALUE_CHARS = 80  # a free-text argument longer than this is a model rambling, not a value
MAX_TURNS = 8  # the last messages a decision reads: details are usually restated near the end (and every token costs)


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


def decision_messages(tools: Sequence[Tool], conversation: Sequence[ChatMessage]) -> list[ChatMessage]:
    """The prompt of one decision: the instructions with the actions, then the last turns of the conversation."""
    turns = [m for m in conversation if m.role in ("user", "assistant")][-MAX_TURNS:]
    return [ChatMessage("system", f"{INSTRUCTIONS}\n{render_tools(tools)}"), *turns]


def _arguments_schema(tool: Tool) -> dict:
    properties = {}
    for name, schema in tool.properties.items():
        kept = {k: v for k, v in schema.items() if k in ("type", "enum", "minimum", "maximum", "items", "format",
                                                          "pattern", "minLength", "maxLength")}
        kept = kept or {"type": "string"}
        if kept.get("type", "string") == "string" and "enum" not in kept:
            kept = {"maxLength": MAX_VALUE_CHARS} | kept
        properties[name] = kept
    return {"type": "object", "properties": properties, "required": tool.required, "additionalProperties": False}


def decision_schema(tools: Sequence[Tool], may_reply: bool = True) -> dict:
    """The JSON schema every decision satisfies: decoding constrained by it cannot name an unknown action, leave out
    a required argument or invent a parameter. `may_reply` False: an action must be called."""
    choices: list[dict] = [{"type": "object", "properties": {"action": {"type": "null"}}, "required": ["action"],
                            "additionalProperties": False}] if may_reply else []
    for tool in tools:
        choices.append({"type": "object",
                        "properties": {"action": {"const": tool.name}, "arguments": _arguments_schema(tool)},
                        "required": ["action", "arguments"], "additionalProperties": False})
    return {"anyOf": choices}


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


async def decide(engine, tools: Sequence[Tool], conversation: Sequence[ChatMessage], params: GenerationParams,
                 may_reply: bool = True) -> ActionCall | None:
    """Ask `engine` for the next step of `conversation`: greedy, constrained to the decision schema, so what comes
    back is a valid call of one of `tools` or None (reply in words)."""
    asked = replace(params, max_new_tokens=decision_token_budget(tools), temperature=0.0, top_p=1.0, stop=[],
                    json_schema=decision_schema(tools, may_reply))
    text = "".join([delta.text async for delta in engine.stream_chat(decision_messages(tools, conversation), asked)])
    return parse_decision(text, tools, may_reply)
