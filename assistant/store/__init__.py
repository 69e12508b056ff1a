"""The store: SQLAlchemy over SQLite (default, WAL) or PostgreSQL, migrated with Alembic, as one repository per
concept: `store.conversations`, `store.handoffs`, `store.operators`, `store.keys`, `store.sentiment`,
`store.privacy`, `store.actions`, `store.curated`, `store.topics`, `store.catalog`, `store.interactions`,
`store.coordination` (leases and shared rate limits), `store.registries` (registry records on a shared home)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from sqlalchemy.orm import Session

from assistant.store.actions import ActionRepository
from assistant.store.catalog import CatalogRepository, InteractionRepository
from assistant.store.conversations import ConversationRepository
from assistant.store.coordination import CoordinationRepository
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
    SharedHomeError,
    TopicError,
)
from assistant.store.handoffs import HandoffRepository
from assistant.store.keys import KeyRepository
from assistant.store.operators import OperatorRepository
from assistant.store.registries import RegistryRepository
from assistant.store.sentiment import SentimentRepository
from assistant.store.shared_home import attach_database, check_shared_home
from assistant.store.topics import TopicRepository

__all__ = ["ActionStateError", "ConversationNotFoundError", "CuratedAnswerError", "HandoffError", "KeyProblem",
           "MessageNotFoundError", "OperatorError", "SharedHomeError", "Store", "TopicError", "open_store"]


class Store:
    """The repositories on one database URL. With `home`: the home folder replicas may share, checked to record
    the same database (store/shared_home.py) before anything is written."""

    def __init__(self, url: str, home: Path | None = None):
        self.database = Database(url, before_migrating=None if home is None else partial(check_shared_home, home))
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
        self.coordination = CoordinationRepository(self.database)
        self.registries = RegistryRepository(self.database)
        if home is not None:
            attach_database(home, self.database)  # the home's registries keep their records here (PostgreSQL)

    @property
    def engine(self):
        return self.database.engine

    def session(self) -> Session:
        return self.database.session()

    def close(self) -> None:
        self.database.close()


def open_store(settings) -> Store:
    """The store `settings` (assistant's `Settings`) name, on their home folder."""
    return Store(settings.effective_database_url, home=settings.home_dir)
