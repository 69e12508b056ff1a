"""The RAG chain composed with LangChain over any OpenAI-compatible endpoint (ours, vLLM, ...).

It uses the same grounding rules and source fences as the served assistant (assistant/prompt.py):

    chain = build_rag_chain(KnowledgeBaseRetriever(knowledge_base=kb), chat_model("http://127.0.0.1:8000/v1"))
    chain.invoke("How long do refunds take?")  # {"answer": "... [1]", "sources": [{"number": 1, ...}]}
"""

from __future__ import annotations

from langchain_core.documents import Document
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough

from assistant.grounding import Source
from assistant.prompt import citation_footer, grounded_system


def chat_model(base_url: str, model: str | None = None, api_key: str = "unused", **kwargs) -> BaseChatModel:
    """A LangChain chat model on an OpenAI-compatible server (ours needs an `sk_` key); our own API is asked not to
    ground twice."""
    import httpx
    from langchain_openai import ChatOpenAI

    if model is None:
        listed = httpx.get(f"{base_url.rstrip('/')}/models", timeout=10,
                           headers={"Authorization": f"Bearer {api_key}"})
        listed.raise_for_status()
        model = listed.json()["data"][0]["id"]
    return ChatOpenAI(base_url=base_url, model=model, api_key=api_key, extra_body={"grounding": False}, **kwargs)


def _sources(documents: list[Document]) -> list[Source]:
    return [Source(i, d.metadata.get("title") or "", d.metadata.get("source") or "", d.metadata.get("section"),
                   d.metadata.get("url"), d.page_content, float(d.metadata.get("relevance", 0.0)))
            for i, d in enumerate(documents, 1)]


def build_rag_chain(retriever: BaseRetriever, llm: BaseChatModel,
                    system_prompt: str = "You are a customer-support assistant.") -> Runnable:
    """question -> {"answer": cited text, "sources": [source dicts]}."""

    def messages(inputs: dict) -> list:
        system = grounded_system(system_prompt, inputs["sources"], always=True)
        return [SystemMessage(system), HumanMessage(inputs["question"])]

    def finish(inputs: dict) -> dict:
        answer = inputs["answer"] + citation_footer(inputs["answer"], inputs["sources"])
        return {"answer": answer, "sources": [s.as_dict() for s in inputs["sources"]]}

    retrieve = RunnableParallel(sources=retriever | RunnableLambda(_sources), question=RunnablePassthrough())
    generate = RunnablePassthrough.assign(answer=RunnableLambda(messages) | llm | StrOutputParser())
    return retrieve | generate | RunnableLambda(finish)
