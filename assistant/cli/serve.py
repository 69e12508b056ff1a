"""Start the assistant: prepare the model, start vLLM (or the transformers engine), serve the API and chat page.

With nothing configured it runs the demo company on the packaged default model. Ctrl-C stops everything,
vLLM included (its engine core, or its managed server: `vllm.mode`).
"""

from __future__ import annotations

import argparse

from assistant.cli.options import add_settings_flags, load_from_args

EXAMPLES = """examples:
  assistant serve
  assistant serve --engine transformers --port 8080
  assistant serve --model ./my-model-folder
  assistant serve --llm-url http://gpu-box:8000/v1
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_settings_flags(parser)
    parser.add_argument("--no-ui", action="store_true", help="serve the API only, without the Gradio views")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def run(args: argparse.Namespace) -> int:
    import logging

    import uvicorn
    from rich.console import Console

    from assistant.ports import port_is_free
    from assistant.runtime import build_service

    console = Console(stderr=True)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_from_args(args)
    settings = loaded.settings
    if settings.privacy.redact_logs:
        from assistant.privacy import redact_logs

        redact_logs()
    if not port_is_free(settings.host, settings.port):
        console.print(f"[red]error:[/red] port {settings.port} on {settings.host} is already in use "
                      "(another `assistant serve`?): stop it or pass --port")
        return 2
    service = build_service(loaded, console=console)
    if service.grounder is not None:
        from retrieval.knowledge_base import KnowledgeBaseError

        try:
            service.grounder.knowledge_base  # noqa: B018  (loads the index: a broken one stops here, clearly)
        except KnowledgeBaseError as exc:
            console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
            return 2

    from assistant.api.app import create_app

    url = f"http://{settings.host}:{settings.port}"

    def ready() -> None:
        key_hint = " (needs a key: `assistant keys create --scope api`)" if settings.auth.required else ""
        console.print(f"\n[bold green]assistant is ready[/bold green] — chat page: {url}/chat/  "
                      f"operators: {url}/operator/  insights: {url}/insights/  API: {url}/v1{key_hint}  "
                      f"docs: {url}/docs  (Ctrl-C to stop)\n",
                      soft_wrap=True)

    app = create_app(service, mount_views=not args.no_ui, on_ready=ready)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5)
    console.print("assistant stopped (engine and vLLM processes ended)")
    return 0
