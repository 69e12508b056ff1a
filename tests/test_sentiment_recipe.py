"""The default sentiment recipe (its loaders on the real raw files), entity-level scoring and calibrated scores."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.cli import main
from assistant.sentiment.data import LabelledSet, read_labelled

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "semeval2017_task5_headlines").is_dir(), reason="../shared/data missing")


@needs_data
def test_raw_financial_sets_load_with_documented_thresholds():
    from assistant.sentiment.recipe import NEUTRAL_BAND, finfe_posts, fiqa_posts, score_label, semeval_headlines

    headlines = semeval_headlines(DATA / "semeval2017_task5_headlines" / "SemEval2017Task5Headlines.json")
    assert len(headlines) == 1142
    assert ("Morrisons book second consecutive quarter of sales growth", "Morrisons", 0.43) in headlines
    posts = fiqa_posts(DATA / "fiqa2018_task1_sentiment" / "FiQA_post.json")
    assert len(posts) == 675 and all(-1 <= score <= 1 and target for _, target, score in posts)
    assert [score_label(s) for s in (-0.5, -NEUTRAL_BAND, 0.0, NEUTRAL_BAND, 0.11)] == [
        "negative", "neutral", "neutral", "neutral", "positive"]
    forum = finfe_posts(DATA / "fincuge_finfe_zh" / "train_list.json")
    assert len(forum) == len(set(forum.texts)) > 10000  # duplicates collapsed to one row each
    assert forum.texts[:2] == ["钼已成粥", "补仓补的心力憔悴"] and forum.labels[:2] == ["neutral", "negative"]


@needs_data
def test_default_recipe_never_trains_on_a_dev_text(tmp_path):
    from assistant.sentiment.recipe import build_default_recipe, write_recipe

    caps = {"tweets_en": 300, "finance_forum_zh": 300, "reviews_zh": 300, "finance_news_en": 10000}
    recipe = build_default_recipe(DATA, caps)
    dev_texts = {t.lower() for part in recipe.dev.values() for t in part.texts}
    for name, part in recipe.train.items():
        assert 0 < len(part) <= caps[name]
        assert not dev_texts & {t.lower() for t in part.texts}, name
    assert recipe.removed_overlap["finance_forum_zh"] > 1000  # FinFE's file holds the forum dev texts
    news_dev = recipe.dev["finance_news_en"]
    assert 250 < len(news_dev) < 500 and all(news_dev.entities)
    news_train = recipe.train["finance_news_en"]
    assert None in news_train.entities and "Morrisons" in news_train.entities  # with and without the company
    files = write_recipe(recipe, tmp_path / "recipe")
    again = read_labelled(files["finance_news_en.dev"])
    assert again.texts == news_dev.texts and again.entities == news_dev.entities
    assert json.loads((tmp_path / "recipe" / "recipe.json").read_text())["neutral_band"] == 0.1


def test_recipe_errors_name_the_missing_file(tmp_path):
    from assistant.sentiment.data import SentimentDataError
    from assistant.sentiment.recipe import build_default_recipe

    with pytest.raises(SentimentDataError, match=r"public sets under .*tweets_en\.train\.jsonl: cannot be read"):
        build_default_recipe(tmp_path)
    assert main(["sentiment", "train", "--recipe", "default", "--data", str(tmp_path),
                 "--home", str(tmp_path / "home")]) == 2


@needs_data
def test_recipe_command_trains_registers_and_reports_each_dev_set(tmp_path, capsys):
    from assistant.sentiment.scorers import sentiment_registry

    data = tmp_path / "data"
    for folder in ("semeval2017_task5_headlines", "fiqa2018_task1_sentiment"):
        shutil.copytree(DATA / folder, data / folder)
    (data / "fincuge_finfe_zh").mkdir(parents=True)
    forum = json.loads((DATA / "fincuge_finfe_zh" / "train_list.json").read_text(encoding="utf-8"))[:400]
    (data / "fincuge_finfe_zh" / "train_list.json").write_text(json.dumps(forum, ensure_ascii=False))
    (data / "sentiment").mkdir()
    for name in ("tweets_en", "finance_forum_zh", "reviews_zh"):
        for split, rows in (("train", 400), ("dev", 100)):
            lines = (DATA / "sentiment" / f"{name}.{split}.jsonl").read_text(encoding="utf-8").splitlines()
            (data / "sentiment" / f"{name}.{split}.jsonl").write_text("\n".join(lines[:rows]) + "\n",
                                                                    encoding="utf-8")
    home = tmp_path / "home"
    assert main(["sentiment", "train", "--recipe", "default", "--data", str(data), "--encoder", "none",
                 "--home", str(home)]) == 0
    out = capsys.readouterr().out
    for part in ("tweets_en", "finance_forum_zh", "reviews_zh", "finance_news_en"):
        assert part in out
    version = sentiment_registry(home).get("v1")
    assert set(version.metrics["per_set"]) == {"tweets_en", "finance_forum_zh", "reviews_zh", "finance_news_en"}
    assert (home / "sentiment-recipe" / "finance_news_en.dev.jsonl").is_file()
    assert main(["eval", "sentiment", str(home / "sentiment-recipe" / "finance_news_en.dev.jsonl"),
                 "--scorer", "v1", "--json", "--home", str(home)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    registered = version.metrics["per_set"]["finance_news_en"]["candidate"]
    for key in ("accuracy", "macro_f1", "per_class", "examples"):  # the same figures from the written dev file
        assert metrics[key] == registered[key]
    assert main(["bench", "sentiment", "--data", str(home / "sentiment-recipe"), "--model", "current",
                 "--single", "5", "--out", str(tmp_path / "results"), "--json", "--home", str(home)]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["trained"] == "classifier@v1" and len(bench["sets"]) == 4
    assert bench["sets"]["finance_news_en"]["trained"]["accuracy"] == registered["accuracy"]
    assert bench["sets"]["reviews_zh"]["default"]["speed"]["batch"]["median_messages_per_s"] > 0


def entity_set() -> LabelledSet:
    """Contract headlines: good news for the company that wins, bad news for the one that loses."""
    data = LabelledSet()
    firms = ["Acme", "Brix", "Corvo", "Dunlin", "Elmo", "Fenwick"]
    for winner in firms:
        for loser in firms:
            if winner != loser:
                for text in (f"{winner} wins contract from {loser}", f"{loser} loses contract to {winner}"):
                    data.add(text, "positive", winner)
                    data.add(text, "negative", loser)
    return data


def test_labelled_files_and_feeds_carry_entities(tmp_path):
    from assistant.config import SentimentSettings
    from assistant.sentiment.feeds import ingest_feed, read_feed
    from assistant.store import Store

    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "BP wins Shell contract", "label": "positive", "entity": "BP"}\n'
                    '{"text": "markets flat", "label": "neutral"}\n'
                    '{"text": "x", "label": "neutral", "entity": 5}\n', encoding="utf-8")
    data = read_labelled(path)
    assert data.entities == ["BP", None] and data.inputs() == ["[BP] BP wins Shell contract", "markets flat"]
    assert data.errors == [f"{path}:3: 'entity' must be a name of at most 128 characters"]

    feed = tmp_path / "news.jsonl"
    feed.write_text(json.dumps({"text": "Acme wins contract from Brix", "time": "2026-11-30",
                                "entity": "Acme; Brix"}) + "\n"
                    + json.dumps({"text": "Corvo loses contract to Dunlin", "time": "2026-11-30",
                                  "entity": ["Corvo", "Dunlin"]}) + "\n", encoding="utf-8")
    assert [(i["text"][:4], i["entity"]) for i in read_feed(feed).items] == [
        ("Acme", "Acme"), ("Acme", "Brix"), ("Corv", "Corvo"), ("Corv", "Dunlin")]

    class Recorder:
        name = "recorder"

        def score(self, texts, entities=None):
            from assistant.sentiment.labels import from_probabilities

            self.entities = entities
            return [from_probabilities({"negative": 0.1, "neutral": 0.8, "positive": 0.1}) for _ in texts]

    recorder, store = Recorder(), Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    report = ingest_feed(store, recorder, feed, SentimentSettings(), progress=False)
    store.close()
    assert report.added == 4 and recorder.entities == ["Acme", "Brix", "Corvo", "Dunlin"]


def test_one_headline_gets_a_label_per_entity(tmp_path):
    from assistant.sentiment.classifier import SentimentClassifier, train_classifier
    from assistant.sentiment.options import TrainingOptions
    from tests.tiny_encoder import build_tiny_encoder

    words = ("acme", "brix", "corvo", "dunlin", "elmo", "fenwick", "wins", "loses", "contract", "from", "[", "]")
    data = entity_set()
    encoder = build_tiny_encoder(tmp_path / "enc", extra_words=words, initializer_range=0.2, hidden_size=64,
                                 dropout=0.0)
    options = TrainingOptions(encoder=str(encoder), epochs=30, learning_rate=2e-3, batch_size=16,
                              few_shot_below=4, validation_share=0.0)
    model = train_classifier(data, options)
    model.save(tmp_path / "clf")
    loaded = SentimentClassifier.load(tmp_path / "clf")
    # the encoder's side (n-grams cannot see whose news it is; with a validation share the fusion finds that out)
    predicted = loaded.predict_proba(data.texts, data.entities, ngram_weight=0.0).argmax(1)
    assert sum(loaded.labels[k] == y for k, y in zip(predicted, data.labels, strict=True)) / len(data) > 0.9
    elmo, acme = loaded.predict_proba(["Elmo wins contract from Acme"] * 2, ["Elmo", "Acme"], ngram_weight=0.0)
    assert elmo.argmax() == loaded.labels.index("positive") and acme.argmax() == loaded.labels.index("negative")


def test_temperature_scaling_calibrates_overconfident_scores():
    from assistant.sentiment.calibration import apply_temperature, expected_calibration_error, fit_temperature

    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 4000)
    logits = rng.normal(0, 1, (4000, 3))
    logits[np.arange(4000), truth] += 1.0  # right about 60% of the time ...
    honest = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    overconfident = apply_temperature(honest, 0.4)  # ... but claims far more
    temperature = fit_temperature(overconfident, truth)
    assert 0.3 < temperature < 0.5 or 2.0 < temperature < 3.0
    calibrated = apply_temperature(overconfident, temperature)
    assert expected_calibration_error(calibrated, truth) < 0.03 < expected_calibration_error(overconfident, truth)
    assert (calibrated.argmax(1) == overconfident.argmax(1)).all()  # the labels do not change


def test_trained_classifier_keeps_its_temperature(tmp_path):
    from assistant.sentiment.classifier import SentimentClassifier, train_classifier
    from assistant.sentiment.options import TrainingOptions
    from tests.test_sentiment_classifier import synthetic

    model = train_classifier(synthetic(150, seed=11), TrainingOptions(encoder="none", validation_share=0.3))
    calibration = model.info["calibration"]
    assert calibration["temperature"] == model.temperature and calibration["validation_rows"] > 50
    assert calibration["ece_after"] <= calibration["ece_before"]
    model.save(tmp_path / "clf")
    loaded = SentimentClassifier.load(tmp_path / "clf")
    texts = ["love it thanks", "broken and late", "where is my order"]
    assert loaded.temperature == model.temperature
    assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-5)
    raw = loaded.predict_proba(texts, calibrated=False)
    assert (raw.argmax(1) == loaded.predict_proba(texts).argmax(1)).all()


def test_per_language_classifiers_route_chinese_texts_to_their_own(tmp_path):
    import random

    from assistant.sentiment.by_language import ByLanguageClassifier, load_classifier, train_scorer
    from assistant.sentiment.options import TrainingOptions
    from tests.test_sentiment_classifier import synthetic

    data, rng = synthetic(60, seed=12), random.Random(12)
    words = {"positive": "好棒满意完美喜欢", "negative": "差慢失望退款生气", "neutral": "订单地址发票号码周二"}
    for label, chars in words.items():
        for _ in range(60):
            data.add("".join(rng.sample(chars, 3)) + "的", label)
    model = train_scorer(data, TrainingOptions(encoder="none", per_language=True))
    assert isinstance(model, ByLanguageClassifier) and set(model.routes) == {"zh", "other"}
    assert sum(model.routes["zh"].info["trained_on"].values()) == 180
    model.save(tmp_path / "clf")
    loaded = load_classifier(tmp_path / "clf")
    texts = ["love it thanks perfect", "非常满意，好评", "broken late awful", "太慢了，很失望"]
    assert [r.label for r in loaded.score(texts)] == ["positive", "positive", "negative", "negative"]
    assert loaded.score(texts[1:2]) == loaded.routes["zh"].score(texts[1:2])
    assert loaded.score(texts[:1]) == loaded.routes["other"].score(texts[:1])
    assert not isinstance(train_scorer(data, TrainingOptions(encoder="none")), ByLanguageClassifier)
