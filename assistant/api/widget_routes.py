"""The widget's server side: its configuration for a public key, given only to the origins the key was made for,
and `frame-ancestors` on the chat page so only those origins may frame it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from assistant.api.request_hook import RequestHook, ResponseHeaders

router = APIRouter(prefix="/api/widget", tags=["widget"])

LABELS = {
    "en": {"title": "Chat with us", "greeting": "Ask us anything, we usually answer right away.",
           "open": "Open the chat", "close": "Close the chat"},
    "zh": {"title": "在线客服", "greeting": "有问题请随时问我们。", "open": "打开聊天", "close": "关闭聊天"},
}


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "permission_error"}}, status_code=status)


@router.get("/config")
async def widget_config(request: Request, key: str) -> JSONResponse:
    """Theme defaults and labels for the widget; 404 for an unknown or revoked key, 403 for another origin."""
    service = request.app.state.service
    record = await service.widget_key(key)
    if record is None:
        return _refuse(404, "unknown or revoked widget key")
    origin = (request.headers.get("origin") or "").lower()
    if origin not in record.origins:
        return _refuse(403, f"origin {origin or '(none)'} may not use this key; it is made for "
                            f"{', '.join(record.origins)}")
    labels = {lang: {**text, "title": service.settings.company_name if lang == "en" else text["title"]}
              for lang, text in LABELS.items()}
    return JSONResponse({"company": service.settings.company_name, "color": "#1f6feb", "labels": labels},
                        headers={"Access-Control-Allow-Origin": origin, "Vary": "Origin"})


def install_frame_policy(app) -> None:
    """The chat page may be framed by our own pages and, with `?key=`, by that key's origins; by nobody else; and it
    is not cached."""
    service = app.state.service  # request.app is the Gradio sub-app under /chat

    async def frame_ancestors(request: Request) -> ResponseHeaders | None:
        if request.scope["path"] not in ("/chat", "/chat/", "/chat/zh", "/chat/zh/"):
            return None
        allowed = ["'self'"]
        key = request.query_params.get("key")
        if key:
            record = await service.widget_key(key)
            allowed += record.origins if record else []
        # each visitor's own page, never a shared copy
        return ResponseHeaders(set={"Content-Security-Policy": "frame-ancestors " + " ".join(allowed),
                                    "Cache-Control": "no-store"})

    app.add_middleware(RequestHook, hook=frame_ancestors)
