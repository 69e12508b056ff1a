"""`assistant align retrieval` end to end on a tiny encoder built in the test (seconds): pairs read, a held-out split,
the encoder fine-tuned, judged against the one in use, registered with its metrics and promoted only when it finds
more; rolled back with `assistant models rollback --retrieval`; bad input registers nothing."""

from __future__ import annotations

import itertools

import pytest

from alignment.retrieval_align import RetrievalSources, align_retrieval
from alignment.retrieval_pairs import PairError
from alignment.retrieval_training import EncoderTrainingConfig
from assistant.cli import main
from assistant.registry import retrieval_registry
from tests.tiny_encoder import build_tiny_encoder

TOPICS = [("alpha", "beta", "gamma"), ("delta", "epsilon", "zeta"), ("eta", "theta", "iota"),
          ("kappa", "lambda", "mu"), ("nu", "xi", "omicron"), ("pi", "rho", "sigma"), ("tau", "upsilon", "phi"),
          ("chi", "psi", "omega")]
ANSWERS = ["red", "green", "blue", "black", "white", "pink", "brown", "grey"]


@pytest.fixture
def paraphrases(tmp_path):
    """Six ways to ask each of eight questions; the answers share no word with them (only learning links them)."""
    rows = [f"{' '.join(words)},{answer} {answer}" for topic, answer in zip(TOPICS, ANSWERS, strict=True)
            for words in itertools.permutations(topic, 2)]
    path = tmp_path / "pairs.csv"
    path.write_text("question,passage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    encoder = build_tiny_encoder(tmp_path / "enc", extra_words=(*itertools.chain(*TOPICS), *ANSWERS))
    return path, encoder


def test_a_candidate_that_finds_more_is_registered_and_promoted(tmp_path, paraphrases):
    pairs, encoder = paraphrases
    home = tmp_path / "home"
    report = align_retrieval(RetrievalSources(pairs=[pairs]), home, str(encoder),
                             EncoderTrainingConfig(epochs=20, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0))
    before, after = report.metrics["current"], report.metrics["candidate"]
    assert report.data["held-out pairs"] == 20 and report.data["train pairs"] == 28
    assert after["mrr@10"] > before["mrr@10"] and report.promoted, report.decision
    registry = retrieval_registry(home)
    assert registry.active().id == report.version == "v1"
    assert registry.active().metrics["candidate"] == after and (registry.active().model_dir / "modules.json").is_file()
    assert main(["models", "rollback", "--retrieval", "--home", str(home)]) == 0
    assert registry.active() is None  # back to the configured encoder


def test_bad_input_registers_nothing(tmp_path, paraphrases, capsys):
    _, encoder = paraphrases
    home = tmp_path / "home"
    few = tmp_path / "few.csv"
    few.write_text("question,passage\n" + "".join(f"q{i},a{i}\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(PairError, match="5 distinct questions are too few"):
        align_retrieval(RetrievalSources(pairs=[few]), home, str(encoder))
    broken = tmp_path / "broken.csv"
    broken.write_text("question,passage\nhow?,\n", encoding="utf-8")
    assert main(["align", "retrieval", "--pairs", str(broken), "--home", str(home)]) == 2
    assert "broken.csv:2: the passage is empty" in capsys.readouterr().err
    assert retrieval_registry(home).list() == []


def test_a_server_searches_with_the_promoted_encoder(tmp_path, paraphrases):
    """At start, a knowledge base built with the encoder in use is encoded again with the promoted one; its files
    stay as ingested."""
    from assistant.config import load_settings
    from assistant.grounding import Grounder
    from assistant.runtime import served_retrieval
    from retrieval.embeddings import encoder_id

    pairs, encoder = paraphrases
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic, answer in zip(TOPICS, ANSWERS, strict=True):
        (docs / f"{answer}.md").write_text(f"# {answer}\n\n{answer} {answer}: {' '.join(topic)}\n")
    home = tmp_path / "home"
    settings = load_settings(environ={}, flags={"home": str(home), "retrieval.encoder": str(encoder),
                                                "retrieval.sources": [str(docs)]}).settings
    Grounder(served_retrieval(settings), settings.knowledge_dir).prepare(progress=False)  # built with the base
    report = align_retrieval(RetrievalSources(pairs=[pairs]), home, str(encoder),
                             EncoderTrainingConfig(epochs=20, batch_size=8, learning_rate=5e-3, warmup_ratio=0.0))
    assert report.promoted
    promoted = served_retrieval(settings)
    assert promoted.encoder == str(retrieval_registry(home).active().model_dir)
    grounder = Grounder(promoted, settings.knowledge_dir)
    grounder.prepare(progress=False)
    kb = grounder.knowledge_base
    assert kb.manifest["encoder_id"] == encoder_id(promoted.encoder) and len(kb.manifest["files"]) == len(ANSWERS)
    assert kb.search("alpha beta", 3)  # it searches with the promoted encoder, no mismatch
