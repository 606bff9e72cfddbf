"""What every porting service shares: inbox, outbox relay, dead letters, settings, broker and pool setup."""

from .consumer import EventConsumer, EventRejected, Route
from .service import RunningService, ServiceDefinition, run_service
from .settings import ServiceSettings
from .unit_of_work import UnitOfWork

__all__ = ["EventConsumer", "EventRejected", "Route", "RunningService", "ServiceDefinition", "ServiceSettings", "UnitOfWork", "run_service"]
