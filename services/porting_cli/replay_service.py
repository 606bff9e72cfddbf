"""Which service `porting replay` feeds: its ServiceDefinition, found in `<service>.service`."""

from __future__ import annotations

import importlib
import re

from porting_runtime import ServiceDefinition

_NAME = re.compile(r"[a-z][a-z0-9_]*")


class UnknownService(Exception):
    pass


def service_definition(service: str) -> ServiceDefinition:
    """The ServiceDefinition named `service` in the module `<service>.service` (PORTABILITY,
    WORKFLOW, NOTIFIER, or any service added later the same way)."""
    if not _NAME.fullmatch(service):
        raise UnknownService(f"no service {service!r}: a service is named in lower case, like portability")
    module_name = f"{service}.service"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name in (service, module_name):
            raise UnknownService(f"no service {service!r} here (no module {module_name})") from None
        raise
    found = [value for value in vars(module).values()
             if isinstance(value, ServiceDefinition) and value.name == service]
    if not found:
        raise UnknownService(f"no service {service!r}: {module_name} defines no ServiceDefinition of that name")
    return found[0]
