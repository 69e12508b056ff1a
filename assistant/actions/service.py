"""Actions in a conversation: the model decides (constrained to the declared actions), a read runs at once, a write
is confirmed by the customer and, where the actions file says so, approved by an operator; every step is audited
in `store.actions` and what the customer reads comes from the action's reply template or the service's own words.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from assistant.actions.call_classifier import CallClassifier, call_classifier_of
from assistant.actions.call_reader import CallReader, call_reader_of
from assistant.actions.decision import ActionCall, InvalidDecision, decide
from assistant.actions.execution import ActionOutcome, ActionRefused, ActionRunner
from assistant.actions.spec import ActionCatalog, ActionSpec
from assistant.engines.base import ChatMessage, GenerationParams
from assistant.prompt import CJK
from assistant.redaction import Redactor
from assistant.store import ActionStateError, Store
from assistant.store.records import ActionRunRecord
from assistant.store.statuses import ActionStatus

YES = ("yes", "yeah", "yep", "sure", "ok", "okay", "go ahead", "please do", "do it", "confirm", "correct", "right",
       "是", "好", "可以", "确认", "对", "行")
NO = ("no", "nope", "don't", "do not", "cancel", "stop", "wait", "not", "不", "别", "取消", "算了")


def confirmation(text: str) -> bool | None:
    """True for a short yes, False for a no, None when the customer has moved on to something else."""
    words = re.sub(r"[^\w\s'\u3400-\u9fff]", " ", text.casefold()).split()
    joined = " ".join(words)
    said = lambda phrases: any(re.search(rf"(^|\s){re.escape(p)}($|\s)", joined) or  # noqa: E731
                               (CJK.search(p) and p in joined) for p in phrases)
    if said(NO):
        return False
    if said(YES) and len(words) <= 8:
        return True
    return None


@dataclass(frozen=True)
class ActionReply:
    """What the customer reads this turn, and the audited run behind it."""

    text: str
    run: ActionRunRecord | None


def _arguments_text(arguments: Mapping) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in arguments.items())


class ActionService:
    def __init__(self, catalog: ActionCatalog, store: Store, runner: ActionRunner | None = None):
        self.catalog = catalog
        self.store = store
        self.runner = runner or ActionRunner(catalog)
        self.tools = catalog.tools()  # what the model is offered, the same every turn
        self.redactor = Redactor()
        # the unredacted arguments of runs awaiting the customer or an operator, in memory only (the store keeps
        # the redacted ones)
        self._calls: dict[int, ActionCall] = {}
        self.classifier: CallClassifier | None = None  # the serving model's, when it brought one
        self.reader: CallReader | None = None  # likewise: it fills the calls the classifier makes

    def use_model(self, model) -> None:
        """Decide with the call classifier and call reader saved beside the model now serving (a `ResolvedModel`;
        without them, or for an external server, the model decides alone)."""
        self.classifier = call_classifier_of(model)
        self.reader = call_reader_of(model) if self.classifier is not None else None

    def _audited(self, arguments: Mapping) -> dict:
        return {k: self.redactor.redact(v) if isinstance(v, str) else v for k, v in arguments.items()}

    async def turn(self, conversation_id: str, turns: Sequence[ChatMessage], identity: Mapping[str, str] | None,
                   engine, params: GenerationParams) -> ActionReply | None:
        """Handle the customer's last turn if it answers a pending confirmation or calls for an action; None: the
        assistant answers in words as usual."""
        chinese = bool(turns and CJK.search(turns[-1].content))
        pending = await asyncio.to_thread(self.store.actions.awaiting_confirmation, conversation_id)
        if pending is not None:
            said = confirmation(turns[-1].content)
            if said is not None:
                return await self._confirmed(pending, said, identity, chinese)
            await asyncio.to_thread(self.store.actions.advance, pending.id, [ActionStatus.AWAITING_CONFIRMATION],
                                    ActionStatus.CANCELLED, reason="the customer moved on")
        try:
            call = await decide(engine, self.tools, turns, params, classifier=self.classifier, copy_values=True,
                                today=datetime.now(UTC).date(), reader=self.reader)
        except InvalidDecision:  # cut short or otherwise unusable: answer in words rather than guess
            return None
        if call is None:
            return None
        spec = self.catalog.get(call.name)
        if spec.kind == "read":
            return await self._run_now(conversation_id, spec, call, identity)
        run = await asyncio.to_thread(self.store.actions.propose, conversation_id, spec.name, spec.kind,
                                      self._audited(call.arguments), ActionStatus.AWAITING_CONFIRMATION)
        ask = (f"我将为您执行：{spec.description}（{_arguments_text(call.arguments)}）。确认吗？请回复“是”或“否”。"
               if chinese else f"I can {spec.description[0].lower()}{spec.description[1:]} "
                               f"({_arguments_text(call.arguments)}). Shall I go ahead? Please answer yes or no.")
        self._calls[run.id] = call
        return ActionReply(ask, run)

    async def _confirmed(self, run: ActionRunRecord, yes: bool, identity, chinese: bool) -> ActionReply:
        spec = self.catalog.get(run.action)
        call = self._calls.get(run.id)
        if not yes or spec is None or call is None:
            await asyncio.to_thread(self.store.actions.advance, run.id, [ActionStatus.AWAITING_CONFIRMATION],
                                    ActionStatus.CANCELLED,
                                    reason="the customer said no" if not yes else "no longer available")
            self._calls.pop(run.id, None)
            return ActionReply("好的，我不会执行这个操作。" if chinese else "All right, I won't do that.", None)
        if spec.approval:
            queued = await asyncio.to_thread(self.store.actions.advance, run.id,
                                             [ActionStatus.AWAITING_CONFIRMATION], ActionStatus.AWAITING_APPROVAL,
                                             confirmed_by="customer")
            return ActionReply("谢谢，我已将请求转给同事审批，结果会显示在这里。" if chinese else
                               "Thank you. A colleague needs to approve this; you will see the result here.", queued)
        started = await asyncio.to_thread(self.store.actions.advance, run.id, [ActionStatus.AWAITING_CONFIRMATION],
                                          ActionStatus.RUNNING, confirmed_by="customer")
        return await self._execute(started, spec, call, identity)

    async def _run_now(self, conversation_id: str, spec: ActionSpec, call: ActionCall,
                       identity) -> ActionReply:
        run = await asyncio.to_thread(self.store.actions.propose, conversation_id, spec.name, spec.kind,
                                      self._audited(call.arguments), ActionStatus.RUNNING)
        return await self._execute(run, spec, call, identity)

    async def _execute(self, run: ActionRunRecord, spec: ActionSpec, call: ActionCall, identity) -> ActionReply:
        """Make the call of a run already claimed as RUNNING (so it is made once) and record how it went."""
        self._calls.pop(run.id, None)
        try:
            outcome = await self.runner.run(call, identity, idempotency_key=run.idempotency_key)
        except ActionRefused as refused:
            outcome = ActionOutcome(False, str(refused))
        done = await asyncio.to_thread(
            self.store.actions.advance, run.id, [ActionStatus.RUNNING],
            ActionStatus.SUCCEEDED if outcome.ok else ActionStatus.FAILED, http_status=outcome.http_status,
            latency_ms=round(outcome.latency_ms, 2), response_summary=outcome.summary or None,
            reason=None if outcome.ok else outcome.message)
        if outcome.ok and spec.records is not None:
            await asyncio.to_thread(self._record_interaction, run, spec.records, call, identity)
        return ActionReply(outcome.message, done)

    def _record_interaction(self, run: ActionRunRecord, records: tuple[str, str], call: ActionCall,
                            identity) -> None:
        """A purchase (or cart, view) made through an action: the customer's history for recommendations."""
        from assistant.recommend.service import customer_key

        kind, item = records
        self.store.interactions.record(customer_key(run.conversation_id, identity), [str(call.arguments[item])],
                                       kind, run.conversation_id)

    async def approve(self, run_id: int, operator: str, identity: Mapping[str, str] | None) -> ActionReply:
        """An operator approves a queued run: it is made now (once, even if two operators approve together)."""
        run = await asyncio.to_thread(self.store.actions.advance, run_id, [ActionStatus.AWAITING_APPROVAL],
                                      ActionStatus.RUNNING, approved_by=operator)
        call = self._calls.get(run_id)
        spec = self.catalog.get(run.action)
        if call is None and self._audited(run.arguments) == run.arguments:
            call = ActionCall(run.action, run.arguments)  # nothing was redacted: the stored arguments are the call
        if spec is None or call is None:
            why = (f"action {run.action!r} is no longer declared" if spec is None else
                   "its details were redacted in the store and the assistant has restarted since")
            await asyncio.to_thread(self.store.actions.advance, run_id, [ActionStatus.RUNNING],
                                    ActionStatus.FAILED, reason=f"could not run: {why}; ask the customer again")
            raise ActionStateError(f"action run {run_id} could not run: {why}")
        return await self._execute(run, spec, call, identity)

    async def reject(self, run_id: int, operator: str, reason: str) -> ActionReply:
        """An operator says no; the reason is what the customer reads."""
        run = await asyncio.to_thread(self.store.actions.advance, run_id, [ActionStatus.AWAITING_APPROVAL],
                                      ActionStatus.REJECTED, approved_by=operator, reason=reason)
        self._calls.pop(run_id, None)
        return ActionReply(f"A colleague could not approve this request: {reason}", run)
