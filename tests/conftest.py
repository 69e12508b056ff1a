"""Shared fixtures: a tiny Llama built here, settings in a temp home, an app on the transformers engine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.tiny_model import build_tiny_llama


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def default_model_dir(tmp_path_factory) -> Path:
    """The packaged default model (SmolLM2 GGUF) converted once for the whole session."""
    from assistant.model_files import resolve_model

    cache = Path(os.environ.get("ASSISTANT_TEST_MODEL_CACHE", tmp_path_factory.mktemp("models")))
    return Path(resolve_model("default", cache).path)


@pytest.fixture
def make_settings(tmp_path, tiny_model_dir):
    from assistant.config import load_settings

    def make(**flags):
        values = {"home": str(tmp_path / "home"), "engine": "transformers", "model": str(tiny_model_dir),
                  "generation.max_new_tokens": 12, "generation.temperature": 0.0,
                  "transformers.kv_cache_tokens": 4096, "transformers.max_batch_tokens": 512,
                  "retrieval.enabled": False}
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
