"""Action runs: the audit trail of every action proposed or taken, and the operators' approval queue.

Every step is a compare-and-set on the run's status, so two operators approving at once, or a confirmation that
arrives twice, run the action once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select, update

from assistant.store.database import Repository
from assistant.store.errors import ActionStateError
from assistant.store.lookups import find_conversation
from assistant.store.records import ActionRunRecord
from assistant.store.schema import ActionRun, utcnow
from assistant.store.statuses import ActionStatus


class ActionRepository(Repository):
    """`store.actions`."""

    def propose(self, conversation_id: str, action: str, kind: str, arguments: dict[str, Any],
                status: ActionStatus) -> ActionRunRecord:
        """Record a new run (arguments already redacted); a run of the conversation still waiting for the customer's
        yes is cancelled: they have moved on to this one. A run they confirmed stays in the approval queue."""
        with self.session() as session, session.begin():
            find_conversation(session, conversation_id)
            session.execute(update(ActionRun).where(
                ActionRun.conversation_id == conversation_id,
                ActionRun.status == ActionStatus.AWAITING_CONFIRMATION.value)
                .values(status=ActionStatus.CANCELLED.value, updated_at=utcnow()))
            run = ActionRun(conversation_id=conversation_id, action=action, kind=kind, arguments=arguments,
                            status=status.value)
            session.add(run)
            session.flush()
            return ActionRunRecord.of(run)

    def get(self, run_id: int) -> ActionRunRecord:
        with self.session() as session:
            run = session.get(ActionRun, run_id)
            if run is None:
                raise ActionStateError(f"no action run {run_id}")
            return ActionRunRecord.of(run)

    def advance(self, run_id: int, expected: Iterable[ActionStatus], to: ActionStatus,
                **fields: Any) -> ActionRunRecord:
        """Move the run from one of the `expected` states to `to` (with `fields`), atomically; `ActionStateError`
        when it is no longer in one of them (someone else took the step first)."""
        wanted = [s.value for s in expected]
        with self.session() as session, session.begin():
            changed = session.execute(update(ActionRun).where(ActionRun.id == run_id, ActionRun.status.in_(wanted))
                                      .values(status=to.value, updated_at=utcnow(), **fields)).rowcount
            run = session.get(ActionRun, run_id)
            if run is None:
                raise ActionStateError(f"no action run {run_id}")
            if not changed:
                raise ActionStateError(f"action run {run_id} is {run.status}, not {' or '.join(wanted)}")
            session.refresh(run)
            return ActionRunRecord.of(run)

    def awaiting_confirmation(self, conversation_id: str) -> ActionRunRecord | None:
        """The conversation's run waiting for the customer's yes or no, if any (there is at most one)."""
        with self.session() as session:
            run = session.scalars(select(ActionRun).where(
                ActionRun.conversation_id == conversation_id,
                ActionRun.status == ActionStatus.AWAITING_CONFIRMATION.value)
                .order_by(ActionRun.id.desc()).limit(1)).first()
            return ActionRunRecord.of(run) if run else None

    def approval_queue(self, limit: int = 100) -> list[ActionRunRecord]:
        """Runs waiting for an operator, oldest first."""
        with self.session() as session:
            rows = session.scalars(select(ActionRun).where(ActionRun.status == ActionStatus.AWAITING_APPROVAL.value)
                                   .order_by(ActionRun.created_at, ActionRun.id).limit(limit))
            return [ActionRunRecord.of(r) for r in rows]

    def for_conversation(self, conversation_id: str) -> list[ActionRunRecord]:
        with self.session() as session:
            rows = session.scalars(select(ActionRun).where(ActionRun.conversation_id == conversation_id)
                                   .order_by(ActionRun.id))
            return [ActionRunRecord.of(r) for r in rows]
