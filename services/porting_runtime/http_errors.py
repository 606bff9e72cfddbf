"""Every error a service's HTTP API answers, in the public API's shape: {code, message, more_info, status}.

FastAPI and Starlette answer unknown paths, wrong methods, malformed credentials and invalid
parameters with `{"detail": ...}`, and an unhandled exception with a plain-text 500 whose log
line loses the traceback. `install_public_error_handlers(app)` puts all of them in the public
shape and logs the cause of a 500 with its traceback.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .logs import get_logger

log = get_logger(__name__)

# The public API's error codes for the generic answers.
UNAUTHORIZED = 20003
INVALID_PARAMETER = 20001
NOT_FOUND = 20404
METHOD_NOT_ALLOWED = 20004
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
SERVICE_UNAVAILABLE = 20503
CODES_BY_STATUS = {400: INVALID_PARAMETER, 401: UNAUTHORIZED, 403: UNAUTHORIZED, 404: NOT_FOUND,
                   405: METHOD_NOT_ALLOWED, 429: TOO_MANY_REQUESTS, 500: INTERNAL_ERROR, 503: SERVICE_UNAVAILABLE}
MESSAGES_BY_STATUS = {401: "Authenticate with your account sid and auth token.",
                      403: "You do not have access to this resource.",
                      404: "The requested resource was not found.",
                      405: "Method not allowed.",
                      500: "Internal error; please try the request again."}
# What a log line keeps of a request's path: a path is whatever the client sent.
LOGGED_PATH_CHARACTERS = 200


class PublicError(BaseModel):
    """The body of every error answer."""

    code: int
    message: str
    more_info: str
    status: int


def public_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = PublicError(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}",
                       status=status)
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def error_for_status(status: int, headers: dict[str, str] | None = None, message: str | None = None) -> JSONResponse:
    """The public answer for a bare HTTP status (a code the public API uses for it, and a plain message)."""
    code = CODES_BY_STATUS.get(status, INTERNAL_ERROR if status >= 500 else INVALID_PARAMETER)
    return public_error(status, code, message or MESSAGES_BY_STATUS.get(status, "The request cannot be answered."),
                        headers)


async def _http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    # Starlette's own detail is the status phrase ("Not Found"), which says less than ours; a service's says more.
    phrase = HTTPStatus(error.status_code).phrase if error.status_code in HTTPStatus._value2member_map_ else None
    detail = error.detail if isinstance(error.detail, str) and error.detail != phrase else None
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Basic")
    return error_for_status(error.status_code, headers or None, detail)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors())
    return public_error(400, INVALID_PARAMETER, f"Invalid parameter: {problems}"[:1000])


class _AnswerUnhandledErrors:
    """An exception no handler caught: its cause logged with the traceback, a public 500 answered.

    A middleware rather than an `Exception` handler: Starlette re-raises after such a handler
    answers, and the server then closes the client's kept-alive connection.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as error:
            if started:  # half an answer is out: only the server can end it (and logs why)
                raise
            log.error("unhandled error answering an HTTP request", method=scope.get("method"),
                      path=str(scope.get("path", ""))[:LOGGED_PATH_CHARACTERS], exc_info=error)
            await error_for_status(500)(scope, receive, send)


_FASTAPI_DEFAULTS: dict[type[Exception], Any] = {
    StarletteHTTPException: http_exception_handler,
    RequestValidationError: request_validation_exception_handler,
}


def install_public_error_handlers(app: FastAPI) -> None:
    """Answer every error of `app` in the public shape. Idempotent; a handler the service set itself stays."""
    if getattr(app.state, "public_error_handlers", False):
        return
    app.state.public_error_handlers = True
    for error_class, handler in ((StarletteHTTPException, _http_exception), (RequestValidationError, _invalid_request)):
        if app.exception_handlers.get(error_class) in (None, _FASTAPI_DEFAULTS[error_class]):
            app.add_exception_handler(error_class, handler)
    app.add_middleware(_AnswerUnhandledErrors)
