"""`assistant eval answers`: questions through retrieval + prompt + model, scored against references."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main


@pytest.fixture
def answer_set(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps(d) for d in [
        {"_id": "refunds", "text": "Refunds reach your card within five business days after we receive the return."},
        {"_id": "canada", "text": "Parcels to Canada take eight business days and cost 19 EUR."},
        {"_id": "hours", "text": "The Hamburg store opens Monday to Saturday from ten to seven."},
    ]) + "\n")
    questions = tmp_path / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"question": "How long do refunds take to reach my card?", "answer": "Within five business days.",
         "doc_ids": ["refunds"]},
        {"question": "How many days does shipping to Canada take?", "answer": "Eight business days.",
         "doc_ids": ["canada"]},
        {"question": "What is the boiling point of liquid nitrogen on Jupiter?", "answer": "I don't know.",
         "doc_ids": []},
    ]) + "\n")
    return corpus, questions


def test_eval_answers_reports_quality_citations_and_dont_know(answer_set, tiny_model_dir, tmp_path, capsys):
    corpus, questions = answer_set
    args = ["eval", "answers", str(questions), "--corpus", str(corpus), "--model", str(tiny_model_dir),
            "--engine", "transformers", "--home", str(tmp_path / "home"), "--max-new-tokens", "8", "--json"]
    assert main(args) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["questions"] == 3
    assert metrics["gold_retrieved_rate"] == 1.0  # both judged questions found their document
    assert metrics["dont_know_rate"] >= 0.33  # the off-topic one is answered "I don't know", not guessed
    assert 0 <= metrics["token_f1"] <= 1 and 0 <= metrics["rouge_l"] <= 1
    assert metrics["model"] == tiny_model_dir.name
    # the corpus is indexed once and reused
    assert len(list((tmp_path / "home" / "eval-knowledge").iterdir())) == 1
    assert main(args) == 0
    assert len(list((tmp_path / "home" / "eval-knowledge").iterdir())) == 1


def test_eval_answers_bad_input_is_named(answer_set, tiny_model_dir, tmp_path, capsys):
    corpus, questions = answer_set
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "a", "doc_ids": []}\n{"question": "q2"}\n')
    home = ["--home", str(tmp_path / "home")]
    assert main(["eval", "answers", str(bad), "--corpus", str(corpus), *home]) == 2
    assert f"{bad}:2: 'answer' must be a non-empty string" in capsys.readouterr().err
    # the tiny model: the default one would first be converted from its GGUF (tens of seconds)
    assert main(["eval", "answers", str(questions), "--corpus", str(tmp_path / "missing.jsonl"),
                 "--model", str(tiny_model_dir), *home]) == 2
    assert "missing.jsonl" in capsys.readouterr().err
    assert main(["eval", "answers", str(questions), "--corpus", str(corpus), "--model", "v9", *home]) == 2
    assert "no model version 'v9'" in capsys.readouterr().err


def test_a_beir_folder_is_its_own_question_set(answer_set, tiny_model_dir, tmp_path, capsys):
    """A BEIR folder (queries, qrels, corpus) is evaluated directly: each judged query against its gold passage."""
    corpus, _ = answer_set
    folder = tmp_path / "beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(corpus.read_text())
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "How long do refunds take to reach my card?"}\n'
                                          '{"_id": "q2", "text": "Is shipping to Canada slow?"}\n'
                                          '{"_id": "q3", "text": "A question nobody judged"}\n')
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\trefunds\t1\nq2\tcanada\t1\n")
    from alignment.evaluation import load_answer_file

    rows = load_answer_file(folder)
    assert [r["question"] for r in rows] == ["How long do refunds take to reach my card?",
                                             "Is shipping to Canada slow?"]
    assert rows[0]["answer"].startswith("Refunds reach your card") and rows[0]["doc_ids"] == ["refunds"]
    assert main(["eval", "answers", str(folder), "--model", str(tiny_model_dir), "--engine", "transformers",
                 "--home", str(tmp_path / "home"), "--max-new-tokens", "8", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 2
    assert main(["eval", "answers", str(tmp_path / "beir" / "queries.jsonl"), "--home", str(tmp_path)]) == 2
    assert "queries.jsonl:1: 'question' must be a non-empty string" in capsys.readouterr().err


def test_truth_metrics_on_answerable_and_unanswerable_questions(answer_set, tiny_model_dir, tmp_path, capsys):
    """Facts stated, supported sentences, unsupported numbers, language match, don't-know precision/recall, for
    answers composed from the sources and for answers the model writes (the tiny random model: the check cuts what
    it invents, so what a customer would read stays supported)."""
    corpus, _ = answer_set
    questions = tmp_path / "mixed.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in [
        {"question": "How long do refunds take to reach my card?", "answer": "Within five business days.",
         "doc_ids": ["refunds"], "facts": ["five business days"]},
        {"question": "How many days does shipping to Canada take, and what does it cost?",
         "answer": "Eight business days, 19 EUR.", "doc_ids": ["canada"], "facts": ["19 EUR"]},
        {"question": "What is the boiling point of liquid nitrogen on Jupiter?", "answerable": False},
        {"question": "Who won the football world cup in 1954?", "answerable": False},
    ]) + "\n")
    base = ["eval", "answers", str(questions), "--corpus", str(corpus), "--model", str(tiny_model_dir),
            "--engine", "transformers", "--home", str(tmp_path / "home"), "--max-new-tokens", "16", "--json"]
    assert main(base) == 0
    composed = json.loads(capsys.readouterr().out)
    assert composed["answer_style"] == "grounded" and composed["facts_stated_rate"] == 1.0
    assert composed["supported_sentence_rate"] == 1.0 and composed["unsupported_number_rate"] == 0.0
    assert composed["dont_know_recall"] == 1.0 and composed["dont_know_precision"] == 1.0
    assert composed["answered_rate"] == 1.0 and composed["language_match_rate"] == 1.0
    assert composed["check_ms_p95"] < 1000
    assert main([*base, "--style", "generative"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["answer_style"] == "generative"
    assert written.get("written_supported_rate", 0.0) < 0.5  # the random model writes nothing true (or nothing)
    assert written["supported_sentence_rate"] == 1.0 and written["unsupported_number_rate"] == 0.0
    assert written["facts_stated_rate"] == 1.0  # what it failed to write, the sources said
