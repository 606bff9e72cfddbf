"""The workflow service, as the shared runtime runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg

from porting_runtime import DueTimer, Route, ServiceDefinition, TimerRoute
from porting_runtime.sealing import Sealer
from schemas import (
    CancellationDenied,
    CancelRequested,
    CarrierResponded,
    PortabilityChecked,
    PortAlertRaised,
    PortRequested,
    PortScheduled,
    PortStatusChanged,
    PortSubmitted,
)

from .domain import TimerKind
from .service_layer.handlers import Workflow
from .settings import WorkflowSettings

CONSUMES = (PortRequested, PortabilityChecked, CarrierResponded, PortScheduled, CancelRequested)


def _routes(pool: asyncpg.Pool, settings: Any) -> list[Route]:
    workflow = Workflow(Sealer.from_settings(settings))
    return [Route(event, workflow.handle_events, batch=True) for event in CONSUMES]


def _timers(pool: asyncpg.Pool, settings: Any) -> list[TimerRoute]:
    workflow = Workflow(Sealer.from_settings(settings))
    return [TimerRoute(kind.value, workflow.handle_timers, subject=_request_of) for kind in TimerKind]


def _request_of(timer: DueTimer) -> str | None:
    """The request whose lock handle_timers takes (WorkflowRepository.lock)."""
    return timer.data.get("port_in_request_sid")


WORKFLOW = ServiceDefinition(
    name="workflow",
    migrations=Path(__file__).parent / "migrations",
    routes=_routes,
    timers=_timers,
    publishes=[PortStatusChanged.event_type, PortSubmitted.event_type, CancellationDenied.event_type,
               PortAlertRaised.event_type],
    settings=WorkflowSettings,
)
