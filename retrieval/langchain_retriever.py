"""LangChain integration: a `BaseRetriever` over our knowledge base, for users' own LangChain apps."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class KnowledgeBaseRetriever(BaseRetriever):
    """Hybrid search over a `KnowledgeBase`; each LangChain document carries its source and scores.

    >>> retriever = KnowledgeBaseRetriever(knowledge_base=KnowledgeBase(folder), k=4)
    >>> retriever.invoke("how long do refunds take")
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_base: Any
    k: int = 4
    min_relevance: float = 0.0  # hits below it are left out

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        documents = []
        for hit in self.knowledge_base.search(query, self.k):
            if hit.relevance < self.min_relevance:
                continue
            p = hit.passage
            documents.append(Document(page_content=p.text, id=p.id, metadata={
                "title": p.title, "source": p.source, "section": p.section, "url": p.url, "kind": p.kind,
                "relevance": hit.relevance, "score": hit.score}))
        return documents
