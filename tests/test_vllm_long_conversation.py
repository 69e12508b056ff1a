"""A long conversation on the default model with real vLLM (2,048-token context): 40 turns of long customer messages,
grounded in the longest passages of a real bank FAQ, each one answered; no prompt is refused for its length."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from assistant.engines.vllm_process import vllm_installed

BANK_FAQ = Path(__file__).resolve().parents[2] / "shared" / "data" / "bank_faq_retrieval_en"
pytestmark = [pytest.mark.vllm, pytest.mark.skipif(not vllm_installed(), reason="vLLM is not installed"),
              pytest.mark.skipif(not BANK_FAQ.is_dir(), reason="../shared/data/bank_faq_retrieval_en is missing")]
STORIES = [
    "I have been a customer of your bank for eleven years and I have never had a problem like this before. ",
    "Last Tuesday I was at the supermarket, my card was declined twice, and the queue behind me was long. ",
    "My daughter is studying abroad and relies on the transfers I make each month for her rent and food. ",
    "I called the hotline twice already and each time I waited more than twenty minutes without an answer. ",
]


def longest_passages_and_their_questions(count: int) -> tuple[list[dict], list[str]]:
    passages = [json.loads(line) for line in (BANK_FAQ / "corpus.jsonl").open(encoding="utf-8")]
    longest = sorted(passages, key=lambda p: len(p["text"]), reverse=True)[:count]
    wanted = {p["_id"] for p in longest}
    with (BANK_FAQ / "qrels.tsv").open(encoding="utf-8") as handle:
        asked = {row["query-id"] for row in csv.DictReader(handle, delimiter="\t") if row["corpus-id"] in wanted}
    questions = [json.loads(line)["text"] for line in (BANK_FAQ / "queries.jsonl").open(encoding="utf-8")
                 if json.loads(line)["_id"] in asked]
    return longest, questions


def test_forty_long_turns_are_each_answered(tmp_path, default_model_dir, shared_vllm_url):
    from assistant.api.app import create_app
    from assistant.api.background import BackgroundServer
    from assistant.config import load_settings
    from assistant.runtime import build_service
    from assistant.store.schema import Message

    passages, questions = longest_passages_and_their_questions(40)
    docs = tmp_path / "faq"
    docs.mkdir()
    for passage in passages:
        (docs / f"{passage['_id']}.md").write_text(f"# Bank FAQ {passage['_id']}\n\n{passage['text']}\n")
    loaded = load_settings(environ={}, flags={
        # the session's vLLM on the default model, its prompts fitted with the model's own tokenizer and template
        # (`llm_tokenizer`; a conservative estimate would leave the context part empty)
        "home": str(tmp_path / "home"), "llm_url": shared_vllm_url, "llm_tokenizer": str(default_model_dir),
        "generation.max_new_tokens": 24, "generation.temperature": 0.0, "auth.required": False,
        "retrieval.sources": [str(docs)], "retrieval.top_k": 6, "retrieval.min_relevance": 0.0,
        "answers.style": "generative",  # the model writes every answer: its prompt is what is tested
        "sentiment.enabled": False,  # the stories are unhappy: the sentiment rules would hand the chat to a human
    })
    service = build_service(loaded)
    with BackgroundServer(create_app(service, mount_views=False)) as url:
        conversation = httpx.post(f"{url}/api/conversations", json={}).json()["id"]
        for turn in range(40):
            story = "".join(STORIES[(turn + i) % len(STORIES)] for i in range(12))  # ~1,200 characters
            text = f"{story}{questions[turn % len(questions)]}?"
            reply = httpx.post(f"{url}/api/conversations/{conversation}/messages", timeout=300,
                               json={"content": text, "stream": False})
            assert reply.status_code == 200 and reply.json()["status"] == "complete", (turn, reply.text)
            assert reply.json()["answer"].strip()
    answers = [m for m in service.store.conversations.messages(conversation) if m.role == "assistant"]
    assert len(answers) == 40 and all(m.status == "complete" for m in answers)
    with service.store.session() as session:
        used = session.scalars(select(Message.prompt_tokens).where(Message.conversation_id == conversation,
                                                                   Message.role == "assistant")).all()
    assert max(used) + 24 <= 2048 and max(used) > 1500, used  # the context was filled, never overfilled
