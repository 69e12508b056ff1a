"""`assistant align` end to end on a tiny model: SFT, DPO, KTO on TRL, registry, the gate both ways, promotion seen
by a running server, rollback, and failed runs that change nothing."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from rich.console import Console

from alignment.config import GateSettings, load_align_settings
from alignment.pipeline import AlignError, AlignPipeline, AlignRequest, gate_decision
from alignment.transcripts import InvalidLine
from assistant.cli import main
from assistant.registry import ModelRegistry, ModelVersion, RegistryError

DEMO = Path(__file__).resolve().parent.parent / "data" / "transcripts"
FAST = {"sft.max_steps": 2, "dpo.max_steps": 1, "kto.max_steps": 1, "sft.max_length": 1024,
        "dpo.max_length": 1024, "kto.max_length": 1024, "dpo.pairs_from_model": 2, "gate.max_new_tokens": 6,
        "training.save_steps": 1}


def run_align(loaded, request: AlignRequest, **overrides):
    config = load_align_settings(None, FAST | overrides)
    return AlignPipeline(loaded, config, Console(stderr=True, quiet=True)).run(request)


def registry_of(loaded) -> ModelRegistry:
    return ModelRegistry(loaded.settings.home_dir / "registry")


def add_store_feedback(loaded) -> None:
    from assistant.store import Store

    store = Store(loaded.settings.effective_database_url)
    conversation = store.conversations.create_conversation().id
    store.conversations.add_message(conversation, "user", "How long do refunds take?")
    answer = store.conversations.add_message(conversation, "assistant", "Refunds take two months.")
    store.conversations.add_feedback(answer, rating=-1,
                                     corrected_text="Refunds reach your card within 5 business days.")
    other = store.conversations.create_conversation().id
    store.conversations.add_message(other, "user", "Do you ship to Norway?")
    liked = store.conversations.add_message(other, "assistant", "Yes, to Norway for 9.90 EUR.")
    store.conversations.add_feedback(liked, rating=1)
    store.conversations.add_message(other, "user", "And to Iceland?")
    disliked = store.conversations.add_message(other, "assistant", "Maybe.")
    store.conversations.add_feedback(disliked, rating=-1)
    store.close()


def test_align_end_to_end_then_gate_refuses_then_promote_and_rollback(make_settings, tiny_model_dir, capsys):
    loaded = make_settings()
    add_store_feedback(loaded)
    report = run_align(loaded, AlignRequest([DEMO / "lumen-support.jsonl"], [DEMO / "lumen-preferences.jsonl"],
                                            from_store=True, kto=True, progress=False), **{"gate.margin": -1.0})
    assert set(report.stages) == {"sft", "dpo", "kto"}
    assert all(s["steps"] >= 1 and s["loss"] is not None and s["tokens"] > 0 for s in report.stages.values())
    assert report.data["transcripts"] == 65 and report.data["heldout_examples"] > 0
    assert report.data["from_store"] == {"sft": 1, "pairs": 1, "kto": 2}
    assert report.data["redacted"]["email"] >= 1
    assert report.promoted and report.version.id == "v1"
    registry = registry_of(loaded)
    v1 = registry.active()
    assert v1.id == "v1" and v1.parent is None and v1.data_hash == report.version.data_hash
    assert set(v1.metrics) == {"current", "candidate"} and "token_f1" in v1.metrics["candidate"]
    assert (v1.folder / "adapters" / "sft" / "adapter_config.json").is_file()
    assert v1.data["store_cursor"]["feedback_id"] == 3

    # the trained weights are a real change of the base model, loadable as a plain HF folder
    import torch
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tuned = AutoModelForCausalLM.from_pretrained(v1.model_dir)
    changed = [n for n, p in tuned.named_parameters() if not torch.equal(p, dict(base.named_parameters())[n])]
    assert changed

    # a second version that did not pass the gate (the gate itself: test_gate_decision): registered, inactive
    import dataclasses
    import shutil

    copy = loaded.settings.home_dir / "v2-model"
    shutil.copytree(v1.model_dir, copy)
    passed, decision = gate_decision(GateSettings(margin=0.01), v1.metrics["candidate"], v1.metrics["candidate"])
    v2 = registry.register(copy, dataclasses.replace(v1, id="", parent="v1", decision=decision, created_at="",
                                                     folder=None))
    assert not passed and v2.id == "v2" and registry.active_id() == "v1"

    home = ["--home", str(loaded.settings.home_dir)]
    assert main(["models", "list", *home]) == 0
    listing = capsys.readouterr().out
    assert "v1" in listing and "v2" in listing and "failed" in listing
    assert main(["models", "show", "v2", *home]) == 0
    assert json.loads(capsys.readouterr().out)["parent"] == "v1"
    assert main(["models", "promote", "v2", *home]) == 0
    assert registry.active_id() == "v2"
    assert main(["models", "rollback", *home]) == 0
    assert registry.active_id() == "v1"
    assert main(["models", "rollback", *home]) == 0
    assert registry.active_id() is None  # the base model again
    assert main(["models", "rollback", *home]) == 2
    assert "nothing to roll back" in capsys.readouterr().err

    # weights changed on disk after registration: never served, never promoted, skipped by a rollback
    from assistant.registry import RegistryError
    from assistant.runtime import serving_model

    assert main(["models", "promote", "v1", *home]) == 0 and main(["models", "promote", "v2", *home]) == 0
    assert serving_model(loaded.settings)[1] == "v2"
    weights = next(p for p in v1.model_dir.iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes() + b"\0")
    capsys.readouterr()
    assert main(["models", "promote", "v1", *home]) == 2
    assert "do not match the registry" in capsys.readouterr().err
    assert registry.rollback() is None and registry.active_id() is None  # v1 skipped: the base model serves
    assert main(["models", "promote", "v2", *home]) == 0
    (v2.model_dir / "config.json").write_text("{}")
    with pytest.raises(RegistryError, match="do not match"):
        serving_model(loaded.settings)  # what `assistant serve` starts with


def test_failed_runs_change_nothing(make_settings, tmp_path):
    loaded = make_settings()
    registry = registry_of(loaded)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "messages": [{"role": "user", "content": "hi"}]}\n'
                   '{"id": "y", "messages": [{"role": "robot", "content": "hi"}]}\n'
                   "{not json\n", encoding="utf-8")
    with pytest.raises(AlignError) as error:
        run_align(loaded, AlignRequest([bad], progress=False))
    message = str(error.value)
    assert "no training examples" in message
    assert f"{bad}:1: the conversation never has an assistant or agent reply" in message
    assert f"{bad}:2: messages[0].role is 'robot'" in message
    assert f"{bad}:3:" in message
    with pytest.raises(InvalidLine, match=rf"{bad}:1:"):
        run_align(loaded, AlignRequest([DEMO / "lumen-support.jsonl", bad], strict=True, progress=False))
    assert registry.list() == [] and registry.active_id() is None


def test_tampered_version_is_refused_and_serving_is_unchanged(make_settings, tiny_model_dir):
    from assistant.model_files import resolve_model

    loaded = make_settings()
    registry = registry_of(loaded)
    base_name = resolve_model(str(tiny_model_dir), loaded.settings.models_dir).name
    v1 = registry.register(tiny_model_dir, ModelVersion("", None, base_name, "", "hash1"))
    v2 = registry.register(tiny_model_dir, ModelVersion("", "v1", base_name, "", "hash2"))
    registry.promote(v1.id)
    (v2.model_dir / "model.safetensors").write_bytes(b"not the registered weights")
    with pytest.raises(RegistryError, match="do not match the registry"):
        registry.promote(v2.id)
    assert registry.active_id() == "v1"


def test_cli_dry_run_and_bad_input(make_settings, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__ENABLED", "false")
    common = ["--home", str(tmp_path / "home"), "--model", str(tiny_model_dir), "--engine", "transformers"]
    assert main(["align", "--transcripts", str(DEMO / "lumen-support.jsonl"), "--dry-run", *common]) == 0
    out = capsys.readouterr().out
    assert "sft_examples" in out and "dry run" in out
    assert not (tmp_path / "home" / "registry").exists()
    assert main(["align", *common]) == 2
    assert "nothing to train on" in capsys.readouterr().err
    config = tmp_path / "align.yaml"
    config.write_text("sft:\n  epochs: -1\n  warmup: 3\n")
    assert main(["align", "--transcripts", str(DEMO / "lumen-support.jsonl"), "--config", str(config), *common]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and "sft.epochs" in err and "sft.warmup" in err


@pytest.mark.real_engine  # the model is swapped
def test_promotion_reaches_a_running_server_without_a_restart(make_settings, make_client, tiny_model_dir,
                                                              monkeypatch):
    from functools import partial

    from assistant.model_files import resolve_model
    from assistant.model_swap import follow_promotions

    # the server polls the registry every 0.2 s instead of every 2 s: the same switch, sooner
    monkeypatch.setattr("assistant.api.app.follow_promotions", partial(follow_promotions, interval_s=0.2))
    client = make_client()
    settings = make_settings().settings
    base_name = resolve_model(str(tiny_model_dir), settings.models_dir).name
    assert client.get("/v1/models").json()["data"][0]["id"] == base_name
    registry = ModelRegistry(settings.home_dir / "registry")
    version = registry.register(tiny_model_dir, ModelVersion("", None, base_name, "", "h"))
    registry.promote(version.id)

    def served_first() -> str:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            names = [m["id"] for m in client.get("/v1/models").json()["data"]]
            if names[0] != served_first.last:
                return names[0]
            time.sleep(0.2)
        return names[0]

    served_first.last = base_name
    assert served_first() == f"{base_name}@v1"
    conversation = client.post("/api/conversations").json()["id"]
    reply = client.post(f"/api/conversations/{conversation}/messages", json={"content": "hi", "stream": False})
    assert reply.status_code == 200, reply.text
    messages = client.get(f"/api/conversations/{conversation}/messages").json()["messages"]
    assert messages[-1]["model"] == f"{base_name}@v1"
    # the old name stays accepted by the OpenAI API (clients configured with it keep working)
    for name in (base_name, f"{base_name}@v1"):
        completion = client.post("/v1/chat/completions", json={"model": name, "max_tokens": 4,
                                                               "messages": [{"role": "user", "content": "hi"}]})
        assert completion.status_code == 200
    registry.rollback()
    served_first.last = f"{base_name}@v1"
    assert served_first() == base_name
    shutil.rmtree(version.folder)


def test_an_interrupted_stage_resumes_from_its_last_checkpoint(tiny_model_dir, tmp_path):
    from alignment.training import train_stage

    rows = [{"prompt": [{"role": "user", "content": f"Where is order {i}?"}],
             "completion": [{"role": "assistant", "content": "It ships in two business days."}]} for i in range(12)]
    config = load_align_settings(None, {"sft.max_steps": 2, "sft.batch_size": 2, "training.save_steps": 1})
    first = train_stage("sft", tiny_model_dir, rows, config, tmp_path, progress=False)
    assert first.steps == 2 and (tmp_path / "sft" / "checkpoints" / "checkpoint-2").is_dir()
    # a rerun with a longer budget continues from step 2 instead of starting over
    config = load_align_settings(None, {"sft.max_steps": 3, "sft.batch_size": 2, "training.save_steps": 1})
    second = train_stage("sft", tiny_model_dir, rows, config, tmp_path, progress=False)
    assert second.resumed_from == 2 and second.steps_run == 1 and second.steps == 3
    assert (tmp_path / "sft" / "checkpoints" / "checkpoint-3").is_dir()


def test_one_sequence_per_pass_trains_the_same_as_whole_batches(tiny_model_dir, tmp_path):
    """`training.micro_batch: 1` accumulates the batch one sequence at a time; the optimizer sees the same batch,
    so the loss and the adapter match the whole batch at once (the default)."""
    import torch

    from alignment.training import micro_batch, train_stage

    rows = [{"prompt": [{"role": "user", "content": "Where is order " + "12 " * (i % 5) + "?"}],
             "completion": [{"role": "assistant", "content": "It ships in two business days." * (1 + i % 3)}]}
            for i in range(8)]
    losses, adapters = [], []
    for micro in (1, 4):
        config = load_align_settings(None, {"sft.max_steps": 2, "sft.batch_size": 4, "training.micro_batch": micro,
                                            "lora.dropout": 0, "training.save_steps": 100})
        result = train_stage("sft", tiny_model_dir, rows, config, tmp_path / str(micro), progress=False)
        losses.append(result.loss)
        from safetensors.torch import load_file

        adapters.append(load_file(result.adapter_dir / "adapter_model.safetensors"))
    assert losses[0] == pytest.approx(losses[1], rel=1e-3)
    assert all(torch.allclose(adapters[0][k], adapters[1][k], atol=1e-4) for k in adapters[0])
    assert micro_batch("sft", 4, None) == 4
    assert micro_batch("kto", 2, 1) == 2  # KTO's KL estimate needs the whole batch
    with pytest.raises(ValueError, match=r"micro_batch=3 must divide sft\.batch_size=4"):
        micro_batch("sft", 4, 3)


def _trains_as_trl_does(stage: str, rows: list[dict], steps: int, batch: int, model_dir, work, monkeypatch) -> None:
    """Train `stage` three ways: the whole batch at once (rows share what they can), one row per pass, and TRL's
    own padded forward (attention mask and all); loss, tokens scored and adapter must match."""
    import torch
    from safetensors.torch import load_file

    import alignment.training
    from alignment.training import train_stage

    results, adapters = [], []
    for run, micro in (("shared", batch), ("alone", 1), ("trl", batch)):
        if run == "trl":
            monkeypatch.setattr(alignment.training, "run_prompt_once", lambda model, prompt_gradient, rows_apart: None)
        config = load_align_settings(None, {f"{stage}.max_steps": steps, f"{stage}.batch_size": batch,
                                            "training.micro_batch": micro, "training.save_steps": 100})
        results.append(train_stage(stage, model_dir, rows, config, work / run, progress=False))
        adapters.append(load_file(results[-1].adapter_dir / "adapter_model.safetensors"))
    for result, adapter in zip(results[1:], adapters[1:], strict=True):
        assert results[0].loss == pytest.approx(result.loss, rel=1e-4)
        assert results[0].tokens == result.tokens  # the same answer tokens scored, padding excluded
        assert all(torch.allclose(adapters[0][k], adapter[k], atol=1e-5) for k in adapter)


def test_a_dpo_pair_shares_its_prompt_and_trains_the_same_as_padded_batches(tiny_model_dir, tmp_path, monkeypatch):
    """Each DPO pair runs its prompt once (a key/value cache; two pairs: what they share once) and each answer
    after it, unpadded; the loss, the reward margins and the adapter match TRL's padded batches."""
    rows = [{"prompt": [{"role": "user", "content": "Where is order " + "12 " * (i % 5) + "?"}],
             "chosen": [{"role": "assistant", "content": "It ships in two business days." * (1 + i % 3)}],
             "rejected": [{"role": "assistant", "content": "No idea, sorry." + " Really." * (i % 4)}]}
            for i in range(8)]
    _trains_as_trl_does("dpo", rows, 3, 2, tiny_model_dir, tmp_path, monkeypatch)


def test_an_sft_batch_runs_its_shared_prefix_once_and_trains_the_same_as_padded_batches(tiny_model_dir, tmp_path,
                                                                                       monkeypatch):
    """On a CPU the rows of an SFT batch run their shared prefix (system prompt, rules) once, each row's own prompt
    through the backbone and only its answer through the LM head (TRL's fused head without Triton scores every
    position); loss, tokens and adapter match TRL's own padded batch of 4, and one row per pass."""
    rows = [{"prompt": [{"role": "system", "content": "Lumen Outfitters support. Returns: 30 days."},
                        {"role": "user", "content": "Where is order " + "12 " * (i % 5) + "?"}],
             "completion": [{"role": "assistant", "content": "It ships in two business days." * (1 + i % 3)}]}
            for i in range(8)]
    _trains_as_trl_does("sft", rows, 2, 4, tiny_model_dir, tmp_path, monkeypatch)


def test_without_the_prompt_gradient_the_forward_is_the_same_and_only_the_answer_trains(tiny_model_dir, tmp_path):
    """`training.prompt_gradient: false` runs the prompt once without a gradient: the first loss is the one the full
    forward gives (same model, same tokens scored), the adapter still learns, but not what the full gradient gives."""
    from safetensors.torch import load_file

    from alignment.training import train_stage

    rows = [{"prompt": [{"role": "system", "content": "Lumen Outfitters support. Returns: 30 days."},
                        {"role": "user", "content": "Where is order " + "12 " * (i % 5) + "?"}],
             "completion": [{"role": "assistant", "content": "It ships in two business days." * (1 + i % 3)}]}
            for i in range(4)]
    results, adapters = [], []
    for prompt_gradient, micro in ((True, 1), (False, 1), (False, 4)):  # 4: rows of a padded batch one at a time
        config = load_align_settings(None, {"sft.max_steps": 1, "sft.batch_size": 4, "lora.dropout": 0,
                                            "training.prompt_gradient": prompt_gradient, "training.micro_batch": micro,
                                            "training.save_steps": 100})
        results.append(train_stage("sft", tiny_model_dir, rows, config, tmp_path / f"{prompt_gradient}{micro}",
                                   progress=False))
        adapters.append(load_file(results[-1].adapter_dir / "adapter_model.safetensors"))
    assert results[0].loss == pytest.approx(results[1].loss, rel=1e-5) == results[2].loss
    moved = {k: (adapters[0][k] - adapters[1][k]).abs().max().item() for k in adapters[0] if "lora_B" in k}
    assert max(moved.values()) > 1e-4  # different gradients
    assert all(adapters[1][k].abs().max() > 0 for k in moved)  # lora_B starts at zero: every layer learned
    assert all((adapters[1][k] - adapters[2][k]).abs().max() < 1e-5 for k in adapters[1])


@pytest.mark.parametrize(("current", "candidate", "margin", "passes"), [
    (0.40, 0.43, 0.0, True),  # better
    (0.40, 0.40, 0.0, True),  # as good: a fresh version on newer data may serve
    (0.40, 0.39, 0.0, False),  # worse
    (0.40, 0.43, 0.05, False),  # better, but not by the margin asked for
    (0.40, 0.45, 0.05, True),
    (0.40, 0.38, -0.05, True),  # a negative margin tolerates a small loss
])
def test_gate_decision(current, candidate, margin, passes):
    gate = GateSettings(metric="token_f1", margin=margin)
    passed, decision = gate_decision(gate, {"token_f1": current, "rouge_l": 0.9}, {"token_f1": candidate,
                                                                                  "rouge_l": 0.1})
    assert passed is passes
    assert decision.startswith(f"token_f1 {current:.4f} -> {candidate:.4f}")
    assert ("passed" in decision) is passes and ("the current model stays" in decision) is not passes


ORDER_TOOLS = [{"type": "function", "function": {"name": "order_status", "description": "Look up an order",
                                                 "parameters": {"type": "object", "properties": {
                                                     "order_id": {"type": "string", "pattern": "^[0-9]{4}$"}},
                                                     "required": ["order_id"]}}}]


def action_rows(n: int) -> list[dict]:
    """Decision points written here: a customer gives an order number (call) or just chats (no call)."""
    rows = []
    for i in range(n):
        number = str(1040 + i)
        if i % 2:
            messages, call = [{"role": "user", "content": f"where is my order {number}?"}], {
                "name": "order_status", "arguments": {"order_id": number}}
        else:
            messages, call = [{"role": "user", "content": "hello, I have a question about an order"}], None
        rows.append({"id": f"a{i}", "tools": ORDER_TOOLS, "messages": messages, "call": call})
    return rows


def test_align_on_action_decisions_trains_gates_on_them_and_decodes_valid_calls(make_settings, tmp_path):
    path = tmp_path / "actions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in action_rows(24)))
    loaded = make_settings()
    report = run_align(loaded, AlignRequest(actions=[path], progress=False),
                       **{"dpo.enabled": False, "actions.heldout": 6, "actions.max_examples": 12})
    # the chat model learns the calls; the call classifier, from every row, when to call
    assert report.data["action_examples"] == "9 (9 calls)" and report.data["action_heldout"] == 6
    assert report.data["call_classifier"] == ("NgramCallClassifier trained on 18 decisions (9 calls); threshold 0.5 "
                                              "(held-out accuracy 1.00)")  # set on the held-out rows
    assert report.stages["sft"]["examples"] == 9 and report.version.id == "v1"
    assert (report.version.model_dir / "call_classifier.npz").is_file()  # it travels with the version
    for side in ("current", "candidate"):
        metrics = report.metrics[side]
        assert metrics["action_invalid_rate"] == 0.0  # constrained decoding: even a random model writes valid calls
        assert 0.0 <= metrics["action_call_accuracy"] <= 1.0 and "token_f1" not in metrics
    # the tiny random model calls when the classifier says so, and can only copy the order number it was given
    assert report.metrics["candidate"]["action_call_accuracy"] == 1.0
    assert report.metrics["candidate"]["action_exact_match"] == 1.0
    assert "action_call_accuracy" in report.decision and "action_exact_match" in report.decision
    # trained on decisions alone, nothing checked it still answers in words: registered, never promoted
    assert not report.promoted and "no held-out answers checked" in report.decision

    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(action_rows(1)[0] | {"call": {"name": "refund_everything", "arguments": {}}}) + "\n")
    with pytest.raises(InvalidLine, match=r"bad.jsonl:1: field call.name: 'refund_everything' is not among"):
        run_align(loaded, AlignRequest(actions=[bad], progress=False), **{"dpo.enabled": False})
    assert registry_of(loaded).active_id() is None


def test_the_gate_also_refuses_a_model_that_acts_worse():
    gate = GateSettings()
    current = {"token_f1": 0.2, "action_call_accuracy": 0.8, "action_exact_match": 0.5}
    better_answers_worse_actions = {"token_f1": 0.3, "action_call_accuracy": 0.7, "action_exact_match": 0.6}
    passed, said = gate_decision(gate, current, better_answers_worse_actions)
    assert not passed and "action_call_accuracy 0.8000 -> 0.7000" in said and said.endswith("current model stays")
    assert gate_decision(gate, current, current | {"action_exact_match": 0.55})[0]


def test_transcripts_that_used_actions_teach_decisions_and_replies_grounded_in_results(make_settings):
    """The demo's transcripts with tool_calls: each agent turn after a customer turn (or a result) is a decision;
    the replies after a result are answers to learn, the call turns themselves are not."""
    from alignment.pipeline import AlignReport
    from assistant.model_files import ResolvedModel

    loaded = make_settings(**{"actions.file": str(DEMO.parent / "orders" / "actions.yaml")})
    config = load_align_settings(None, FAST | {"actions.heldout": 4})
    pipeline = AlignPipeline(loaded, config, Console(stderr=True, quiet=True))
    report = AlignReport()
    examples, heldout, _ = pipeline.build(AlignRequest([DEMO / "lumen-actions.jsonl"], progress=False), report,
                                          ResolvedModel("tiny", loaded.settings.model))
    decisions = examples.action_rows + examples.actions_heldout  # the classifier learns from all of them
    assert len(decisions) == 29 and sum(d.call is not None for d in decisions) == 8
    assert all(d.call is not None for d in examples.actions)  # the chat model, from the calls
    assert {d.call.name for d in decisions if d.call} == {"order_status", "change_delivery_address",
                                                         "request_refund"}
    answers = examples.sft + heldout
    assert answers and not any(e.completion[0]["content"].startswith("[called") for e in answers)
    grounded = [e for e in answers if "[result of the call]" in e.prompt[-1]["content"]]
    assert any("R12" in e.completion[0]["content"] for e in grounded)


def test_adapting_only_the_top_layers_leaves_the_lower_ones_as_they_were(tiny_model_dir, tmp_path):
    """`lora.top_layers`: the backward pass stops below the adapted layers (the speed-up); the merged model differs
    from the base in those layers only. In bf16 mixed precision on a CPU too (`training.precision: bfloat16`)."""
    import torch
    from transformers import AutoModelForCausalLM

    from alignment.training import train_stage

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    top = base.config.num_hidden_layers - 1
    rows = [{"prompt": [{"role": "user", "content": f"Where is order {i}?"}],
             "completion": [{"role": "assistant", "content": "It ships in two business days."}]} for i in range(8)]
    for precision in ("float32", "bfloat16"):
        config = load_align_settings(None, {"sft.max_steps": 2, "sft.batch_size": 2, "sft.learning_rate": 1e-2,
                                            "lora.top_layers": 1, "training.precision": precision})
        result = train_stage("sft", tiny_model_dir, rows, config, tmp_path / precision, progress=False)
        tuned = dict(AutoModelForCausalLM.from_pretrained(result.model_dir).named_parameters())
        changed = {n for n, p in base.named_parameters() if not torch.equal(p, tuned[n])}
        assert changed and all(f"layers.{top}." in n for n in changed), (precision, sorted(changed)[:3])


def test_the_quick_profile_asks_for_less(make_settings, tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__ENABLED", "false")
    common = ["--home", str(tmp_path / "home"), "--model", str(tiny_model_dir), "--engine", "transformers",
              "--transcripts", str(DEMO / "lumen-support.jsonl"), "--dry-run"]
    assert main(["align", *common]) == 0
    assert "up to 32 from the current model" in capsys.readouterr().out
    assert main(["align", "--profile", "quick", *common]) == 0
    assert "up to 8 from the current model" in capsys.readouterr().out
    assert main(["align", "--profile", "quick", "--set", "dpo.pairs_from_model=4", *common]) == 0
    assert "up to 4 from the current model" in capsys.readouterr().out  # --set still wins
    with pytest.raises(SystemExit):
        main(["align", "--profile", "fastest", *common])
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


def test_a_candidate_that_invents_more_does_not_pass_the_gate():
    """Closer to the human replies (token F1 up) but fewer of its sentences supported by the sources (the demo's
    aligned candidates went 0.11 -> 0.04): not better, the current model stays."""
    current = {"token_f1": 0.20, "supported_sentence_rate": 0.11}
    passed, said = gate_decision(GateSettings(), current, {"token_f1": 0.25, "supported_sentence_rate": 0.04})
    assert not passed and "supported_sentence_rate 0.1100 -> 0.0400" in said and "the current model stays" in said
    assert gate_decision(GateSettings(), current, {"token_f1": 0.25, "supported_sentence_rate": 0.08})[0]
    unchecked = GateSettings(max_supported_drop=None)
    assert gate_decision(unchecked, current, {"token_f1": 0.25, "supported_sentence_rate": 0.0})[0]


def test_an_answerer_starts_each_model_once_and_stops_it_before_training(make_settings, monkeypatch):
    """The bench answers with the base model, align answers with it again, then the candidate answers and, once
    registered, answers the test questions: two engine starts, not four; no engine is running while training."""
    import alignment.training
    import assistant.engines
    from alignment.answering import Answerer
    from assistant.runtime import model_by_spec

    events, running = [], set()
    build, train = assistant.engines.build_engine, alignment.training.train_stage

    def recorded_build(settings, model):
        engine = build(settings, model)
        start, stop = engine.start, engine.stop

        async def started():
            events.append(("start", str(model.path)))
            running.add(id(engine))
            await start()

        async def stopped():
            running.discard(id(engine))
            await stop()

        engine.start, engine.stop = started, stopped
        return engine

    def recorded_train(stage, *args, **kwargs):
        events.append(("train", stage, len(running)))
        return train(stage, *args, **kwargs)

    monkeypatch.setattr(assistant.engines, "build_engine", recorded_build)
    monkeypatch.setattr(alignment.training, "train_stage", recorded_train)
    loaded = make_settings()
    question = [{"role": "user", "content": "How long do refunds take?"}]
    with Answerer(loaded.settings, "transformers") as answerer:
        base = model_by_spec("base", loaded.settings)
        assert len(answerer.answer(base, [question], 6)) == 1  # the bench's base-model test pass
        config = load_align_settings(None, FAST | {"gate.margin": -1.0})
        report = AlignPipeline(loaded, config, Console(stderr=True, quiet=True), answerer).run(
            AlignRequest([DEMO / "lumen-support.jsonl"], progress=False))
        assert report.promoted
        registered = model_by_spec("current", loaded.settings)
        assert Path(registered.path) == report.version.model_dir  # the registry's copy of the candidate
        assert len(answerer.answer(registered, [question], 6)) == 1  # the bench's aligned-model test pass
    assert [e[0] for e in events] == ["start", "train", "train", "start"]
    assert events[0][1] == base.path and "align-runs" in events[-1][1]  # the candidate, before it was registered
    assert all(e[2] == 0 for e in events if e[0] == "train")
    assert not running
