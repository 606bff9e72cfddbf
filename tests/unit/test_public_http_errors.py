"""Every error of a service's HTTP app in the public shape, and the cause of a failure logged with its traceback."""

from __future__ import annotations

import json
import logging
import sys

import httpx
import pytest
import structlog
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from porting_runtime.http_errors import install_public_error_handlers
from porting_runtime.logs import configure_logging

ERROR_FIELDS = {"code", "message", "more_info", "status"}


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{sid}")
    async def thing(sid: str, limit: int = Query(default=10)) -> dict[str, str]:
        if sid == "boom":
            raise RuntimeError("the disk is on fire")
        if sid == "gone":
            raise HTTPException(404, "Thing gone was deleted")
        return {"sid": sid}

    install_public_error_handlers(app)
    return app


async def _get(app: FastAPI, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://test") as client:
        return await client.request(method, path)


def _public(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == ERROR_FIELDS
    assert body["status"] == response.status_code
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    return body


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nowhere", 404, 20404),
    ("DELETE", "/things/a", 405, 20004),
    ("GET", "/things/a?limit=many", 400, 20001),
    ("GET", "/things/boom", 500, 20500),
])
async def test_every_error_answer_has_the_public_shape_and_status(method, path, status, code):
    response = await _get(_app(), method, path)
    assert response.status_code == status
    assert _public(response)["code"] == code


async def test_a_wrong_method_still_says_which_methods_are_allowed():
    response = await _get(_app(), "POST", "/things/a")
    assert response.headers["allow"] == "GET"


async def test_a_services_own_message_is_kept_and_starlettes_bare_status_phrase_is_replaced():
    assert _public(await _get(_app(), "GET", "/things/gone"))["message"] == "Thing gone was deleted"
    assert _public(await _get(_app(), "GET", "/nowhere"))["message"] != "Not Found"


async def test_an_unhandled_error_is_logged_with_the_exception_itself():
    with structlog.testing.capture_logs() as logs:
        await _get(_app(), "GET", "/things/boom")
    [entry] = [e for e in logs if e["log_level"] == "error"]
    assert isinstance(entry["exc_info"], RuntimeError) and entry["path"] == "/things/boom"


async def test_installing_twice_changes_nothing_and_a_services_own_handler_stays():
    app = FastAPI()

    @app.exception_handler(StarletteHTTPException)
    async def own(request, error):
        return JSONResponse({"mine": True}, status_code=error.status_code)

    install_public_error_handlers(app)
    install_public_error_handlers(app)
    assert (await _get(app, "GET", "/nowhere")).json() == {"mine": True}
    assert len(app.user_middleware) == 1


@pytest.fixture
def configured_logging():
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("test")
    yield root.handlers[0]
    root.handlers[:], root.level = saved
    structlog.reset_defaults()


def test_a_librarys_exception_log_line_holds_the_traceback_text(configured_logging):
    try:
        1 / 0
    except ZeroDivisionError:
        record = logging.LogRecord("uvicorn.error", logging.ERROR, __file__, 1, "Exception in ASGI application",
                                   None, sys.exc_info())
    line = json.loads(configured_logging.format(record))
    assert line["event"] == "Exception in ASGI application"
    assert "Traceback (most recent call last)" in line["exception"] and "ZeroDivisionError" in line["exception"]
    assert "<traceback object" not in json.dumps(line)
