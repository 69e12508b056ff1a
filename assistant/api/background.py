"""Run the app with uvicorn in a background thread (benchmarks and integration tests use real HTTP)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from assistant.ports import free_port


class BackgroundServer:
    """`with BackgroundServer(app) as url:` serves `app` (lifespan included) until the block ends."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout_s: float = 600):
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout_s = startup_timeout_s
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, name="assistant-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the API server stopped during start-up (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the API server did not start within {self.startup_timeout_s:.0f}s")
            time.sleep(0.1)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)
