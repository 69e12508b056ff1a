"""LangChain: our retriever in a LangChain app, and the RAG chain over our OpenAI-compatible endpoint."""

from langchain_core.documents import Document

from assistant.api.app import create_app
from assistant.api.background import BackgroundServer
from assistant.langchain_rag import build_rag_chain, chat_model
from assistant.runtime import build_service
from retrieval.knowledge_base import KnowledgeBase
from retrieval.langchain_retriever import KnowledgeBaseRetriever


def help_center(tmp_path) -> KnowledgeBase:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five business days.\n")
    (docs / "shipping.md").write_text("# Shipping\n\nParcels to Canada take eight business days.\n")
    kb = KnowledgeBase(tmp_path / "kb")
    kb.ingest([docs], progress=False)
    return kb


def test_retriever_returns_langchain_documents_with_sources(tmp_path):
    kb = help_center(tmp_path)
    retriever = KnowledgeBaseRetriever(knowledge_base=kb, k=2)
    documents = retriever.invoke("when will my refund arrive")
    assert all(isinstance(d, Document) for d in documents)
    assert documents[0].metadata["title"] == "Refunds" and documents[0].metadata["source"] == "docs/refunds.md"
    assert "five business days" in documents[0].page_content
    strict = KnowledgeBaseRetriever(knowledge_base=kb, k=2, min_relevance=0.99)
    assert strict.invoke("pizza recipe") == []


def test_rag_chain_over_our_openai_endpoint(tmp_path, make_settings):
    from tests.fake_engine import FakeEngine

    service = build_service(make_settings(**{"auth.required": True}), make_engine=FakeEngine.build)
    key = service.store.keys.create_api_key("api", "langchain")
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        chain = build_rag_chain(KnowledgeBaseRetriever(knowledge_base=help_center(tmp_path), k=2),
                                chat_model(f"{url}/v1", api_key=key, max_tokens=8, temperature=0))
        result = chain.invoke("How long does shipping to Canada take?")
    assert result["sources"][0]["title"] == "Shipping" and result["sources"][0]["number"] == 1
    assert "[1]" in result["answer"]
