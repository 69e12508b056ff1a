"""Every error the API returns: a 4xx/5xx with one JSON shape that says what is wrong and where."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.chat_serving import InvalidMessageError
from assistant.conversation import ConversationClosedError
from assistant.engines.base import EngineError, EngineUnavailableError
from assistant.store import ConversationNotFoundError, HandoffError, MessageNotFoundError

TOO_DEEP = "JSON nested too deep: arrays and objects are limited to a few levels"


class APIError(Exception):
    def __init__(self, status_code: int, message: str, error_type: str = "invalid_request_error",
                 param: str | None = None):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.error_type = error_type
        self.param = param


def error_body(message: str, error_type: str, param: str | None = None) -> dict:
    """OpenAI-style error object, so OpenAI clients surface the message."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": None}}


def _respond(status: int, message: str, error_type: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, error_type, param), status_code=status)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str | None]:
    errors = exc.errors()
    for err in errors:
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            where = f" at position {err['loc'][1]}" if len(err.get("loc", ())) > 1 else ""
            return 400, f"malformed JSON body{where}: {ctx.get('error', 'cannot parse')}", None
    parts = []
    first_param = None
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        param = ".".join(loc) or "body"
        first_param = first_param or param
        parts.append(f"'{param}': {err.get('msg')}")
    return 422, "invalid request: " + "; ".join(parts), first_param


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return _respond(exc.status_code, exc.message, exc.error_type, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        status, message, param = _validation_message(exc)
        return _respond(status, message, "invalid_request_error", param)

    @app.exception_handler(InvalidMessageError)
    async def _invalid_message(_: Request, exc: InvalidMessageError):
        return _respond(exc.status_code, str(exc), "invalid_request_error", "content")

    @app.exception_handler(ConversationNotFoundError)
    async def _not_found(_: Request, exc: ConversationNotFoundError):
        return _respond(404, str(exc), "not_found_error", "conversation_id")

    @app.exception_handler(MessageNotFoundError)
    async def _message_not_found(_: Request, exc: MessageNotFoundError):
        return _respond(404, str(exc), "not_found_error", "message_id")

    @app.exception_handler(ConversationClosedError)
    async def _closed(_: Request, exc: ConversationClosedError):
        return _respond(409, str(exc), "conflict_error")

    @app.exception_handler(HandoffError)
    async def _handoff(_: Request, exc: HandoffError):
        return _respond(409, str(exc), "conflict_error")

    @app.exception_handler(EngineUnavailableError)
    async def _unavailable(_: Request, exc: EngineUnavailableError):
        return _respond(503, str(exc), "service_unavailable")

    @app.exception_handler(EngineError)
    async def _engine(_: Request, exc: EngineError):
        return _respond(502, str(exc), "engine_error")

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError):
        return _respond(400, TOO_DEEP, "invalid_request_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        if isinstance(exc.__cause__, RecursionError):  # FastAPI could not parse the JSON body
            return _respond(400, TOO_DEEP, "invalid_request_error")
        return _respond(exc.status_code, str(exc.detail), "invalid_request_error")
