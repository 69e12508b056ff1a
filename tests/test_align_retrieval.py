"""`assistant align retrieval` end to end on a tiny encoder built in the test (seconds): pairs read, a held-out split,
the encoder fine-tuned and a reranker trained from its body, judged as served against the retrieval in use,
registered with its metrics and promoted only when it finds more; a running server switches to it while searches go
on, and back on `assistant models rollback --retrieval`; `assistant eval retrieval --retriever` judges any version;
bad input registers nothing."""

from __future__ import annotations

import itertools
import json
import shutil
import threading

import pytest

from alignment.retrieval_align import RetrievalSources, align_retrieval
from alignment.retrieval_pairs import PairError
from alignment.retrieval_training import EncoderTrainingConfig, RerankerTrainingConfig
from assistant.cli import main
from assistant.registry import retrieval_registry
from retrieval.config import IndexSettings
from tests.tiny_encoder import build_tiny_encoder

TOPICS = [("alpha", "beta", "gamma"), ("delta", "epsilon", "zeta"), ("eta", "theta", "iota"),
          ("kappa", "lambda", "mu"), ("nu", "xi", "omicron"), ("pi", "rho", "sigma"), ("tau", "upsilon", "phi"),
          ("chi", "psi", "omega")]
ANSWERS = ["red", "green", "blue", "black", "white", "pink", "brown", "grey"]
FAST = {"batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0.0}


@pytest.fixture(scope="module")
def paraphrases(tmp_path_factory):
    """Six ways to ask each of eight questions; the answers share no word with them (only learning links them)."""
    folder = tmp_path_factory.mktemp("paraphrases")
    rows = [f"{' '.join(words)},{answer} {answer}" for topic, answer in zip(TOPICS, ANSWERS, strict=True)
            for words in itertools.permutations(topic, 2)]
    path = folder / "pairs.csv"
    path.write_text("question,passage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    encoder = build_tiny_encoder(folder / "enc", extra_words=(*itertools.chain(*TOPICS), *ANSWERS),
                                 initializer_range=0.2, hidden_size=64, dropout=0.0)  # a reranker can learn too
    return path, encoder


@pytest.fixture(scope="module")
def aligned(tmp_path_factory, paraphrases):
    """One alignment run, shared: (home, report, configured encoder)."""
    pairs, encoder = paraphrases
    home = tmp_path_factory.mktemp("aligned") / "home"
    report = align_retrieval(RetrievalSources(pairs=[pairs]), home, IndexSettings(encoder=str(encoder)),
                             EncoderTrainingConfig(epochs=20, **FAST),
                             RerankerTrainingConfig(epochs=20, batch_size=8, learning_rate=1e-3, warmup_ratio=0.0))
    return home, report, encoder


def test_a_candidate_that_finds_more_is_registered_and_promoted(aligned):
    home, report, _ = aligned
    before, after = report.metrics["current"], report.metrics["candidate"]
    assert report.data["held-out pairs"] == 20 and report.data["train pairs"] == 28
    assert after["mrr@10"] > before["mrr@10"] and report.promoted, report.decision
    version = retrieval_registry(home).get(report.version)
    assert version.id == "v1" and version.metrics["candidate"] == after
    assert (version.model_dir / "modules.json").is_file()
    # a tiny reranker does not generalise to unseen word pairs: judged on the held-out questions, it is left out
    alone, reranked = report.metrics["candidate encoder"], report.metrics["candidate reranked"]
    assert reranked["mrr@10"] < alone["mrr@10"] == after["mrr@10"], report.metrics
    assert report.data["reranker"].startswith("not kept") and not (version.model_dir / "reranker").exists()
    # the fusion weights chosen with the tuned encoder on validation questions travel with the version
    from assistant.config import load_settings
    from assistant.runtime import served_retrieval

    weights = json.loads((version.model_dir / "search.json").read_text())
    assert report.data["fusion"] == f"dense {weights['dense_weight']:g}, lexical {weights['lexical_weight']:g}"
    served = served_retrieval(load_settings(environ={}, flags={"home": str(home)}).settings, "v1")
    assert (served.encoder, served.dense_weight, served.lexical_weight) == (
        str(version.model_dir), weights["dense_weight"], weights["lexical_weight"])


def test_eval_retrieval_judges_the_promoted_version_or_the_base(tmp_path, aligned, capsys):
    home, _, encoder = aligned
    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": a, "text": f"{a} {a}"}) + "\n" for a in ANSWERS))
    (beir / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": " ".join(t[1:])}) + "\n"
                                                for i, t in enumerate(TOPICS)))
    (beir / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\t{a}\t1\n"
                                                                           for i, a in enumerate(ANSWERS)))
    config = tmp_path / "assistant.yaml"
    config.write_text(f"retrieval:\n  encoder: {encoder}\n")
    flags = [str(beir), "--home", str(home), "--config", str(config), "--json"]
    scores = {}
    for which in ("current", "base", "v1"):
        assert main(["eval", "retrieval", *flags, "--retriever", which]) == 0
        result = json.loads(capsys.readouterr().out)
        scores[which] = result["mrr@10"]
        assert result["retriever"] == which and (result["encoder"] == str(encoder)) == (which == "base")
    assert scores["current"] == scores["v1"] > scores["base"]
    assert main(["eval", "retrieval", *flags, "--retriever", "v9"]) == 2
    assert "no model version 'v9'" in capsys.readouterr().err


def test_a_running_server_switches_index_while_searches_go_on(tmp_path, aligned, paraphrases):
    """A version with a reranker is promoted: the knowledge base is encoded again into a staging index while the old
    one answers every search; rolled back, it goes back to the version before."""
    from alignment.retrieval_pairs import PairSet, file_pairs, mine_negatives
    from alignment.retrieval_training import fine_tune_reranker
    from assistant.config import load_settings
    from assistant.grounding import Grounder
    from assistant.registry import ModelVersion
    from assistant.runtime import served_retrieval
    from retrieval.embeddings import encoder_id

    aligned_home, _, encoder = aligned
    home = tmp_path / "home"
    shutil.copytree(aligned_home, home)
    registry = retrieval_registry(home)
    with_reranker = tmp_path / "v2"
    shutil.copytree(registry.get("v1").model_dir, with_reranker)
    known = PairSet()
    known.add(file_pairs(paraphrases[0]))
    mine_negatives(known, lambda questions, depth: [[f"{a} {a}" for a in ANSWERS] for _ in questions], per_question=2)
    fine_tune_reranker(encoder, known.positives, known, with_reranker / "reranker", RerankerTrainingConfig(epochs=1))
    registry.promote(registry.register(with_reranker, ModelVersion(id="", parent="v1", base_model="tiny",
                                                                   created_at="", data_hash="", config={})).id)
    docs = tmp_path / "docs"
    docs.mkdir()
    for topic, answer in zip(TOPICS, ANSWERS, strict=True):
        (docs / f"{answer}.md").write_text(f"# {answer}\n\n{answer} {answer}: {' '.join(topic)}\n")
    settings = load_settings(environ={}, flags={"home": str(home), "retrieval.encoder": str(encoder),
                                                "retrieval.sources": [str(docs)]}).settings
    grounder = Grounder(settings.retrieval, settings.knowledge_dir)  # serving the configured encoder
    grounder.prepare(progress=False)
    results, failures, stop = [], [], threading.Event()

    def search_in_a_loop():
        while not stop.is_set():
            try:
                results.append(len(grounder.knowledge_base.search("alpha beta", 3)))
            except Exception as exc:
                failures.append(exc)

    searching = threading.Thread(target=search_in_a_loop)
    searching.start()
    try:
        promoted = served_retrieval(settings)
        grounder.switch_retrieval(promoted)
        kb = grounder.knowledge_base
        assert kb.manifest["encoder_id"] == encoder_id(promoted.encoder) and kb.reranker is not None
        assert len(kb.manifest["files"]) == len(ANSWERS)  # the files stay as ingested
        assert main(["models", "rollback", "--retrieval", "--home", str(home)]) == 0
        grounder.switch_retrieval(served_retrieval(settings))
    finally:
        stop.set()
        searching.join()
    assert not failures and results and min(results) == 3
    assert grounder.knowledge_base.manifest["encoder_id"] == encoder_id(str(registry.get("v1").model_dir))
    assert grounder.knowledge_base.reranker is None  # v1 has none


def test_bad_input_registers_nothing(tmp_path, paraphrases, capsys):
    _, encoder = paraphrases
    home = tmp_path / "home"
    few = tmp_path / "few.csv"
    few.write_text("question,passage\n" + "".join(f"q{i},a{i}\n" for i in range(5)), encoding="utf-8")
    with pytest.raises(PairError, match="5 distinct questions are too few"):
        align_retrieval(RetrievalSources(pairs=[few]), home, IndexSettings(encoder=str(encoder)))
    broken = tmp_path / "broken.csv"
    broken.write_text("question,passage\nhow?,\n", encoding="utf-8")
    assert main(["align", "retrieval", "--pairs", str(broken), "--home", str(home)]) == 2
    assert "broken.csv:2: the passage is empty" in capsys.readouterr().err
    assert retrieval_registry(home).list() == []


def test_a_running_server_follows_a_retrieval_promotion(tmp_path, aligned, make_client, monkeypatch):
    """`assistant models promote --retrieval` while serving: the server searches with the new version, no restart."""
    import time
    from functools import partial

    from assistant.model_swap import follow_retrieval_promotions

    monkeypatch.setattr("assistant.api.app.follow_retrieval_promotions",
                        partial(follow_retrieval_promotions, interval_s=0.2))
    aligned_home, _, encoder = aligned
    home = tmp_path / "served"
    shutil.copytree(aligned_home, home)
    assert main(["models", "rollback", "--retrieval", "--home", str(home)]) == 0  # serving the configured encoder
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "colours.md").write_text("# Colours\n\n" + " ".join(f"{a} {a}." for a in ANSWERS) + "\n")
    client = make_client(**{"home": str(home), "retrieval.enabled": True, "retrieval.encoder": str(encoder),
                            "retrieval.sources": [str(docs)]})
    grounder = client.app.state.service.grounder
    assert grounder.settings.encoder == str(encoder)
    assert main(["models", "promote", "v1", "--retrieval", "--home", str(home)]) == 0
    promoted = str(retrieval_registry(home).get("v1").model_dir)
    deadline = time.monotonic() + 60
    while grounder.settings.encoder != promoted and time.monotonic() < deadline:
        time.sleep(0.2)
    assert grounder.settings.encoder == promoted and grounder.knowledge_base.search("alpha beta", 1)
