"""The training stages on TRL with PEFT LoRA: SFT, DPO and KTO, each merged into a plain model folder.

DPO and KTO train a fresh adapter on the model the previous stage produced; the reference model is that same
model with the adapter off (`ref_model=None` + `peft_config`), so no second copy is held in memory.
CPU settings follow DESIGN.md (use_cpu, no bf16, no gradient checkpointing, one sequence per forward pass with the
batch accumulated, a DPO pair's prompt run once for both answers); on a GPU bf16 and whole batches are used.
A stage checkpoints every `training.save_steps` and a rerun on the same data resumes from the last checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from alignment.config import AlignSettings

log = logging.getLogger(__name__)


@dataclass
class StageResult:
    stage: str
    examples: int
    steps: int
    loss: float | None
    seconds: float
    tokens: int
    model_dir: Path
    adapter_dir: Path
    dropped_too_long: int = 0
    steady_tokens_per_s: float | None = None  # after the first step (start-up and warm-up excluded)
    resumed_from: int = 0  # the checkpoint step a rerun continued from
    steps_run: int = 0  # steps done by this call

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def summary(self) -> dict:
        return {"examples": self.examples, "steps": self.steps,
                "loss": round(self.loss, 4) if self.loss is not None else None,
                "seconds": round(self.seconds, 1), "tokens": self.tokens,
                "tokens_per_s": round(self.tokens_per_second, 1),
                "steady_tokens_per_s": round(self.steady_tokens_per_s, 1) if self.steady_tokens_per_s else None,
                "dropped_too_long": self.dropped_too_long, "resumed_from": self.resumed_from}


def _step_clock():
    """A trainer callback that records (time, tokens seen) at the end of every step."""
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self):
            self.marks: list[tuple[float, int]] = []

        def on_step_end(self, args, state, control, **kwargs):
            self.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        def steady_rate(self) -> float | None:
            if len(self.marks) < 3:
                return None
            (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
            return (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else None

    return StepClock()


def bf16_by_default() -> bool:
    """`training.precision: auto`: bf16 on a GPU that supports it. Not on a CPU: bf16 mixed precision on an
    AVX512-BF16 CPU made one LoRA step 1.2x faster in isolation, but a whole run spent a third of its CPU time in
    the kernel (page faults of the large bf16 copies), no faster per token than float32."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def uses_bf16(precision: str) -> bool:
    return precision == "bfloat16" or (precision == "auto" and bf16_by_default())


def _device_kwargs(precision: str = "auto") -> dict:
    """Trainer arguments for this machine. On a CPU, bf16 is mixed precision (float32 weights, bf16 matmuls under
    autocast); bf16 weights were slower still there."""
    import torch

    bf16 = uses_bf16(precision)
    return {"use_cpu": not torch.cuda.is_available(), "bf16": bf16, "gradient_checkpointing": False}


def micro_batch(stage: str, batch: int, setting: int | None) -> int:
    """Sequences per forward pass: `training.micro_batch`, by default the whole batch (`run_prompt_once` runs the
    rows' shared prefix once, then each row unpadded). KTO keeps its batch: it estimates its KL term across it."""
    if stage == "kto":
        return batch
    micro = setting or batch
    if micro > batch or batch % micro:
        raise ValueError(f"training.micro_batch={micro} must divide {stage}.batch_size={batch}")
    return micro


def run_prompt_once(model, prompt_gradient: bool = True, rows_apart: bool = True) -> None:
    """Run what a batch's rows share once, through the model's backbone only, then each row's own prompt and its
    answer after it.

    - A DPO pair's chosen and rejected share their whole prompt, which is most of their tokens; SFT rows share the
      system prompt and rules (a sixth of a bank-FAQ batch's tokens). Padded together they also need an attention
      mask, and on a CPU SDPA then builds the attention matrix in every layer.
    - Without Triton (on a CPU), TRL's fused LM head scores every position of a row, prompt included, so a 650-token
      SFT row spent a third of its time projecting prompt positions onto the 49k-token vocabulary, forward and back.
      Here the head runs over the answer's positions only.

    The shared prefix runs once into a key/value cache; each row continues from a copy of it, unpadded; the gradient
    flows back through the caches into the prompts, unless `prompt_gradient` is false (then no prompt token is
    back-propagated through). Per-token outputs are laid out as the padded forward lays them out, with zeros where no
    answer token is scored (the trainer's masked sums ignore those). `rows_apart` false (a GPU, where one padded pass
    is faster than rows one by one): only rows that share their whole prompt run so, unless `prompt_gradient` is
    false. Anything else goes through the model's own forward."""
    import contextlib
    import types

    import torch
    import torch.nn.functional as F
    from transformers import DynamicCache

    padded_forward = model.forward

    def after_prompts(config, input_ids, labels, lengths, starts, shared, kwargs) -> list:
        backbone = model.get_base_model().base_model  # the transformer without its LM head
        no_gradient = contextlib.nullcontext() if prompt_gradient else torch.no_grad()
        prefix = DynamicCache(config=config)
        if shared:
            with no_gradient:
                backbone(input_ids=input_ids[:1, :shared], past_key_values=prefix, use_cache=True)
        prompts, rows = {}, []  # each distinct prompt (a DPO pair's chosen and rejected share one) runs once
        for i, (n, start) in enumerate(zip(lengths, starts, strict=True)):
            own = tuple(input_ids[i, shared:start - 1].tolist())  # the row's own prompt, up to its last token
            if own not in prompts:
                prompts[own] = copy_of(prefix, config)
                if own:
                    with no_gradient:
                        backbone(input_ids=input_ids[i:i + 1, shared:start - 1], past_key_values=prompts[own],
                                 use_cache=True)
            # from the prompt's last token on, each token scored against the next one
            scored = F.pad(labels[i:i + 1, start:n], (0, 1), value=-100)
            rows.append(padded_forward(input_ids=input_ids[i:i + 1, start - 1:n], shift_labels=scored,
                                       past_key_values=copy_of(prompts[own], config), fused_lm_head=True, **kwargs))
        return rows

    def copy_of(cache, config):
        """A cache to continue from: the same tensors, so the gradient flows back into the ones it was made from."""
        layers = [(k, v) for k, v, _ in cache]
        return DynamicCache(ddp_cache_data=layers) if layers and layers[0][0] is not None else DynamicCache(
            config=config)

    def forward(self, input_ids=None, attention_mask=None, labels=None, fused_lm_head=False, **kwargs):
        training = fused_lm_head and labels is not None and "position_ids" not in kwargs  # the trainers' call
        lengths = _right_padded_lengths(input_ids, attention_mask) if training else None
        starts = _answer_starts(labels, lengths) if lengths else None
        shared = _shared_prefix(input_ids, min(starts) - 1) if starts else 0
        if starts and (rows_apart or not prompt_gradient or shared == min(starts) - 1 == max(starts) - 1):
            rows = after_prompts(self.config, input_ids, labels, lengths, starts, shared, kwargs)
            return _merge_rows(rows, lengths, starts, input_ids.size(1))
        return padded_forward(input_ids=input_ids, attention_mask=attention_mask, labels=labels,
                              fused_lm_head=fused_lm_head, **kwargs)

    model.forward = types.MethodType(forward, model)


def _right_padded_lengths(input_ids, attention_mask) -> list[int] | None:
    """Each row's length in a right-padded batch (every row whole without a mask), else None."""
    import torch

    if input_ids is None:
        return None
    if attention_mask is None:
        return [input_ids.size(1)] * input_ids.size(0)
    lengths = attention_mask.sum(dim=1, keepdim=True)
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)[None, :]
    return lengths.squeeze(1).tolist() if bool((attention_mask.bool() == (positions < lengths)).all()) else None


def _answer_starts(labels, lengths: list[int]) -> list[int] | None:
    """Where each row's first answer token is, when every row has a prompt and an answer, else None."""
    starts = []
    for row, n in zip(labels, lengths, strict=True):
        scored = (row[:n] != -100).nonzero()
        if not len(scored) or int(scored[0]) < 2:
            return None
        starts.append(int(scored[0]))
    return starts


def _shared_prefix(input_ids, most: int) -> int:
    """How many leading tokens (at most `most`) every row of the batch has in common."""
    same = (input_ids[:, :most] == input_ids[:1, :most]).all(dim=0)
    differs = (~same).nonzero()
    return int(differs[0]) if len(differs) else most


def _merge_rows(rows: list, lengths: list[int], starts: list[int], width: int):
    """Per-row outputs from position `start - 1` on, back into one batch laid out as the padded forward lays it
    out: position j scores token j + 1, zeros elsewhere."""
    import torch
    import torch.nn.functional as F

    merged = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if not isinstance(values[0], torch.Tensor):
            merged[key] = values[0]
        elif values[0].dim() == 0:
            merged[key] = torch.stack(values).mean()
        else:  # [1, n - start + 1, ...] -> [rows, width - 1, ...]
            merged[key] = torch.cat([F.pad(v[:, :n - start], (0, 0) * (v.dim() - 2) + (start - 1, width - n))
                                     for v, n, start in zip(values, lengths, starts, strict=True)])
    return type(rows[0])(**merged)


def _sequence_tokens(tokenizer, prompt: list[dict], completion: list[dict]) -> int:
    encoded = tokenizer.apply_chat_template(prompt + completion, tokenize=True)
    return len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)


def _fits(tokenizer, row: dict, max_length: int) -> bool:
    answers = [row[k] for k in ("completion", "chosen", "rejected") if k in row]
    return all(_sequence_tokens(tokenizer, row["prompt"], a) <= max_length for a in answers)


def _lora_config(config: AlignSettings, model):
    from peft import LoraConfig
    from torch import nn

    lora = config.lora
    layers, targets = model.config.num_hidden_layers, lora.target_modules
    if lora.top_layers is None or lora.top_layers >= layers:
        return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                          task_type="CAUSAL_LM")
    if targets == "all-linear":  # PEFT takes a layer range only with module names: every linear one but the head
        targets = sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                          if isinstance(module, nn.Linear) and ".layers." in f".{name}"})
    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets,
                      task_type="CAUSAL_LM", layers_to_transform=list(range(layers - lora.top_layers, layers)))


def _trainer_parts(stage: str, config: AlignSettings):
    if stage == "sft":
        from trl import SFTConfig, SFTTrainer

        section = config.sft
        # similar lengths in a batch: less padding, which is most of the waste on a CPU
        return SFTTrainer, SFTConfig, section, {"completion_only_loss": True,
                                                "train_sampling_strategy": "group_by_length"}
    if stage == "dpo":
        from trl import DPOConfig, DPOTrainer

        section = config.dpo
        return DPOTrainer, DPOConfig, section, {"beta": section.beta}
    from trl import KTOConfig, KTOTrainer

    section = config.kto
    return KTOTrainer, KTOConfig, section, {"beta": section.beta}


def train_stage(stage: str, model_dir: Path, rows: list[dict], config: AlignSettings, work_dir: Path,
                progress: bool = True) -> StageResult:
    """Train one LoRA stage on `rows` (TRL conversational format) and save adapter + merged model."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if config.training.threads:
        torch.set_num_threads(config.training.threads)
    trainer_class, config_class, section, extra = _trainer_parts(stage, config)
    stage_dir = work_dir / stage
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kept = [r for r in rows if _fits(tokenizer, r, section.max_length)]
    if not kept:
        raise ValueError(f"{stage}: every example is longer than max_length={section.max_length} tokens; "
                         f"raise {stage}.max_length in align.yaml")
    device = _device_kwargs(config.training.precision)
    dtype = torch.bfloat16 if device["bf16"] and not device["use_cpu"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    micro = micro_batch(stage, section.batch_size, config.training.micro_batch)
    args = config_class(
        output_dir=str(stage_dir / "checkpoints"), num_train_epochs=section.epochs, max_steps=section.max_steps,
        learning_rate=section.learning_rate, per_device_train_batch_size=micro,
        gradient_accumulation_steps=getattr(section, "grad_accum", 1) * section.batch_size // micro,
        max_length=section.max_length,
        logging_steps=config.training.logging_steps, save_steps=config.training.save_steps, save_total_limit=2,
        report_to="none", seed=config.data.seed, disable_tqdm=not progress, lr_scheduler_type="cosine",
        warmup_steps=0, dataloader_num_workers=0, include_num_input_tokens_seen="non_padding", **device, **extra,
    )
    clock = _step_clock()
    trainer = trainer_class(model=model, args=args, train_dataset=Dataset.from_list(kept),
                            processing_class=tokenizer, callbacks=[clock],
                            peft_config=_lora_config(config, model))
    if stage != "kto":  # KTO's batches mix prompts
        run_prompt_once(trainer.model, config.training.prompt_gradient, rows_apart=device["use_cpu"])
    checkpoints = sorted((stage_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if checkpoints else None)
    seconds = time.perf_counter() - started
    steps = trainer.state.global_step
    tokens = trainer.state.num_input_tokens_seen  # what the model really processed, padding excluded
    adapter_dir, merged_dir = stage_dir / "adapter", stage_dir / "model"
    if trainer.accelerator.is_main_process:  # under `accelerate launch`, one process writes
        trainer.model.save_pretrained(adapter_dir)
        merged = trainer.model.merge_and_unload().to(torch.float32)
        merged.save_pretrained(merged_dir)
        tokenizer.save_pretrained(merged_dir)
        del merged
    trainer.accelerator.wait_for_everyone()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result = StageResult(stage, len(kept), steps, output.training_loss if losses or steps else None, seconds,
                         tokens, merged_dir, adapter_dir, len(rows) - len(kept), clock.steady_rate(),
                         int(checkpoints[-1].name.split("-")[-1]) if checkpoints else 0, len(clock.marks))
    (stage_dir / "result.json").write_text(json.dumps(result.summary()))
    del trainer, model
    return result
