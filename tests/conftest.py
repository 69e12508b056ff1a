"""Shared fixtures: a tiny Llama built here, settings in a temp home, an app on the transformers engine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from tests.tiny_model import build_tiny_llama

# a developer's own settings never reach the tests: no ASSISTANT_* variables, no ~/.assistant (HOME is a fresh
# folder), no ./assistant.yaml (see `no_settings_file`)
for _name in [n for n in os.environ if n.startswith("ASSISTANT_") and n != "ASSISTANT_TEST_MODEL_CACHE"]:
    del os.environ[_name]
os.environ["HOME"] = tempfile.mkdtemp(prefix="assistant-tests-home-")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def no_settings_file(monkeypatch, tmp_path_factory):
    """`load_settings` looks for ./assistant.yaml: in the tests it finds none, wherever pytest runs."""
    monkeypatch.setattr("assistant.config.DEFAULT_CONFIG_FILE", str(tmp_path_factory.getbasetemp() / "none.yaml"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The packaged default model (SmolLM2 GGUF) converted once for the whole session."""
    from assistant.model_files import resolve_model

    cache = Path(os.environ.get("ASSISTANT_TEST_MODEL_CACHE", tmp_path_factory.mktemp("models")))
    return Path(resolve_model("default", cache).path)


@pytest.fixture(scope="session")
def shared_vllm_url(default_model_dir, tmp_path_factory) -> str:
    """One real vLLM server on the default model for the whole session (`llm_url` for the tests that need a real
    model but not our management of its process: the vLLM integration tests start their own)."""
    from assistant.config import VLLMSettings
    from assistant.engines.vllm_process import VLLMProcess, vllm_installed
    from assistant.ports import free_port

    if not vllm_installed():
        pytest.skip("vLLM is not installed")
    process = VLLMProcess(str(default_model_dir), "SmolLM2-135M-Instruct", VLLMSettings(port=free_port()),
                          tmp_path_factory.mktemp("vllm-logs"))
    process.start(progress=False)
    yield process.base_url
    process.terminate()


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")  # .ci/run starts a server and sets it


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The store's database, each kind in turn: a SQLite file, or a PostgreSQL database emptied for the test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    if not POSTGRES_URL:
        pytest.skip("no PostgreSQL server: set TEST_POSTGRES_URL (.ci/run starts one)")
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def make_settings(request, tmp_path, tiny_model_dir):
    """Settings in a temp home; a module with `pytest.mark.usefixtures("database_url")` runs on both databases."""
    from assistant.config import load_settings

    database = request.getfixturevalue("database_url") if "database_url" in request.fixturenames else None

    def make(**flags):
        values = {"home": str(tmp_path / "home"), "engine": "transformers", "model": str(tiny_model_dir),
                  "generation.max_new_tokens": 12, "generation.temperature": 0.0,
                  "transformers.kv_cache_tokens": 4096, "transformers.max_batch_tokens": 512,
                  "retrieval.enabled": False, "auth.required": False,  # keys: tests/test_access.py
                  "sentiment.enabled": False}  # the monitor runs where a test asks for it (test_sentiment_*.py)
        if database:
            values["database_url"] = database
        values.update(flags)
        return load_settings(flags=values, environ={})

    return make


@pytest.fixture
def make_client(make_settings):
    """A TestClient on the full app (API + chat page) over the tiny model; the engine runs for real."""
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    from assistant.runtime import build_service

    clients = []

    def make(**flags):
        service = build_service(make_settings(**flags))
        client = TestClient(create_app(service))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
