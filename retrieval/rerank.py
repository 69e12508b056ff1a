"""Optional cross-encoder reranking of the top candidates (any local sentence-transformers CrossEncoder folder, e.g.
the one `assistant align retrieval` trains). On a CPU with bfloat16 matrix units (AMX, AVX512-BF16) it scores in
bfloat16: about 2.4 times faster than float32 for the same order (measured on 20 bank FAQ candidates)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


class Reranker:
    def __init__(self, folder: str):
        from sentence_transformers import CrossEncoder

        path = Path(folder).expanduser()
        if not (path / "config.json").is_file():
            raise ValueError(f"reranker '{folder}' is not a local cross-encoder folder (no config.json)")
        self.model = CrossEncoder(str(path), device="cpu", local_files_only=True)
        self.bfloat16 = bfloat16_is_fast()

    def score(self, query: str, texts: list[str]) -> list[float]:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bfloat16):
            scores = self.model.predict([(query, t) for t in texts], batch_size=32, show_progress_bar=False)
        return [float(s) for s in scores]


def bfloat16_is_fast() -> bool:
    """The CPU multiplies bfloat16 matrices in hardware (AMX or AVX512-BF16; Linux's /proc/cpuinfo says)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


@lru_cache(maxsize=2)
def load_reranker(folder: str) -> Reranker:
    return Reranker(folder)
