"""`assistant align` end to end: validate -> redact -> build datasets -> SFT -> DPO (-> KTO) -> evaluate ->
register -> promote if the gate passes. Nothing is registered or promoted until every stage has succeeded.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from alignment.answering import Answerer
from alignment.config import AlignSettings, GateSettings
from alignment.examples import (
    Examples,
    PreferencePair,
    PromptBuilder,
    SFTExample,
    data_hash,
    deduplicate,
    from_preferences,
    from_transcripts,
    mix_replay,
    split_heldout,
)
from alignment.metrics import token_f1
from alignment.transcripts import parse_preference, parse_transcript, read_file
from assistant.config import LoadedSettings
from assistant.errors import AssistantError
from assistant.model_files import ResolvedModel
from assistant.prompt import PromptRoom
from assistant.redaction import Redactor
from assistant.registry import ModelVersion
from assistant.runtime import model_registry, serving_model


class AlignError(AssistantError, ValueError):
    """The run cannot go on (no training data, nothing to evaluate with...); nothing was changed."""


@dataclass
class AlignRequest:
    transcripts: list[Path] = field(default_factory=list)
    preferences: list[Path] = field(default_factory=list)
    actions: list[Path] = field(default_factory=list)  # action-decision JSONL (the sgd_actions contract)
    from_store: bool = False
    kto: bool = False
    strict: bool = False
    dry_run: bool = False
    progress: bool = True


@dataclass
class AlignReport:
    data: dict = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    decision: str = ""
    version: ModelVersion | None = None
    promoted: bool = False
    errors: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # wall time of each phase, in order: where it went

    @contextmanager
    def timed(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = round(self.seconds.get(phase, 0.0) + time.perf_counter() - started, 1)


class AlignPipeline:
    def __init__(self, loaded: LoadedSettings, config: AlignSettings, console, answerer: Answerer | None = None):
        """`answerer`: the caller's, when it answers with these models before or after the run (the bench); its
        engine is stopped before training."""
        self.loaded = loaded
        self.settings = loaded.settings
        self.config = config
        self.console = console
        self.answerer = answerer
        self.registry = model_registry(self.settings)
        self.redactor = Redactor(tuple(config.data.redact), tuple(config.data.redact_keep))

    def _engine_name(self) -> str:
        from assistant.runtime import choose_engine

        return choose_engine(self.loaded)

    def _builder(self, model: ResolvedModel) -> PromptBuilder:
        retrieve = None
        if self.config.data.grounded and self.settings.retrieval.enabled:
            from assistant.grounding import Grounder

            grounder = Grounder(self.settings.retrieval, self.settings.knowledge_dir)
            grounder.prepare(progress=True)
            retrieve = lambda question: grounder.ground(question).sources  # noqa: E731
        return PromptBuilder(self.settings.rendered_system_prompt(), retrieve, self.settings.max_history_messages,
                             self.config.data.cite_sources, self._room(model))

    def _room(self, model: ResolvedModel) -> PromptRoom:
        """The serving model's context: training prompts are fitted exactly as serving fits them."""
        from assistant.engines import served_window

        settings = self.settings.model_copy(update={"engine": self._engine_name()})
        return PromptRoom(served_window(settings, model), self.settings.generation.max_new_tokens,
                          self.settings.retrieval.source_tokens)

    def _read(self, request: AlignRequest, report: AlignReport):
        transcripts, preferences = [], []
        for path, parse, bucket in ([(p, parse_transcript, transcripts) for p in request.transcripts]
                                    + [(p, parse_preference, preferences) for p in request.preferences]):
            if not Path(path).is_file():
                raise AlignError(f"{path}: file not found")
            result = read_file(Path(path), parse, strict=request.strict)
            bucket.extend(result.rows)
            report.errors.extend(result.errors)
            report.data.setdefault("files", {})[str(path)] = {"valid": len(result.rows),
                                                               "invalid": len(result.errors)}
        return transcripts, preferences

    def build(self, request: AlignRequest, report: AlignReport,
              model: ResolvedModel) -> tuple[Examples, list[SFTExample], PromptBuilder]:
        """The training examples and held-out set, with prompts fitted for `model` (the one serving now)."""
        from tqdm import tqdm

        transcripts, preferences = self._read(request, report)
        builder = self._builder(model)
        examples = from_transcripts(tqdm(transcripts, desc="building examples (retrieval per question)",
                                         unit="conversation", disable=not request.progress), builder, self.redactor)
        examples.pairs += from_preferences(preferences, builder, self.redactor)
        if request.from_store:
            from alignment.feedback import from_store, recommendation_pairs
            from assistant.store import open_store

            store = open_store(self.settings)
            try:
                cursor = next((v.data["store_cursor"] for v in reversed(self.registry.list())
                               if v.data.get("store_cursor")), None)
                stored = from_store(store.conversations.conversations_for_alignment(cursor), builder, self.redactor)
                report.data["store_cursor"] = store.conversations.alignment_cursor()
                picks = recommendation_pairs(store, self.redactor)
                report.data["recommendation_pairs"] = len(picks)
                stored.pairs += picks
            finally:
                store.close()
            report.data["from_store"] = {"sft": len(stored.sft), "pairs": len(stored.pairs), "kto": len(stored.kto)}
            examples.sft += stored.sft
            examples.pairs += stored.pairs
            examples.kto += stored.kto
        if self.config.data.dedup:
            deduplicate(examples)
        data = self.config.data
        train, heldout = split_heldout(examples.sft, data.heldout_fraction, data.max_heldout, data.seed)
        replay = []
        for path in data.replay:
            if not Path(path).is_file():
                raise AlignError(f"data.replay: {path}: file not found")
            rows = read_file(Path(path), parse_transcript, strict=request.strict)
            replay += from_transcripts(rows.rows, PromptBuilder(self.settings.rendered_system_prompt()),
                                       self.redactor).sft
        examples.sft = mix_replay(train, replay, data.replay_fraction, data.seed)
        examples.actions, examples.actions_heldout, examples.action_rows = self._action_examples(request,
                                                                                                 transcripts)
        report.data.update({
            "transcripts": len(transcripts), "preference_rows": len(preferences),
            "invalid_lines": len(report.errors), "sft_examples": len(examples.sft), "heldout_examples": len(heldout),
            "replay_examples": len(examples.sft) - len(train), "pairs": len(examples.pairs),
            "kto_rows": len(examples.kto),
            "duplicates_dropped": examples.duplicates, "redacted": dict(self.redactor.counts),
            "grounded": builder.retrieve is not None,
        })
        if examples.actions or examples.actions_heldout:
            calls = sum(e.call is not None for e in examples.actions)
            report.data.update({"action_examples": f"{len(examples.actions)} ({calls} calls)",
                                "action_heldout": len(examples.actions_heldout)})
        if not (examples.sft or examples.pairs or examples.actions or (request.kto and examples.kto)):
            shown = "".join(f"\n  {e}" for e in report.errors[:10])
            raise AlignError("no training examples: every input line was invalid or had no agent reply to learn "
                             f"from; nothing was trained{shown}")
        return examples, heldout, builder

    def _action_examples(self, request: AlignRequest, transcripts: list) -> tuple[list, list, list]:
        """Decision rows for the chat model to train on (the calls, when there are replies too for the call
        classifier), to hold out, and every row not held out (the classifier's): every `--actions` file (a bad row
        stops the run), and, when the deployment declares actions (`actions.file`), every agent turn of the
        transcripts (it called an action or it replied in words)."""
        from alignment.action_examples import balanced_subset, load_action_file, transcript_action_examples

        rows = [e for path in request.actions for e in load_action_file(path)]
        if self.settings.actions.file and transcripts:
            from assistant.actions.spec import Unexpanded, load_actions

            tools = load_actions(Path(self.settings.actions.file), Unexpanded()).tools()
            rows += [e for t in transcripts for e in transcript_action_examples(t.messages, tools, t.where)]
        if not rows:
            return [], [], []
        settings = self.config.actions
        rng = random.Random(self.config.data.seed)
        rng.shuffle(rows)
        heldout = balanced_subset(rows, settings.heldout, self.config.data.seed) if settings.heldout else []
        kept = {id(e) for e in heldout}
        rest = [e for e in rows if id(e) not in kept]
        calls = [e for e in rest if e.call is not None]
        if calls and len(calls) < len(rest):  # the call classifier learns when; the chat model, which call
            return calls[:settings.max_examples], heldout, rest
        return balanced_subset(rest, settings.max_examples, self.config.data.seed), heldout, rest

    def _fit_call_classifier(self, rows: list, heldout: list, model_dir: Path) -> str:
        """Train the call classifier on every decision row not held out, set its threshold on the held-out ones,
        and save it in the new model's folder (it travels with the version); the chat model then only picks a
        call's action and arguments."""
        from assistant.actions.call_classifier import fit_call_classifier

        calls = [e.call is not None for e in rows]
        try:
            judge = fit_call_classifier([e.conversation for e in rows], calls)
        except ValueError as exc:  # all calls or all replies
            return f"not trained: {exc}"
        said = f"{type(judge).__name__} trained on {len(rows)} decisions ({sum(calls)} calls)"
        if heldout:
            accuracy = judge.calibrate([e.conversation for e in heldout], [e.call is not None for e in heldout])
            said += f"; threshold {judge.threshold} (held-out accuracy {accuracy:.2f})"
        judge.save(model_dir)
        return said

    def _fit_call_reader(self, rows: list, heldout: list, model_dir: Path) -> str:
        """Train the call reader on the call rows not held out, when there are enough (`call_reader.MIN_CALLS`),
        set how readily it answers "not given" on the held-out calls, and save it in the new model's folder: it then
        fills the calls the classifier makes."""
        from assistant.actions.call_classifier import classifier_encoder
        from assistant.actions.call_reader import MIN_CALLS, CallReader, training_questions

        calls = [e for e in rows if e.call is not None]
        if len(calls) < MIN_CALLS:
            return f"not trained: {len(calls)} calls, fewer than {MIN_CALLS} (the chat model fills calls)"
        questions = [q for e in calls for q in training_questions(e.tools, e.conversation, e.call, e.day)]
        reader = CallReader.fit(questions, classifier_encoder([e.conversation for e in calls]))
        said = f"trained on {len(calls)} calls ({len(questions)} questions)"
        checked = [(e.tools, e.conversation, e.call, e.day) for e in heldout if e.call is not None]
        if checked:
            exact = reader.calibrate(checked)
            said += f"; not-given bias {reader.not_given_bias:+g} (held-out exact match {exact:.2f})"
        reader.save(model_dir)
        return said

    def _action_metrics(self, model: ResolvedModel, heldout: list, label: str) -> dict:
        """The decisions of `model` on the held-out rows, prefixed `action_` beside the answer metrics."""
        from alignment.action_eval import decide_all, score_actions

        if not heldout:
            return {}
        scored = score_actions(heldout, decide_all(self.settings, model, self._engine_name(), heldout, label=label,
                                                   answerer=self.answerer))
        return {f"action_{k}": v for k, v in scored.items() if k not in ("rows", "call_rows")}

    def _answers(self, model: ResolvedModel, prompts: list[list[dict]], label: str) -> list[str]:
        return self.answerer.answer(model, prompts, self.config.gate.max_new_tokens, label=label)

    def _pairs_and_current_metrics(self, model: ResolvedModel, examples: Examples,
                                   heldout: list[SFTExample]) -> tuple[list[PreferencePair], dict]:
        """One engine session of the current model answers both the pair prompts (chosen = the human reply,
        rejected = its own answer) and the held-out prompts of the gate."""
        from alignment.evaluation import cases_from_examples, score

        wanted = self.config.dpo.pairs_from_model
        picked = random.Random(self.config.data.seed).sample(examples.sft, min(wanted, len(examples.sft)))
        cases = cases_from_examples(heldout)
        answers = self._answers(model, [e.prompt for e in picked] + [c.prompt for c in cases],
                                "current model: pair answers and held-out answers")
        pairs = [PreferencePair(e.prompt, e.completion, [{"role": "assistant", "content": a}], f"model:{e.group}")
                 for e, a in zip(picked, answers[:len(picked)], strict=True) if a and token_f1(a, e.reference) < 0.8]
        return pairs, score(cases, answers[len(picked):])

    def evaluate(self, model: ResolvedModel, heldout: list[SFTExample], label: str) -> dict:
        from alignment.evaluation import cases_from_examples, evaluate_cases

        metrics, _ = evaluate_cases(cases_from_examples(heldout), lambda prompts: self._answers(model, prompts, label))
        return metrics

    def run(self, request: AlignRequest) -> AlignReport:
        own = self.answerer is None
        if own:
            self.answerer = Answerer(self.settings, self._engine_name())
        try:
            return self._run(request)
        finally:
            if own:
                self.answerer.close()
                self.answerer = None

    def _run(self, request: AlignRequest) -> AlignReport:
        from alignment.training import train_stage

        report = AlignReport()
        with report.timed("examples (retrieval per question)"):
            base, parent = serving_model(self.settings)  # resolved (and digest-checked) once per run
            examples, heldout, _ = self.build(request, report, base)
        report.data["base_model"] = f"{base.name} ({base.path})"
        if request.dry_run:
            c = self.config
            plan = [f"SFT on {len(examples.sft)} examples and {len(examples.actions)} action decisions"
                    if c.sft.enabled else "no SFT",
                    f"DPO on {len(examples.pairs)} pairs (+ up to {c.dpo.pairs_from_model} from the current "
                    "model's answers)" if c.dpo.enabled else "no DPO",
                    f"KTO on {len(examples.kto)} rows" if request.kto else "no KTO",
                    f"gate: {c.gate.metric} on {len(heldout)} held-out examples, margin {c.gate.margin:+}"]
            report.decision = "dry run, nothing trained; would run: " + "; ".join(plan)
            return report
        if not heldout and not examples.actions_heldout:
            raise AlignError("no held-out examples to evaluate the new model on: add transcripts or raise "
                             "data.heldout_fraction (or actions.heldout); nothing was trained")
        distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if distributed and self.config.dpo.enabled and self.config.dpo.pairs_from_model:
            raise AlignError("under `accelerate launch` every process must build the same data: set "
                             "dpo.pairs_from_model=0 (make model pairs in a single-process run)")
        current_metrics = None
        if self.config.dpo.enabled and self.config.dpo.pairs_from_model and heldout:
            with report.timed("current model: pair answers and held-out answers"):
                generated, current_metrics = self._pairs_and_current_metrics(base, examples, heldout)
            report.data["pairs_from_model"] = len(generated)
            examples.pairs += generated
        work = self.settings.home_dir / "align-runs" / f"{data_hash(examples)}"
        work.mkdir(parents=True, exist_ok=True)
        model_dir = Path(base.path)
        adapters = {}
        sft_rows = [e.row() for e in examples.sft] + [a.sft_row() for a in examples.actions]
        random.Random(self.config.data.seed).shuffle(sft_rows)
        stages = [("sft", self.config.sft.enabled, sft_rows),
                  ("dpo", self.config.dpo.enabled, [p.row() for p in examples.pairs]),
                  ("kto", request.kto, [k.row() for k in examples.kto])]
        self.answerer.stop()  # training has the cores and memory to itself
        for stage, enabled, rows in stages:
            if not enabled or not rows:
                continue
            self.console.rule(f"{stage.upper()} on {len(rows)} examples")
            with report.timed(stage):
                result = train_stage(stage, model_dir, rows, self.config, work, request.progress)
            report.stages[stage] = result.summary()
            model_dir, adapters[stage] = result.model_dir, result.adapter_dir
        if not adapters:
            raise AlignError("no stage had data to train on (check sft/dpo enabled and --kto)")
        if examples.action_rows:
            from assistant.actions.call_classifier import saved_body

            report.data["call_classifier"] = self._fit_call_classifier(examples.action_rows, examples.actions_heldout,
                                                                       model_dir)
            if saved_body(model_dir) is not None:  # the reader fills the calls the classifier makes
                report.data["call_reader"] = self._fit_call_reader(examples.action_rows, examples.actions_heldout,
                                                                       model_dir)
        if int(os.environ.get("RANK", "0")) != 0:
            report.decision = "training process of a distributed run: evaluation and registry are done by rank 0"
            return report
        candidate = ResolvedModel(f"{base.name.split('@')[0]}@candidate", str(model_dir))
        self.console.rule("evaluation on held-out conversations")
        actions = examples.actions_heldout
        with report.timed("evaluation (held-out answers)"):
            report.metrics = {
                "current": (current_metrics or (self.evaluate(base, heldout, "current") if heldout else {}))
                | self._action_metrics(base, actions, "current model: held-out action decisions"),
                "candidate": (self.evaluate(candidate, heldout, "candidate") if heldout else {})
                | self._action_metrics(candidate, actions, "candidate: held-out action decisions")}
        gate = self.config.gate
        passed, report.decision = gate_decision(gate, report.metrics["current"], report.metrics["candidate"])
        if passed and not heldout:  # trained on decisions alone: a model that now answers "hello" in JSON passes
            passed = False
            report.decision += ("; not promoted: no held-out answers checked that it still answers customers in "
                                "words (align with transcripts too; `assistant models promote` overrides)")
        version = ModelVersion(
            id="", parent=parent, base_model=base.name.split("@")[0], created_at="", data_hash=data_hash(examples),
            config=self.config.model_dump(mode="json"), metrics=report.metrics,
            data={k: v for k, v in report.data.items() if k != "files"},
            decision=report.decision)
        with report.timed("register and promote"):
            report.version = self.registry.register(model_dir, version, adapters)
            self.answerer.same_model(ResolvedModel(base.name, str(report.version.model_dir)), candidate)
            if passed and gate.promote:
                self.registry.promote(report.version.id)
                report.promoted = True
        shutil.rmtree(work, ignore_errors=True)  # the version now holds what matters
        return report



ACTION_GATE = ("action_call_accuracy", "action_exact_match")


TRUTH_GATE = "supported_sentence_rate"


def gate_decision(gate: GateSettings, current: dict, candidate: dict) -> tuple[bool, str]:
    """Whether the candidate may serve, and why: its gate metric at least the current model's plus the margin
    (when answers were held out), its sentences supported by the sources no more than `max_supported_drop` below
    the current model's, and no worse at deciding when and how to act (when decisions were)."""
    truth = gate.max_supported_drop is not None and TRUTH_GATE in current and TRUTH_GATE in candidate
    checks = ([(gate.metric, gate.margin)] if gate.metric in current else []) + \
        ([(TRUTH_GATE, -gate.max_supported_drop)] if truth else []) + \
        [(m, 0.0) for m in ACTION_GATE if m in current]
    said, passed = [], True
    for metric, margin in checks:
        before, after = current[metric] or 0.0, candidate[metric] or 0.0
        passed = passed and after >= before + margin
        said.append(f"{metric} {before:.4f} -> {after:.4f}" + (f" (margin {margin:+.4f})" if margin else ""))
    return passed, "; ".join(said) + (": passed" if passed else ": failed, the current model stays")
