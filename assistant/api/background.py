"""Run the app with uvicorn in a background thread (benchmarks and integration tests use real HTTP)."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI


class BackgroundServer:
    """`with BackgroundServer(app) as url:` serves `app` (lifespan included) until the block ends."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int | None = None,
                 startup_timeout_s: float = 600):
        self.host = host
        # bound here, handed to uvicorn: no other process can take the port between choosing and listening
        self.socket = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((host, port or 0))
        self.port = self.socket.getsockname()[1]
        self.startup_timeout_s = startup_timeout_s
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # not the main thread
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="assistant-api", daemon=True)

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
        self.socket.close()
