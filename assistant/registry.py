"""The model registry: every aligned version with its lineage, data, config and metrics; which one serves.

Layout under `<home>/registry/`:
    versions/v3/version.json   id, parent, base model, created, data hash, config, metrics, decision, file digest
    versions/v3/model/         merged weights (an HF folder any engine loads)
    versions/v3/adapters/      the LoRA adapters that produced it (sft/, dpo/, kto/)
    active.json                {"active": "v3", "history": ["v1", "v3"]}  (history drives rollback)

Every write goes to a temporary file or folder first and is swapped in with `os.replace`, so a failed or
interrupted run never changes a registered version or what serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError

_VERSION_ID = re.compile(r"^v(\d+)$")


class RegistryError(AssistantError, ValueError):
    """A registry operation cannot be done (unknown version, damaged files...); the message says why."""


@dataclass
class ModelVersion:
    id: str
    parent: str | None
    base_model: str
    created_at: str
    data_hash: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    decision: str = ""
    files_digest: str = ""
    folder: Path | None = None

    @property
    def model_dir(self) -> Path:
        assert self.folder is not None
        return self.folder / "model"

    @property
    def served_name(self) -> str:
        return f"{self.base_model}@{self.id}"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("folder")
        return data


def files_digest(folder: Path) -> str:
    """A digest of the weight and config files of a model folder (names, sizes and contents)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with path.open("rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


class ModelRegistry:
    """Registered model versions under one folder; safe to read while another process promotes."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.versions_dir = self.root / "versions"

    @property
    def active_file(self) -> Path:
        return self.root / "active.json"

    def _state(self) -> dict[str, Any]:
        if not self.active_file.is_file():
            return {"active": None, "history": []}
        try:
            return json.loads(self.active_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{self.active_file} is damaged ({exc}); fix or delete it") from exc

    def list(self) -> list[ModelVersion]:
        if not self.versions_dir.is_dir():
            return []
        found = [self._read(p) for p in self.versions_dir.iterdir() if _VERSION_ID.match(p.name)]
        return sorted(found, key=lambda v: int(v.id[1:]))

    def _read(self, folder: Path) -> ModelVersion:
        info = folder / "version.json"
        try:
            data = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{info} cannot be read ({exc})") from exc
        return ModelVersion(**data, folder=folder)

    def get(self, version_id: str) -> ModelVersion:
        folder = self.versions_dir / version_id
        if not _VERSION_ID.match(version_id) or not (folder / "version.json").is_file():
            known = ", ".join(v.id for v in self.list()) or "none yet"
            raise RegistryError(f"no model version '{version_id}' in {self.root} (registered: {known})")
        return self._read(folder)

    def active_id(self) -> str | None:
        return self._state().get("active")

    def active(self) -> ModelVersion | None:
        active = self.active_id()
        return self.get(active) if active else None

    def supported_sentence_rate(self, served_name: str) -> float | None:
        """The share of supported answer sentences the promotion gate measured for a served version
        (`base@v3`), or None when none was measured (the base model, an unknown name)."""
        version_id = served_name.rpartition("@")[2]
        if not _VERSION_ID.match(version_id) or not (self.versions_dir / version_id / "version.json").is_file():
            return None
        measured = self.get(version_id).metrics.get("candidate", {}).get("supported_sentence_rate")
        return float(measured) if isinstance(measured, int | float) else None

    def next_id(self) -> str:
        numbers = [int(v.id[1:]) for v in self.list()]
        return f"v{max(numbers, default=0) + 1}"

    def register(self, model_dir: Path, version: ModelVersion, adapters: dict[str, Path] | None = None) -> ModelVersion:
        """Move a trained model folder (and its adapters) into the registry as a new version."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        version.id = version.id or self.next_id()
        staging = self.versions_dir / f".{version.id}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        shutil.copytree(model_dir, staging / "model")
        for name, path in (adapters or {}).items():
            shutil.copytree(path, staging / "adapters" / name)
        version.files_digest = files_digest(staging / "model")
        version.created_at = version.created_at or datetime.now(UTC).isoformat(timespec="seconds")
        _write_json(staging / "version.json", version.as_dict())
        target = self.versions_dir / version.id
        if target.exists():
            raise RegistryError(f"version {version.id} already exists in {self.root}")
        os.replace(staging, target)
        version.folder = target
        return version

    def update(self, version: ModelVersion) -> None:
        """Rewrite a version's description (metrics, decision); its weights never change."""
        _write_json(self.get(version.id).folder / "version.json", version.as_dict())

    def verify(self, version: ModelVersion) -> None:
        """Refuse a version whose model folder no longer matches what was registered."""
        if not (version.model_dir / "config.json").is_file():
            raise RegistryError(f"version {version.id}: {version.model_dir} has no config.json (files removed?)")
        actual = files_digest(version.model_dir)
        if actual != version.files_digest:
            raise RegistryError(f"version {version.id}: the files in {version.model_dir} do not match the registry "
                                f"(digest {actual}, registered {version.files_digest}); it will not be served")

    def promote(self, version_id: str) -> ModelVersion:
        version = self.get(version_id)
        self.verify(version)
        state = self._state()
        history = [v for v in state.get("history", []) if v != version_id] + [version_id]
        _write_json(self.active_file, {"active": version_id, "history": history})
        return version

    def rollback(self) -> ModelVersion | None:
        """Serve the previously active version again (None: back to the base model)."""
        state = self._state()
        history = list(state.get("history", []))
        if not state.get("active"):
            raise RegistryError("nothing to roll back: the base model is serving")
        history.pop()
        while history:
            try:
                previous = self.get(history[-1])
                self.verify(previous)
                break
            except RegistryError:
                history.pop()  # a removed or damaged version is skipped
        _write_json(self.active_file, {"active": history[-1] if history else None, "history": history})
        return self.get(history[-1]) if history else None


# a retrieval version is its encoder's folder, with its reranker in this subfolder and the fusion weights chosen
# with it in this file
RERANKER_FOLDER = "reranker"
SEARCH_FILE = "search.json"


def retrieval_registry(home: Path) -> ModelRegistry:
    """The encoders and rerankers `assistant align retrieval` made (the same rules as chat models)."""
    return ModelRegistry(Path(home).expanduser() / "retrieval-registry")


def retrieval_models(version: ModelVersion) -> dict[str, Any]:
    """What a retrieval version sets: its encoder folder, its reranker folder (when it was kept) and the fusion
    weights chosen with them (when it has them)."""
    models: dict[str, Any] = {"encoder": str(version.model_dir)}
    reranker = version.model_dir / RERANKER_FOLDER
    if (reranker / "config.json").is_file():
        models["reranker"] = str(reranker)
    search = version.model_dir / SEARCH_FILE
    if search.is_file():
        try:
            weights = json.loads(search.read_text(encoding="utf-8"))
            models |= {k: float(weights[k]) for k in ("dense_weight", "lexical_weight")}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RegistryError(f"{search} cannot be read ({exc}); roll back or register the version again") from exc
    return models
