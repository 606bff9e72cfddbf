"""Every service's HTTP surface: health, Prometheus metrics, and the service's own routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

HealthCheck = Callable[[], Awaitable[dict[str, object]]]


def add_operational_routes(app: FastAPI, *, service: str, pool: asyncpg.Pool, components: HealthCheck) -> None:
    @app.get("/health", include_in_schema=False)
    async def health() -> Response:
        checks: dict[str, object] = {}
        try:
            await pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as error:  # reported, not raised: health must answer
            checks["database"] = f"unavailable: {type(error).__name__}"
        checks.update(await components())
        healthy = checks["database"] == "ok"
        return JSONResponse({"service": service, "status": "ok" if healthy else "degraded", **checks},
                            status_code=200 if healthy else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
