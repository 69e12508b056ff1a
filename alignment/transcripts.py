"""Read and validate alignment input files line by line (contracts in DESIGN.md).

Transcripts: `{"id", "messages": [{"role": system|user|assistant|agent|tool, "content"}], "metadata"}`; an
assistant/agent turn that acted carries OpenAI `tool_calls`, and its result follows as a `tool` turn.
Preferences: `{"prompt": [messages], "chosen": [{"role": "assistant", ...}], "rejected": [...]}`.
A bad line is reported as `file:line: reason`; by default it is skipped and counted, `strict` stops at the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from retrieval.loaders import BadLine, json_object

ROLES = ("system", "user", "assistant", "agent", "tool")
TRANSCRIPT_FIELDS = {"id", "messages", "metadata"}
MESSAGE_FIELDS = {"role", "content", "tool_calls", "tool_call_id"}
PREFERENCE_FIELDS = {"prompt", "chosen", "rejected", "metadata"}


class InvalidLine(AssistantError, ValueError):
    """One input line broke the contract; the message is `file:line: reason`."""


@dataclass(frozen=True)
class Transcript:
    id: str
    messages: list[dict]
    metadata: dict = field(default_factory=dict)
    where: str = ""  # file:line it came from


@dataclass(frozen=True)
class Preference:
    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]
    where: str = ""


@dataclass
class ReadReport:
    rows: list = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "file:line: reason"


def _messages(value: Any, name: str, allowed_roles: tuple[str, ...] = ROLES) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"'{name}' must be a non-empty list of messages")
    messages = []
    for index, message in enumerate(value):
        where = f"{name}[{index}]"
        if not isinstance(message, dict):
            raise ValueError(f"{where} must be an object with 'role' and 'content'")
        unknown = set(message) - MESSAGE_FIELDS
        if unknown:
            raise ValueError(f"{where} has unknown field(s) {', '.join(sorted(unknown))}")
        role, content = message.get("role"), message.get("content")
        if role not in allowed_roles:
            raise ValueError(f"{where}.role is {role!r}; expected one of {', '.join(allowed_roles)}")
        calls = message.get("tool_calls")
        if calls is not None:
            if role not in ("assistant", "agent"):
                raise ValueError(f"{where}.tool_calls: only an assistant or agent turn calls actions")
            _check_tool_calls(calls, f"{where}.tool_calls")
        elif not isinstance(content, str) or not content.strip():
            raise ValueError(f"{where}.content is empty")
        messages.append({k: v for k, v in {"role": role, "content": content or "", "tool_calls": calls,
                                           "tool_call_id": message.get("tool_call_id")}.items() if v is not None})
    return messages


def _check_tool_calls(calls: Any, where: str) -> None:
    import json

    if not isinstance(calls, list) or not calls:
        raise ValueError(f"{where} must be a non-empty list of {{\"id\", \"type\": \"function\", \"function\"}}")
    for index, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ValueError(f"{where}[{index}].function must be {{\"name\", \"arguments\"}}")
        arguments = function.get("arguments", "{}")
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as exc:
            raise ValueError(f"{where}[{index}].function.arguments is not JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ValueError(f"{where}[{index}].function.arguments must be a JSON object")


def parse_transcript(row: dict, where: str) -> Transcript:
    unknown = set(row) - TRANSCRIPT_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; expected id, messages, metadata")
    if not isinstance(row.get("id"), str) or not row["id"].strip():
        raise ValueError("'id' must be a non-empty string")
    messages = _messages(row.get("messages"), "messages")
    replied = any(m["role"] in ("assistant", "agent") and any(p["role"] == "user" for p in messages[:i])
                  for i, m in enumerate(messages))
    if not replied:
        raise ValueError("the conversation never has an assistant or agent reply to a user message")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError("'metadata' must be an object")
    return Transcript(row["id"], messages, metadata, where)


def parse_preference(row: dict, where: str) -> Preference:
    unknown = set(row) - PREFERENCE_FIELDS
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}; expected prompt, chosen, rejected")
    prompt = _messages(row.get("prompt"), "prompt")
    chosen = _messages(row.get("chosen"), "chosen", ("assistant",))
    rejected = _messages(row.get("rejected"), "rejected", ("assistant",))
    if [m["content"].strip() for m in chosen] == [m["content"].strip() for m in rejected]:
        raise ValueError("'chosen' equals 'rejected': the pair teaches nothing")
    return Preference(prompt, chosen, rejected, where)


def read_file(path: Path, parse, strict: bool = False) -> ReadReport:
    """Every valid row of a JSONL file, and `file:line: reason` for every invalid one."""
    report = ReadReport()

    def fail(message: str) -> None:
        if strict:
            raise InvalidLine(message)
        report.errors.append(message)

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidLine(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    for line_no, line in enumerate(text.splitlines(), 1):
        try:
            row = json_object(line, line_no)
            if row is not None:
                report.rows.append(parse(row, f"{path}:{line_no}"))
        except BadLine as exc:
            fail(f"{path}:{exc.line_no}: {exc.reason}")
        except ValueError as exc:
            fail(f"{path}:{line_no}: {exc}")
    return report
