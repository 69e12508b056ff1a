"""Sentiment scoring, labelled-file validation, classifier training (tiny encoder built here), eval and align CLIs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.sentiment.data import LabelledSet, SentimentDataError, read_labelled

GOOD = ["love", "great", "fast", "thanks", "perfect", "happy"]
BAD = ["broken", "late", "awful", "angry", "refund", "never"]
PLAIN = ["order", "address", "tuesday", "invoice", "number", "where"]


def synthetic(n_per_label: int, seed: int) -> LabelledSet:
    """Short texts whose label is carried by a few words (padded with shared filler words)."""
    rng = random.Random(seed)
    data = LabelledSet()
    for label, words in (("positive", GOOD), ("negative", BAD), ("neutral", PLAIN)):
        for _ in range(n_per_label):
            chosen = rng.sample(words, 2) + rng.sample(["the", "a", "to", "of", "my", "is"], 2)
            rng.shuffle(chosen)
            data.texts.append(" ".join(chosen))
            data.labels.append(label)
    return data


def write_jsonl(path: Path, data: LabelledSet) -> Path:
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n"
                            for t, y in zip(data.texts, data.labels, strict=True)), encoding="utf-8")
    return path


def test_default_scorer_reads_english_and_chinese_offline():
    from assistant.sentiment.lexicon import LexiconScorer

    results = LexiconScorer().score([
        "This is the worst service ever, I am furious.", "Thank you so much, that was really helpful!",
        "How do I change my delivery address?", "快递太慢了，非常失望，再也不买了", "质量很好，服务周到，非常满意",
        "   "])
    assert [r.label for r in results] == ["negative", "positive", "neutral", "negative", "positive", "neutral"]
    assert results[0].score < -0.5 < 0.5 < results[1].score
    assert all(abs(sum(r.probabilities.values()) - 1) < 1e-3 for r in results)


def test_labelled_file_problems_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_bytes(b'{"text": "great", "label": "positive"}\n'
                     b'{"text": "meh", "label": "mixed"}\n'
                     b'{"text": "", "label": "neutral"}\n'
                     b'not json\n'
                     b'{"text": "caf\xe9", "label": "neutral"}\n'
                     + json.dumps({"text": "x" * 2001, "label": "neutral"}).encode() + b"\n\n"
                     b'{"text": "awful", "label": "negative"}\n')
    data = read_labelled(path)
    assert data.texts == ["great", "awful"]
    assert [e.split(": ", 1)[0] for e in data.errors] == [f"{path}:{n}" for n in (2, 3, 4, 5, 6)]
    assert "'label' is 'mixed'" in data.errors[0] and "not UTF-8" in data.errors[3]
    with pytest.raises(SentimentDataError, match=f"{path}:2: 'label' is 'mixed'"):
        read_labelled(path, strict=True)
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"text": "ok", "label": "good"}\n')
    with pytest.raises(SentimentDataError, match="no usable labelled lines"):
        read_labelled(empty)


def test_ngram_classifier_learns_saves_and_loads(tmp_path):
    from assistant.sentiment.classifier import SentimentClassifier, train_classifier
    from assistant.sentiment.options import TrainingOptions

    model = train_classifier(synthetic(60, seed=1), TrainingOptions(encoder="none"))
    model.save(tmp_path / "clf")
    loaded = SentimentClassifier.load(tmp_path / "clf")
    test = synthetic(20, seed=2)
    predicted = [r.label for r in loaded.score(test.texts)]
    accuracy = sum(p == y for p, y in zip(predicted, test.labels, strict=True)) / len(test)
    assert accuracy > 0.9
    assert loaded.score(["love it, perfect"])[0].score > 0 > loaded.score(["awful, broken and late"])[0].score


def test_encoder_is_fine_tuned_with_a_head_and_few_shot_uses_pairs(tmp_path):
    from assistant.sentiment.classifier import SentimentClassifier, train_classifier
    from assistant.sentiment.options import TrainingOptions
    from tests.tiny_encoder import build_tiny_encoder

    encoder = build_tiny_encoder(tmp_path / "enc", extra_words=(*GOOD, *BAD, *PLAIN, "my", "is"))
    before = (encoder / "model.safetensors").read_bytes() if (encoder / "model.safetensors").exists() else None
    options = TrainingOptions(encoder=str(encoder), epochs=3, learning_rate=1e-3, batch_size=8, checks_per_epoch=1)
    model = train_classifier(synthetic(40, seed=3), options)
    assert not model.info["few_shot"] and model.ngram is not None
    model.save(tmp_path / "clf")
    saved = next((tmp_path / "clf" / "encoder").rglob("model.safetensors")).read_bytes()
    assert saved != before  # the encoder itself was trained
    loaded = SentimentClassifier.load(tmp_path / "clf")
    test = synthetic(15, seed=4)
    encoder_only = loaded.predict_proba(test.texts, ngram_weight=0.0).argmax(1)
    accuracy = sum(loaded.labels[k] == y for k, y in zip(encoder_only, test.labels, strict=True)) / len(test)
    assert accuracy > 0.6  # the fine-tuned encoder head alone beats chance (1/3) by far

    few = train_classifier(synthetic(6, seed=5), TrainingOptions(encoder=str(encoder), epochs=4, learning_rate=1e-3))
    assert few.info["few_shot"] and few.ngram is None and few.ngram_weight == 0.0
    predicted = [r.label for r in few.score(test.texts)]
    assert sum(p == y for p, y in zip(predicted, test.labels, strict=True)) / len(test) > 0.5


def test_eval_command_reports_per_class_metrics(tmp_path, capsys):
    path = tmp_path / "dev.jsonl"
    rows = [("I love this, thank you!", "positive"), ("Terrible, I want my money back.", "negative"),
            ("Where is my parcel?", "neutral"), ("服务很好，非常满意", "positive"), ("太差了，很失望", "negative")]
    path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in rows)
                    + '{"text": "fine", "label": "ok"}\n', encoding="utf-8")
    assert main(["eval", "sentiment", str(path), "--scorer", "lexicon", "--json",
                 "--home", str(tmp_path / "home")]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["accuracy"] == 1.0 and metrics["macro_f1"] == 1.0 and metrics["examples"] == 5
    assert set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    assert metrics["per_class"]["negative"]["support"] == 2
    assert f"{path}:6: 'label' is 'ok'" in captured.err
    binary = tmp_path / "binary.jsonl"
    binary.write_text(json.dumps({"text": "ok I guess", "label": "positive"}) + "\n"
                      + json.dumps({"text": "not good", "label": "negative"}) + "\n")
    assert main(["eval", "sentiment", str(binary), "--scorer", "lexicon", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)["per_class"]) == {"negative", "positive"}
    assert main(["eval", "sentiment", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_align_sentiment_registers_gates_and_promotes(tmp_path, capsys):
    from assistant.sentiment.scorers import load_scorer, sentiment_registry

    home = tmp_path / "home"
    train = write_jsonl(tmp_path / "train.jsonl", synthetic(60, seed=6))
    with train.open("a") as handle:
        handle.write('{"text": "so so", "label": "meh"}\n')
    dev = write_jsonl(tmp_path / "dev.jsonl", synthetic(20, seed=7))
    assert main(["align", "sentiment", "--train", str(train), "--eval", str(dev), "--encoder", "none",
                 "--home", str(home)]) == 0
    out = capsys.readouterr()
    assert f"{train}:181: 'label' is 'meh'" in out.err
    assert "registered v1" in out.out and "promoted" in out.out
    registry = sentiment_registry(home)
    assert registry.active_id() == "v1"
    v1 = registry.get("v1")
    assert v1.metrics["candidate"]["macro_f1"] > v1.metrics["current"]["macro_f1"]
    assert load_scorer("current", home).name == "classifier@v1"

    assert main(["align", "sentiment", "--train", str(train), "--eval", str(dev), "--encoder", "none",
                 "--margin", "0.5", "--home", str(home)]) == 0
    assert "registered v2" in capsys.readouterr().out
    assert registry.active_id() == "v1" and registry.get("v2").parent == "v1"
    assert "kept classifier@v1" in registry.get("v2").decision

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "label": "cheerful"}\n')
    assert main(["align", "sentiment", "--train", str(bad), "--home", str(home)]) == 2
    assert f"{bad}:1: 'label' is 'cheerful'" in capsys.readouterr().err
    assert [v.id for v in registry.list()] == ["v1", "v2"]  # a failed run registers nothing

    assert main(["models", "list", "--sentiment", "--home", str(home)]) == 0
    listed = capsys.readouterr().out
    assert "v1" in listed and "v2" in listed and "macro_f1" in listed
    assert main(["models", "rollback", "--sentiment", "--home", str(home)]) == 0
    assert "the packaged lexicon scorer" in capsys.readouterr().out
    assert load_scorer("current", home).name == "lexicon"


def test_bench_sentiment_writes_default_and_trained_results(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(data / "tweets_en.train.jsonl", synthetic(40, seed=8))
    write_jsonl(data / "tweets_en.dev.jsonl", synthetic(10, seed=9))
    out = tmp_path / "results"
    assert main(["bench", "sentiment", "--data", str(data), "--sets", "tweets_en", "--encoder", "none",
                 "--single", "5", "--out", str(out), "--json"]) == 0
    results = json.loads(capsys.readouterr().out)["sets"]["tweets_en"]
    assert results["trained"]["macro_f1"] > results["default"]["macro_f1"]
    assert results["trained"]["speed"]["batch"]["median_messages_per_s"] > 0
    assert results["default"]["speed"]["single"]["messages"] == 5
    [markdown] = out.glob("sentiment-*.md")
    assert "| tweets_en | trained |" in markdown.read_text()
