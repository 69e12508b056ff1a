"""Every command's errors go to stderr with exit status 2, and `--json` output is JSON only (in-process)."""

from __future__ import annotations

import json

import pytest

from assistant.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./assistant.yaml of a developer's
    return ["--home", str(tmp_path / "home")]


@pytest.mark.parametrize("command", [
    ["ingest", "no/such/folder", "--json"],
    ["search", "refunds", "--json"],  # an empty knowledge base
    ["eval", "retrieval", "no/such/beir", "--json"],
    ["eval", "answers", "no-such-questions.jsonl", "--corpus", "no-corpus.jsonl", "--json"],
    ["align"],  # nothing to train on
    ["align", "--transcripts", "missing.jsonl", "--set", "not-a-pair"],
    ["sentiment", "train", "--train", "missing.jsonl"],
    ["monitor", "ingest", "missing.csv"],
    ["models", "promote", "v9"],
    ["config", "show", "--port", "0"],
    ["bench", "load", "--customers", "0"],
])
def test_errors_go_to_stderr_with_status_2(command, home, capsys):
    status = main([*command, *home])
    captured = capsys.readouterr()
    assert status == 2
    assert "error" in captured.err.lower() and captured.out.strip() == ""


def test_json_output_is_json_only(home, tmp_path, capsys):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nRefunds reach your card within five business days.\n")
    (docs / "broken.pdf").write_bytes(b"not a pdf")  # skipped with its reason: still JSON only on stdout
    assert main(["ingest", str(docs), "--json", *home]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_added"] == 1 and len(report["skipped"]) == 1

    assert main(["search", "how long do refunds take", "--json", *home]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["title"] == "Refunds"

    beir = tmp_path / "beir"
    beir.mkdir()
    (beir / "corpus.jsonl").write_text(
        '{"_id": "d1", "text": "Refunds reach your card within five business days."}\n'
        '{"_id": "d2", "text": "Parcels to Canada take eight business days."}\n')
    (beir / "queries.jsonl").write_text('{"_id": "q1", "text": "when do I get my refund"}\n')
    (beir / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    assert main(["eval", "retrieval", str(beir), "--json", *home]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["recall@5"] == 1.0
