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


@pytest.fixture(scope="session")
def demo_knowledge(tmp_path_factory) -> Path:
    """The demo help center (data/help-center) ingested once for the session, as a first start ingests it (default
    retrieval settings): the `knowledge` folder of a home."""
    from assistant.config import RetrievalSettings
    from assistant.grounding import Grounder

    folder = tmp_path_factory.mktemp("demo") / "knowledge"
    Grounder(RetrievalSettings(), folder).prepare(progress=False)
    return folder


@pytest.fixture
def with_demo_knowledge(demo_knowledge):
    """`with_demo_knowledge(home)`: gives `home` a copy of the demo knowledge base, for tests that serve the demo
    help center but are not about ingesting it (tests/test_grounded_answers.py ingests it on a first start)."""
    import shutil

    def copy(home: Path) -> Path:
        return Path(shutil.copytree(demo_knowledge, Path(home) / "knowledge"))

    return copy


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")  # .ci/run starts a server and sets it


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """The store's database, each kind in turn: a SQLite file, or a PostgreSQL database emptied for the test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return emptied_postgresql()


@pytest.fixture
def postgresql_url() -> str:
    """An emptied PostgreSQL database, for what only PostgreSQL does (replicas share one)."""
    return emptied_postgresql()


def emptied_postgresql() -> str:
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
                  "sentiment.enabled": False,  # the monitor runs where a test asks for it (test_sentiment_*.py)
                  "recommend.mode": "off"}  # recommendations where a test asks for them (test_recommend_*.py)
        if database:
            values["database_url"] = database
        values.update(flags)
        return load_settings(flags=values, environ={})

    return make


def pytest_configure(config):
    config.addinivalue_line("markers", "views(*names): make_client mounts these Gradio views (none named: all of "
                                       "them); without the mark, the API alone")
    config.addinivalue_line("markers", "real_engine: make_client serves the tiny model on the transformers engine "
                                       "instead of the fake engine (tests/fake_engine.py)")


@pytest.fixture
def make_client(request, make_settings):
    """A TestClient on the app over the tiny model's folder. By default the API alone, answered by the fake engine
    (tests/fake_engine.py: instant start and stop, the real model's name and context window); a test that needs
    the views (/, /chat, /operator, /sentiment, /widget.js) says which with `@pytest.mark.views(...)` (or passes
    `views=`), a test about the engine or the model runs the real one with `@pytest.mark.real_engine` (or
    `real_engine=True`)."""
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    from assistant.runtime import build_service
    from tests.fake_engine import FakeEngine

    marked = request.node.get_closest_marker("views")
    default_views = (set(marked.args) or True) if marked else False
    default_real = request.node.get_closest_marker("real_engine") is not None
    clients = []

    def make(views=None, real_engine=None, **flags):
        views = default_views if views is None else views
        real = default_real if real_engine is None else real_engine
        service = build_service(make_settings(**flags), make_engine=None if real else FakeEngine.build)
        client = TestClient(create_app(service, mount_views=views))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()
