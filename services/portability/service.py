"""The portability service, as the shared runtime runs it."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from fastapi import FastAPI

from porting_runtime import Route, ServiceDefinition, ServiceSettings, service_unit
from schemas import PortabilityChecked, PortRequested, PortStatusChanged

from .adapters.coverage_file import CoverageFile
from .entrypoints.http import add_portability_api
from .service_layer.handlers import PortRequestChecker, follow_port_status


def _routes(pool: asyncpg.Pool, settings: ServiceSettings) -> list[Route]:
    return [Route(PortRequested, PortRequestChecker(CoverageFile()), batch=True),
            Route(PortStatusChanged, follow_port_status, batch=True)]


def _http_app(pool: asyncpg.Pool, settings: ServiceSettings) -> FastAPI:
    # No redirect for a trailing slash: Starlette's answered 307 with no body (not the public error
    # shape), before authentication, to a Location built from the caller's Host header.
    app = FastAPI(title="Portability API", version="1.0.0", redirect_slashes=False,
                  description="Can this number be ported into this account, and if not, why.")
    add_portability_api(app, lambda: service_unit(pool, PORTABILITY, settings), CoverageFile())
    return app


PORTABILITY = ServiceDefinition(
    name="portability",
    migrations=Path(__file__).parent / "migrations",
    routes=_routes,
    publishes=[PortabilityChecked.event_type],
    http_app=_http_app,
)
