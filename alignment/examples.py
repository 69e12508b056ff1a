"""Transcripts and feedback -> training examples, built with the serving prompt builder.

An SFT example is (prompt messages, the reply to learn), where the prompt is exactly what the model sees when
serving: system prompt + grounding rules + the passages retrieval returns for the customer's last message +
the conversation so far. Human agent replies are the targets; a bot reply immediately followed by an agent's
reply is a correction and becomes a preference pair (chosen = the agent's, rejected = the bot's).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from alignment.metrics import token_recall
from alignment.transcripts import Preference, Transcript
from assistant.actions.decision import plain_turn
from assistant.prompt import PromptRoom, build_chat_messages, cited_numbers
from assistant.redaction import Redactor

# question -> the passages serving would give the model for it (empty: answered without sources)
Retrieve = Callable[[str], Sequence]


@dataclass(frozen=True)
class SFTExample:
    prompt: list[dict]
    completion: list[dict]
    group: str  # the conversation it came from: held-out splits never cut through one
    source_ids: tuple[str, ...] = ()

    @property
    def reference(self) -> str:
        return self.completion[0]["content"]

    def row(self) -> dict:
        return {"prompt": self.prompt, "completion": self.completion}


@dataclass(frozen=True)
class PreferencePair:
    prompt: list[dict]
    chosen: list[dict]
    rejected: list[dict]
    origin: str  # file:line, transcript id or store message id

    def row(self) -> dict:
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


@dataclass(frozen=True)
class KTOExample:
    prompt: list[dict]
    completion: list[dict]
    label: bool
    origin: str

    def row(self) -> dict:
        return {"prompt": self.prompt, "completion": self.completion, "label": self.label}


@dataclass
class PromptBuilder:
    """The serving prompt for a conversation so far (history ends with the customer's message)."""

    system_prompt: str
    retrieve: Retrieve | None = None
    max_history: int = 20
    cite_sources: bool = True
    room: PromptRoom | None = None  # the served model's context: prompts fitted as serving fits them

    def sources(self, history: Sequence[dict]) -> Sequence:
        last_user = next((m["content"] for m in reversed(history) if m["role"] == "user"), "")
        return self.retrieve(last_user) if self.retrieve and last_user else []

    def prompt(self, history: Sequence[dict], sources: Sequence = ()) -> list[dict]:
        turns = [m for m in history if m["role"] != "system"][-self.max_history:]
        return [{"role": m.role, "content": m.content}
                for m in build_chat_messages(self.system_prompt, turns, sources, self.room)]

    def target(self, reply: str, sources: Sequence) -> str:
        """The reply to learn; with `cite_sources`, one that restates a source cites it as serving expects."""
        if not self.cite_sources or not sources or cited_numbers(reply):
            return reply
        best = max(sources, key=lambda s: token_recall(s.text, reply))
        return f"{reply} [{best.number}]" if token_recall(best.text, reply) >= 0.5 else reply


@dataclass
class Examples:
    sft: list[SFTExample] = field(default_factory=list)
    pairs: list[PreferencePair] = field(default_factory=list)
    kto: list[KTOExample] = field(default_factory=list)
    actions: list = field(default_factory=list)  # ActionExample decisions (alignment/action_examples.py)
    actions_heldout: list = field(default_factory=list)
    action_rows: list = field(default_factory=list)  # every decision row not held out: the call classifier's
    duplicates: int = 0
    dropped_system_messages: int = 0


def redact_messages(messages: Iterable[dict], redactor: Redactor) -> list[dict]:
    return [{"role": m["role"], "content": redactor.redact(m["content"])} for m in messages]


def plain_messages(messages: Iterable[dict]) -> list[dict]:
    """Transcript turns with actions as plain turns (`plain_turn`); a turn that only called an action is marked
    `acted`: it is a decision (learned from `--actions` data), not a reply to learn."""
    out = []
    for m in messages:
        role, content = plain_turn(m["role"], m.get("content") or "", m.get("tool_calls"))
        out.append({"role": m["role"] if m.get("tool_calls") else role, "content": content,
                    "acted": bool(m.get("tool_calls"))})
    return out


def from_transcripts(transcripts: Iterable[Transcript], builder: PromptBuilder, redactor: Redactor,
                     bot_replies: bool = True) -> Examples:
    """SFT examples from human agent replies (and, with `bot_replies`, bot replies in conversations no human
    joined); pairs from bot replies an agent corrected right away."""
    out = Examples()
    for transcript in transcripts:
        plain = plain_messages(transcript.messages)
        messages = redact_messages(plain, redactor)
        out.dropped_system_messages += sum(m["role"] == "system" for m in messages)
        human_involved = any(m["role"] == "agent" for m in messages)
        for index, message in enumerate(messages):
            if message["role"] not in ("assistant", "agent") or plain[index]["acted"]:
                continue
            history = [m for m in messages[:index] if m["role"] != "system"]
            while history and history[-1]["role"] == "assistant":  # the bot reply this agent reply replaces
                history.pop()
            if not history or history[-1]["role"] != "user":
                continue
            sources = builder.sources(history)
            prompt = builder.prompt(history, sources)
            following = messages[index + 1] if index + 1 < len(messages) else None
            if message["role"] == "assistant" and following is not None and following["role"] == "agent":
                out.pairs.append(PreferencePair(
                    prompt, [{"role": "assistant", "content": builder.target(following["content"], sources)}],
                    [{"role": "assistant", "content": message["content"]}], f"transcript {transcript.id}"))
                continue
            if message["role"] == "assistant" and (human_involved or not bot_replies):
                continue  # the bot's side of a conversation a human had to join is not a target
            completion = [{"role": "assistant", "content": builder.target(message["content"], sources)}]
            ids = tuple(s.source for s in sources)
            out.sft.append(SFTExample(prompt, completion, transcript.id, ids))
    return out


def from_preferences(preferences: Iterable[Preference], builder: PromptBuilder, redactor: Redactor) -> list[
        PreferencePair]:
    """Preference files: a prompt without a system message gets the serving one (and passages)."""
    pairs = []
    for pref in preferences:
        prompt = redact_messages(pref.prompt, redactor)
        if prompt[0]["role"] != "system":
            prompt = builder.prompt(prompt, builder.sources(prompt))
        pairs.append(PreferencePair(prompt, redact_messages(pref.chosen, redactor),
                                    redact_messages(pref.rejected, redactor), pref.where))
    return pairs


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def deduplicate(examples: Examples) -> Examples:
    """Drop repeated examples (same prompt and target); the count goes into the summary."""
    seen: set[str] = set()

    def unique(items, key):
        kept = []
        for item in items:
            k = key(item)
            if k in seen:
                examples.duplicates += 1
                continue
            seen.add(k)
            kept.append(item)
        return kept

    examples.sft = unique(examples.sft, lambda e: _key("sft", e.prompt, e.completion))
    examples.pairs = unique(examples.pairs, lambda p: _key("pair", p.prompt, p.chosen, p.rejected))
    examples.kto = unique(examples.kto, lambda k: _key("kto", k.prompt, k.completion, k.label))
    return examples


def split_heldout(sft: list[SFTExample], fraction: float, cap: int, seed: int) -> tuple[
        list[SFTExample], list[SFTExample]]:
    """(train, held-out) by whole conversations, stable across runs for the same data and seed."""
    if fraction <= 0 or cap <= 0:
        return sft, []
    groups = sorted({e.group for e in sft}, key=lambda g: _key(seed, g))
    wanted = max(1, round(len(groups) * fraction)) if len(groups) > 1 else 0
    heldout_groups: set[str] = set()
    count = 0
    for group in groups[:wanted]:
        size = sum(e.group == group for e in sft)
        if count + size > cap and heldout_groups:
            break
        heldout_groups.add(group)
        count += size
    train = [e for e in sft if e.group not in heldout_groups]
    heldout = [e for e in sft if e.group in heldout_groups]
    return train, heldout


def mix_replay(train: list[SFTExample], replay: list[SFTExample], fraction: float, seed: int) -> list[SFTExample]:
    """Add general-chat examples (fraction x domain examples) so the model keeps its general skills."""
    if not replay or fraction <= 0:
        return train
    wanted = min(len(replay), round(len(train) * fraction))
    return train + random.Random(seed).sample(replay, wanted)


def data_hash(examples: Examples) -> str:
    """Identifies the training data of a version (same data -> same hash)."""
    rows = [e.row() for e in examples.sft] + [p.row() for p in examples.pairs] + [k.row() for k in examples.kto]
    return _key(rows)[:16]
