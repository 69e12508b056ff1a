"""Serves the embeddable widget script at /widget.js (the script itself is ui/static/widget.js)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse

from assistant.conversation import ConversationService

WIDGET_JS = Path(__file__).parent / "static" / "widget.js"


def mount(app: FastAPI, service: ConversationService) -> None:
    """Entry point of the `assistant.views` group."""

    @app.get("/widget.js", include_in_schema=False)
    async def widget_js() -> FileResponse:
        return FileResponse(WIDGET_JS, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"})
