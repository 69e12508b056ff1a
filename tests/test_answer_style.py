"""`answers.style: auto`: a model writes its own answers only once the promotion gate measured that the sources
support them; otherwise answers are composed from the sources."""

from __future__ import annotations

from assistant.chat_serving import ChatServing
from assistant.config import load_settings
from assistant.registry import ModelRegistry, ModelVersion


class NamedEngine:
    """Only what choosing a style needs: the name of the model being served."""

    def __init__(self, name: str):
        self.name = name

    def model_names(self) -> list[str]:
        return [self.name]


def registered(tmp_path, supported: float | None) -> str:
    model = tmp_path / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text("{}")
    metrics = {"candidate": {"token_f1": 0.4} | ({} if supported is None else {"supported_sentence_rate": supported})}
    version = ModelRegistry(tmp_path / "home" / "registry").register(
        model, ModelVersion("", None, "SmolLM2-135M-Instruct", "", "hash", metrics=metrics))
    return version.served_name


def test_auto_lets_only_a_measured_faithful_model_write(tmp_path):
    settings = load_settings(flags={"home": str(tmp_path / "home")}, environ={}).settings
    assert settings.answers.style == "auto"
    assert ChatServing(settings, NamedEngine("SmolLM2-135M-Instruct")).answer_style() == "grounded"  # base: unmeasured
    faithful = registered(tmp_path, 0.97)
    assert ChatServing(settings, NamedEngine(faithful)).answer_style() == "generative"
    inventive = registered(tmp_path, 0.6)
    assert ChatServing(settings, NamedEngine(inventive)).answer_style() == "grounded"
    never_measured = registered(tmp_path, None)
    assert ChatServing(settings, NamedEngine(never_measured)).answer_style() == "grounded"
    settings.answers.style = "generative"  # an explicit choice is kept
    assert ChatServing(settings, NamedEngine(inventive)).answer_style() == "generative"


def test_the_gate_measures_how_much_of_a_models_answers_the_sources_support():
    from alignment.evaluation import cases_from_examples, score
    from alignment.examples import SFTExample
    from assistant.grounding import Source
    from assistant.prompt import build_chat_messages

    refunds = Source(1, "Refunds", "refunds.md", None, None, "We refund within 5 business days of receiving it.", 0.9)
    prompt = [{"role": m.role, "content": m.content} for m in build_chat_messages(
        "You are the assistant.", [{"role": "user", "content": "How long do refunds take?"}], [refunds])]
    example = SFTExample(prompt, [{"role": "assistant", "content": "Within 5 business days."}], "c1", ("refunds.md",))
    cases = cases_from_examples([example])
    assert cases[0].sources[0].text == refunds.text  # read back from the prompt the model saw
    true = score(cases, ["We refund within 5 business days of receiving it [1]."])
    invented = score(cases, ["Refunds take 9 minutes at our 400 stores."])
    assert true["supported_sentence_rate"] == 1.0 and invented["supported_sentence_rate"] == 0.0
    assert invented["unsupported_number_rate"] == 1.0


def test_the_dont_know_bar_is_per_language_and_measured_from_answerable_and_unanswerable_questions(tmp_path):
    from types import SimpleNamespace

    from alignment.evaluation import EvalCase, relevance_thresholds
    from assistant.grounding import Grounder

    settings = load_settings(flags={"home": str(tmp_path)}, environ={}).settings
    grounder = Grounder(settings.retrieval, tmp_path / "knowledge")
    assert grounder.min_relevance("退货运费谁承担？") == settings.retrieval.min_relevance_zh == 0.2
    assert grounder.min_relevance("Who pays for return shipping?") == settings.retrieval.min_relevance == 0.45

    def case(question: str, relevance: float, answerable: bool) -> EvalCase:
        return EvalCase(question, "", answerable=answerable, prepared=SimpleNamespace(relevance=relevance))

    cases = [case(f"in scope {i}?", 0.6 + i / 100, True) for i in range(6)]
    cases += [case(f"out of scope {i}?", 0.2 + i / 100, False) for i in range(6)]
    cases += [case(f"退货{i}？", 0.3, True) for i in range(6)] + [case(f"天气{i}？", 0.1, False) for i in range(6)]
    measured = relevance_thresholds(cases)
    assert 0.25 < measured["min_relevance_measured_en"] <= 0.6 and measured["min_relevance_accuracy_en"] == 1.0
    assert 0.1 < measured["min_relevance_measured_zh"] <= 0.3 and measured["min_relevance_accuracy_zh"] == 1.0
    assert "min_relevance_measured_en" not in relevance_thresholds(cases[:8])  # too few to measure
