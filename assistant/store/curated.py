"""Curated answers: approved answers served before the model, versioned; withdrawn ones are kept for the record."""

from __future__ import annotations

from sqlalchemy import func, select, update

from assistant.store.database import Repository
from assistant.store.errors import CuratedAnswerError
from assistant.store.records import CuratedAnswerRecord
from assistant.store.schema import CuratedAnswer, utcnow

SOURCES = ("manual", "correction", "gap", "import")


class CuratedAnswerRepository(Repository):
    """`store.curated`."""

    def add(self, question: str, answer: str, author: str, source: str = "manual",
            replaces: int | None = None) -> CuratedAnswerRecord:
        """A new curated answer; with `replaces`, the next version of that one (which is withdrawn in the same
        transaction, so exactly one version is served)."""
        question, answer = question.strip(), answer.strip()
        if not question:
            raise CuratedAnswerError("a curated answer needs the question it answers")
        if not answer:
            raise CuratedAnswerError("a curated answer cannot be empty")
        if source not in SOURCES:
            raise CuratedAnswerError(f"source must be one of {', '.join(SOURCES)}, not '{source}'")
        with self.session() as session, session.begin():
            version, previous = 1, None
            if replaces is not None:
                previous = session.get(CuratedAnswer, replaces)
                if previous is None:
                    raise CuratedAnswerError(f"no curated answer {replaces}")
                changed = session.execute(update(CuratedAnswer).where(
                    CuratedAnswer.id == replaces, CuratedAnswer.withdrawn_at.is_(None))
                    .values(withdrawn_at=utcnow(), withdrawn_by=author)).rowcount
                if not changed:
                    raise CuratedAnswerError(f"curated answer {replaces} was withdrawn: edit the version now "
                                             "served, or add a new one")
                version = previous.version + 1
            row = CuratedAnswer(question=question, answer=answer, version=version, previous_id=replaces,
                                source=source, created_by=author)
            session.add(row)
            session.flush()
            return CuratedAnswerRecord.of(row)

    def withdraw(self, answer_id: int, author: str) -> CuratedAnswerRecord:
        with self.session() as session, session.begin():
            changed = session.execute(update(CuratedAnswer).where(
                CuratedAnswer.id == answer_id, CuratedAnswer.withdrawn_at.is_(None))
                .values(withdrawn_at=utcnow(), withdrawn_by=author)).rowcount
            row = session.get(CuratedAnswer, answer_id)
            if row is None:
                raise CuratedAnswerError(f"no curated answer {answer_id}")
            if not changed:
                raise CuratedAnswerError(f"curated answer {answer_id} is already withdrawn")
            session.refresh(row)
            return CuratedAnswerRecord.of(row)

    def get(self, answer_id: int) -> CuratedAnswerRecord:
        with self.session() as session:
            row = session.get(CuratedAnswer, answer_id)
            if row is None:
                raise CuratedAnswerError(f"no curated answer {answer_id}")
            return CuratedAnswerRecord.of(row)

    def listed(self, include_withdrawn: bool = False) -> list[CuratedAnswerRecord]:
        query = select(CuratedAnswer).order_by(CuratedAnswer.id)
        if not include_withdrawn:
            query = query.where(CuratedAnswer.withdrawn_at.is_(None))
        with self.session() as session:
            return [CuratedAnswerRecord.of(row) for row in session.scalars(query)]

    def revision(self) -> tuple[int, int]:
        """Changes whenever the served set does (an answer added, edited or withdrawn): (last id, withdrawn)."""
        with self.session() as session:
            last, withdrawn = session.execute(select(
                func.coalesce(func.max(CuratedAnswer.id), 0),
                func.count(CuratedAnswer.withdrawn_at))).one()
            return int(last), int(withdrawn)

    def count_served(self, answer_id: int) -> None:
        with self.session() as session, session.begin():
            session.execute(update(CuratedAnswer).where(CuratedAnswer.id == answer_id)
                            .values(served=CuratedAnswer.served + 1))
