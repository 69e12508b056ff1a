"""The store: SQLAlchemy over SQLite (default, WAL) or PostgreSQL, migrated with Alembic, as one repository per
concept: `store.conversations`, `store.handoffs`, `store.operators`, `store.keys`, `store.sentiment`,
`store.privacy`, `store.actions`, `store.curated`, `store.topics`, `store.catalog`, `store.interactions`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from assistant.store.actions import ActionRepository
from assistant.store.catalog import CatalogRepository, InteractionRepository
from assistant.store.conversations import ConversationRepository
from assistant.store.curated import CuratedAnswerRepository
from assistant.store.database import Database
from assistant.store.erasure import PrivacyRepository
from assistant.store.errors import (
    ActionStateError,
    ConversationNotFoundError,
    CuratedAnswerError,
    HandoffError,
    KeyProblem,
    MessageNotFoundError,
    OperatorError,
    TopicError,
)
from assistant.store.handoffs import HandoffRepository
from assistant.store.keys import KeyRepository
from assistant.store.operators import OperatorRepository
from assistant.store.sentiment import SentimentRepository
from assistant.store.topics import TopicRepository

__all__ = ["ActionStateError", "ConversationNotFoundError", "CuratedAnswerError", "HandoffError", "KeyProblem",
           "MessageNotFoundError", "OperatorError", "Store", "TopicError"]


class Store:
    """The repositories on one database URL."""

    def __init__(self, url: str):
        self.database = Database(url)
        self.conversations = ConversationRepository(self.database)
        self.handoffs = HandoffRepository(self.database)
        self.operators = OperatorRepository(self.database)
        self.keys = KeyRepository(self.database)
        self.sentiment = SentimentRepository(self.database)
        self.privacy = PrivacyRepository(self.database)
        self.actions = ActionRepository(self.database)
        self.curated = CuratedAnswerRepository(self.database)
        self.topics = TopicRepository(self.database)
        self.catalog = CatalogRepository(self.database)
        self.interactions = InteractionRepository(self.database)

    @property
    def engine(self):
        return self.database.engine

    def session(self) -> Session:
        return self.database.session()

    def close(self) -> None:
        self.database.close()
