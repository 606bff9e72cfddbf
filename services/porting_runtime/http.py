"""Every service's HTTP surface: health, Prometheus metrics, and the service's own routes."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from . import metrics as service_metrics
from .health import ProgressBoard
from .http_errors import install_public_error_handlers

HealthCheck = Callable[[], Awaitable[dict[str, object]]]


async def _stored_problems(pool: asyncpg.Pool, service: str) -> dict[str, str]:
    """What the database says is stuck: outbox rows the broker refused, timers that failed."""
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM outbox WHERE set_aside_at IS NOT NULL) AS set_aside,
                  (SELECT count(*) FROM timers WHERE failed_at IS NOT NULL) AS failed_timers""")
    service_metrics.OUTBOX_SET_ASIDE.labels(service).set(row["set_aside"])
    service_metrics.TIMERS_FAILED.labels(service).set(row["failed_timers"])
    found = {}
    if row["set_aside"]:
        found["outbox set aside"] = f"{row['set_aside']} row(s) the broker refused; see `porting outbox list {service}`"
    if row["failed_timers"]:
        found["timers failed"] = f"{row['failed_timers']} timer(s) failed for good; see `porting timers list {service}`"
    return found


def add_operational_routes(app: FastAPI, *, service: str, pool: asyncpg.Pool, components: HealthCheck,
                           board: ProgressBoard | None = None, stalled_after: float = 60.0) -> None:
    install_public_error_handlers(app)  # every error of every service's API in the public shape
    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        checks: dict[str, object] = {}
        problems: dict[str, str] = {}
        try:
            problems.update(await _stored_problems(pool, service))
            checks["database"] = "ok"
        except Exception as error:  # reported, not raised: health must answer
            checks["database"] = f"unavailable: {type(error).__name__}"
            problems["database"] = checks["database"]  # type: ignore[assignment]
        checks.update(await components())
        if board is not None:
            problems.update(board.problems(stalled_after))
        healthy = not problems
        # 503 until the consumer has joined its group: `porting up` and Compose wait for a
        # service that consumes, not one whose HTTP port merely answers.
        status = "ok" if healthy else "starting" if board is not None and board.only_starting(problems, stalled_after) else "degraded"
        return JSONResponse({"service": service, "status": status, **checks,
                             "problems": problems}, status_code=200 if healthy else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # The gauges the database holds (set-aside rows, failed timers) are counted on every scrape.
        with contextlib.suppress(Exception):
            await _stored_problems(pool, service)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
