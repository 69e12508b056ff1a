"""The model registry: every aligned version with its lineage, data, config and metrics; which one serves.

Layout under `<home>/registry/`:
    versions/v3/version.json   id, parent, base model, created, data hash, config, metrics, decision, file digest
    versions/v3/model/         merged weights (an HF folder any engine loads)
    versions/v3/adapters/      the LoRA adapters that produced it (sft/, dpo/, kto/)
    active.json                {"active": "v3", "history": ["v1", "v3"]}  (history drives rollback)

When replicas share the home on PostgreSQL, the records (each version.json, active.json) are rows in that database
instead (store/registries.py, imported from the files on first use) and the folders stay on the shared home.

Every write goes to a temporary file or folder first and is swapped in with `os.replace`, so a failed or
interrupted run never changes a registered version or what serves.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from assistant.errors import AssistantError

if TYPE_CHECKING:
    from assistant.store.registries import State

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


class FileRecords:
    """A registry's records as files (one machine, or a home no database is shared on): each version's
    `version.json` and `active.json`."""

    def __init__(self, root: Path):
        self.root = root
        self.versions_dir = root / "versions"
        self.active_file = root / "active.json"

    def versions(self) -> list[dict[str, Any]]:
        if not self.versions_dir.is_dir():
            return []
        return [self._read(p / "version.json") for p in self.versions_dir.iterdir() if _VERSION_ID.match(p.name)]

    def version(self, version_id: str) -> dict[str, Any] | None:
        info = self.versions_dir / version_id / "version.json"
        return self._read(info) if _VERSION_ID.match(version_id) and info.is_file() else None

    @staticmethod
    def _read(info: Path) -> dict[str, Any]:
        try:
            return json.loads(info.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{info} cannot be read ({exc})") from exc

    def add(self, record: dict[str, Any]) -> None:
        """The version's folder already holds its `version.json` (written before the folder was swapped in)."""

    def state(self) -> State:
        if not self.active_file.is_file():
            return None, []
        try:
            data = json.loads(self.active_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"{self.active_file} is damaged ({exc}); fix or delete it") from exc
        return data.get("active"), list(data.get("history", []))

    def change_state(self, change: Callable[[State], State]) -> State:
        active, history = change(self.state())
        _write_json(self.active_file, {"active": active, "history": history})
        return active, history


class DatabaseRecords:
    """A registry's records in the PostgreSQL database replicas share (store/registries.py), named by the home's
    id and the registry's folder; the `version.json` written in each version's folder at registration stays as a
    copy for people. The first use imports the registry's file records."""

    _imported: ClassVar[set[tuple[int, str]]] = set()

    def __init__(self, repository, root: Path, home_id: str):
        self.repository, self.name, self.files = repository, f"{home_id}/{root.name}", FileRecords(root)
        key = (id(repository.database), self.name)
        if key not in self._imported:
            if repository.state(self.name) is None:
                versions, state = self.files.versions(), self.files.state()
                if versions or state[0]:
                    repository.import_once(self.name, versions, state)
            self._imported.add(key)

    def versions(self) -> list[dict[str, Any]]:
        return self.repository.versions(self.name)

    def version(self, version_id: str) -> dict[str, Any] | None:
        return self.repository.version(self.name, version_id)

    def add(self, record: dict[str, Any]) -> None:
        if not self.repository.add_version(self.name, record):
            raise RegistryError(f"version {record['id']} is already registered in {self.name}")

    def state(self) -> State:
        return self.repository.state(self.name) or (None, [])

    def change_state(self, change: Callable[[State], State]) -> State:
        return self.repository.change_state(self.name, change)


def home_records(root: Path) -> FileRecords | DatabaseRecords:
    """The records of the registry in `root`: in the database its home is shared on (replicas), else files."""
    from assistant.store.errors import SharedHomeError
    from assistant.store.registries import RegistryRepository
    from assistant.store.shared_home import registry_database

    try:
        shared = registry_database(root.parent)
    except SharedHomeError as exc:
        raise RegistryError(str(exc)) from exc
    if shared is None:
        return FileRecords(root)
    database, home_id = shared
    return DatabaseRecords(RegistryRepository(database), root, home_id)


class ModelRegistry:
    """Registered model versions under one folder; safe to read while another process promotes. Their records are
    files, or rows in the database when replicas share the home on PostgreSQL (`home_records`)."""

    def __init__(self, root: Path, records: FileRecords | DatabaseRecords | None = None):
        self.root = Path(root).expanduser()
        self.versions_dir = self.root / "versions"
        self.records = records if records is not None else home_records(self.root)

    def _version(self, record: dict[str, Any]) -> ModelVersion:
        return ModelVersion(**record, folder=self.versions_dir / record["id"])

    def list(self) -> list[ModelVersion]:
        return sorted((self._version(r) for r in self.records.versions()), key=lambda v: int(v.id[1:]))

    def get(self, version_id: str) -> ModelVersion:
        record = self.records.version(version_id) if _VERSION_ID.match(version_id) else None
        if record is None:
            known = ", ".join(v.id for v in self.list()) or "none yet"
            raise RegistryError(f"no model version '{version_id}' in {self.root} (registered: {known})")
        return self._version(record)

    def active_id(self) -> str | None:
        return self.records.state()[0]

    def active(self) -> ModelVersion | None:
        active = self.active_id()
        return self.get(active) if active else None

    def supported_sentence_rate(self, served_name: str) -> float | None:
        """The share of supported answer sentences the promotion gate measured for a served version
        (`base@v3`), or None when none was measured (the base model, an unknown name)."""
        version_id = served_name.rpartition("@")[2]
        record = self.records.version(version_id) if _VERSION_ID.match(version_id) else None
        if record is None:
            return None
        measured = record.get("metrics", {}).get("candidate", {}).get("supported_sentence_rate")
        return float(measured) if isinstance(measured, int | float) else None

    def next_id(self) -> str:
        numbers = [int(v.id[1:]) for v in self.list()]
        if self.versions_dir.is_dir():  # a folder whose record was never written still takes its number
            numbers += [int(p.name[1:]) for p in self.versions_dir.iterdir() if _VERSION_ID.match(p.name)]
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
        self.records.add(version.as_dict())
        version.folder = target
        return version

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
        self.records.change_state(lambda state: (version_id, [v for v in state[1] if v != version_id] + [version_id]))
        return version

    def rollback(self) -> ModelVersion | None:
        """Serve the previously active version again (None: back to the base model)."""

        def back(state: State) -> State:
            active, history = state
            if not active:
                raise RegistryError("nothing to roll back: the base model is serving")
            history = history[:-1]
            while history:
                try:
                    self.verify(self.get(history[-1]))
                    break
                except RegistryError:
                    history.pop()  # a removed or damaged version is skipped
            return (history[-1] if history else None), history

        active, _ = self.records.change_state(back)
        return self.get(active) if active else None


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
