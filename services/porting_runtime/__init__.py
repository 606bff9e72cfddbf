"""What every porting service shares: inbox, outbox relay, dead letters, timers, settings, broker and pool setup."""

from .clock import Clock, MovableClock
from .consumer import EventConsumer, Route
from .failures import EventRejected
from .service import BackgroundContext, RunningService, ServiceDefinition, run_service, service_unit
from .settings import ServiceSettings
from .timers import DueTimer, TimerRoute
from .unit_of_work import UnitOfWork

__all__ = ["BackgroundContext", "Clock", "DueTimer", "EventConsumer", "EventRejected", "MovableClock", "Route", "RunningService",
           "ServiceDefinition", "ServiceSettings", "TimerRoute", "UnitOfWork", "run_service", "service_unit"]
