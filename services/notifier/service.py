"""The notifier service, as the shared runtime runs it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from porting_runtime import Route, ServiceDefinition, TimerRoute
from schemas import CancellationDenied, PortAlertRaised, PortStatusChanged

from .adapters.templates import EmailTemplates, load_fix_advice
from .domain.announcements import NotifierPolicy
from .service_layer.recording import DELIVERY_RETRY, ROUTING_REMINDER, NotificationRecorder, make_due
from .service_layer.sending import DeliverySender
from .settings import NotifierSettings


def _routes(pool: asyncpg.Pool, settings: Any) -> list[Route]:
    policy = NotifierPolicy(
        ops_alert_emails=tuple(settings.ops_alert_emails),
        advice=load_fix_advice(),
        reminder_lead=timedelta(days=settings.routing_reminder_days_before),
    )
    recorder = NotificationRecorder(policy)
    return [Route(PortStatusChanged, recorder, batch=True), Route(CancellationDenied, recorder, batch=True),
            Route(PortAlertRaised, recorder, batch=True)]


def _timers(pool: asyncpg.Pool, settings: Any) -> list[TimerRoute]:
    return [TimerRoute(ROUTING_REMINDER, make_due), TimerRoute(DELIVERY_RETRY, make_due)]


def _definition() -> ServiceDefinition:
    # The templates are read once, at start: a broken template stops the start, not a send.
    templates = EmailTemplates()
    templates.check()
    return ServiceDefinition(
        name="notifier",
        migrations=Path(__file__).parent / "migrations",
        routes=_routes,
        timers=_timers,
        publishes=[PortAlertRaised.event_type],
        settings=NotifierSettings,
        # The runtime hands the sender its clock, pool and settings (BackgroundContext).
        background=[DeliverySender(templates)],
    )


NOTIFIER = _definition()
