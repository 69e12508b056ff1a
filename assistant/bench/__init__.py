"""Benchmarks behind `assistant bench ...`; results go to bench/results/."""

from __future__ import annotations

import json
import time
from pathlib import Path


def write_results(out: str | Path, name: str, result: dict, markdown: str, stamp: str | None = None) -> Path:
    """`<out>/<name>-<time>.json` and `.md` side by side; returns the JSON path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = out / f"{name}-{stamp or time.strftime('%Y%m%d-%H%M%S')}"
    base.with_suffix(".json").write_text(json.dumps(result, indent=2))
    base.with_suffix(".md").write_text(markdown)
    return base.with_suffix(".json")
