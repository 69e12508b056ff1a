"""`align.yaml`: what `assistant align` does, with CPU-safe defaults (DESIGN.md: TRL on CPU).

Every key is optional; `data/align.yaml` documents them all. Errors name the file, the key and the value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from assistant.config import ConfigError, SettingsSection, nest, read_yaml, validation_problems
from assistant.redaction import KINDS


class DataSettings(SettingsSection):
    heldout_fraction: float = Field(0.15, ge=0, lt=1, description="share of conversations kept out of training")
    max_heldout: int = Field(100, ge=0, description="cap on held-out examples (evaluation time)")
    grounded: bool = Field(True, description="training prompts include the passages retrieval returns")
    cite_sources: bool = Field(True, description="append [n] to a reply that restates source n")
    dedup: bool = True
    redact: list[str] = Field(default_factory=lambda: list(KINDS), description="PII kinds to redact")
    redact_keep: list[str] = Field(default_factory=list, description="exact strings never redacted "
                                                                     "(the company's own email, phone)")
    replay: list[str] = Field(default_factory=list, description="general transcripts mixed in against forgetting")
    replay_fraction: float = Field(0.0, ge=0, le=1, description="replay rows per domain row")
    seed: int = 13


class LoraSettings(SettingsSection):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1, description="LoRA dropout (0: off; its random masks were a seventh "
                                                         "of a CPU training row's time, and without them the "
                                                         "bank-FAQ gain held: +0.31)")
    target_modules: str | list[str] = "all-linear"
    top_layers: int | None = Field(None, ge=1, description="adapt only the top N transformer layers: the backward "
                                                           "pass stops below them (null: every layer)")


class SFTSettings(SettingsSection):
    enabled: bool = True
    epochs: float = Field(1.0, gt=0, description="one epoch at 5e-4 gained more on the bank-FAQ bench than two at "
                                                 "2e-4, in half the time (bench/results/answer-head-20261204.md)")
    max_steps: int = Field(-1, description="stop after this many steps (-1: epochs decide)")
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(4, ge=1)
    grad_accum: int = Field(1, ge=1)
    max_length: int = Field(768, ge=32)


class KTOSettings(SettingsSection):
    """A preference stage on top of the previous one (KTO; DPO adds its own keys)."""

    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(5e-5, gt=0)
    beta: float = Field(0.1, gt=0)
    batch_size: int = Field(2, ge=1)
    max_length: int = Field(768, ge=32)


class DPOSettings(KTOSettings):
    enabled: bool = True
    grad_accum: int = Field(1, ge=1)
    pairs_from_model: int = Field(32, ge=0, description="transcript turns answered by the current model to make "
                                                         "pairs (chosen = the human reply); 0 = off")


class ActionSettings(SettingsSection):
    """Action decisions (`--actions` files): how many to train on and to hold out."""

    max_examples: int = Field(960, ge=1, description="decision rows trained on, half calls where the files allow "
                                                     "(about an hour of SFT on a 2-core CPU for SmolLM2)")
    heldout: int = Field(100, ge=0, description="decision rows held out for the gate")


class GateSettings(SettingsSection):
    metric: Literal["token_f1", "rouge_l", "gold_citation_rate"] = "token_f1"
    margin: float = Field(0.0, description="the candidate must beat the current version by at least this much")
    max_supported_drop: float | None = Field(
        0.05, ge=0, le=1, description="the candidate's written sentences a source supports (on the held-out "
                                      "prompts) may fall at most this far below the current model's share: a model "
                                      "that invents more is not better (null: not checked)")
    max_new_tokens: int = Field(128, ge=1)
    promote: bool = Field(True, description="promote automatically when the gate passes")


class TrainingSettings(SettingsSection):
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores)")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 on a GPU that supports it, float32 on a CPU (bf16 mixed precision on an "
                            "AVX512-BF16 CPU was not faster in a whole run: bench/results/align-20261204-105548.md)")
    micro_batch: int | None = Field(
        None, ge=1, description="sequences in one forward pass of SFT and DPO; the rest of `batch_size` is "
                                "accumulated, so the training is the same (null: the whole batch: what its rows "
                                "share, the system prompt and rules, runs once; each row then runs unpadded, so no "
                                "attention mask is needed)")
    prompt_gradient: bool = Field(
        True, description="false: the prompt (system prompt, passages, history) runs without a gradient and only the "
                          "answer is back-propagated through: SFT 1.76x and DPO 2.62x faster per row on a CPU, but "
                          "the adapter no longer learns how the passages are represented (bank-FAQ bench gain +0.20 "
                          "instead of +0.30: bench/results/prompt-once-20261204.md)")
    save_steps: int = Field(50, ge=1, description="checkpoint every N steps (a rerun resumes from the last)")
    logging_steps: int = Field(5, ge=1)


class AlignSettings(SettingsSection):
    data: DataSettings = Field(default_factory=DataSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    sft: SFTSettings = Field(default_factory=SFTSettings)
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    kto: KTOSettings = Field(default_factory=KTOSettings)
    actions: ActionSettings = Field(default_factory=ActionSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    training: TrainingSettings = Field(default_factory=TrainingSettings)


# named sets of overrides (`assistant align --profile NAME`): dotted keys as for --set
PROFILES: dict[str, dict] = {
    "default": {},
    # a demo or a first look: a few model-made pairs, a smaller gate with shorter answers
    "quick": {"dpo.pairs_from_model": 8, "data.max_heldout": 24, "gate.max_new_tokens": 64},
}


def load_align_settings(path: str | Path | None = None, overrides: dict | None = None,
                        profile: str = "default") -> AlignSettings:
    """The file's values over the defaults, then the profile's, then `overrides` (dotted keys, e.g.
    {"sft.max_steps": 2})."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown align profile {profile!r}; choose from {', '.join(PROFILES)}")
    flat = read_yaml(Path(path)) if path else {}
    flat.update(PROFILES[profile])
    flat.update(overrides or {})
    try:
        return AlignSettings.model_validate(nest(flat))
    except ValidationError as exc:
        raise ConfigError(f"{path or 'align settings'}: " + validation_problems(exc, flat)) from exc
