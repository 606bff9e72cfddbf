"""Generates the committed JSON Schema files and the AsyncAPI document from the models."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .topics import EVENTS_BY_TYPE, INBOUND_EVENTS

SCHEMAS_DIR = Path(__file__).parent
JSON_DIR = SCHEMAS_DIR / "json"
ASYNCAPI_FILE = SCHEMAS_DIR / "asyncapi.yaml"

_CE_HEADERS = {
    "type": "object",
    "required": ["ce_specversion", "ce_id", "ce_source", "ce_type", "content-type", "traceparent"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "unique per event; consumers dedupe on it"},
        "ce_source": {"type": "string"},
        "ce_type": {"type": "string", "description": "the topic name"},
        "ce_time": {"type": "string", "format": "date-time"},
        "ce_subject": {"type": "string", "description": "the port-in request sid, also the key"},
        "content-type": {"const": "application/json"},
        "traceparent": {"type": "string", "description": "W3C trace context"},
    },
}


def json_schemas() -> dict[Path, str]:
    files = {}
    for event_type, model in EVENTS_BY_TYPE.items():
        schema = model.model_json_schema()
        schema["$id"] = f"urn:porting:schema:{event_type}"
        schema["title"] = model.__name__
        files[JSON_DIR / f"{event_type}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def asyncapi_document() -> str:
    channels, operations, messages = {}, {}, {}
    for event_type, model in EVENTS_BY_TYPE.items():
        name = model.__name__
        inbound = model in INBOUND_EVENTS
        channels[event_type] = {
            "address": event_type,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"kafka": {"partitions": 6}},
        }
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (model.__doc__ or name).strip().splitlines()[0],
            "contentType": "application/json",
            "headers": _CE_HEADERS,
            "payload": {"$ref": f"json/{event_type}.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "port_in_request_sid"}}},
        }
        # The platform receives inbound events and sends the follow-ups.
        operations[f"{'receive' if inbound else 'send'}{name}"] = {
            "action": "receive" if inbound else "send",
            "channel": {"$ref": f"#/channels/{event_type}"},
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Number porting events",
            "version": "1.0.0",
            "description": "CloudEvents 1.0 in Kafka binary mode: attributes as ce_ headers, data as JSON value.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
    return yaml.safe_dump(document, sort_keys=False)


def generated_files() -> dict[Path, str]:
    return {**json_schemas(), ASYNCAPI_FILE: asyncapi_document()}


def stale_files() -> list[Path]:
    """Committed files that differ from what the models generate now (or are missing)."""
    generated = generated_files()
    stale = [p for p, text in generated.items() if not p.exists() or p.read_text() != text]
    return stale + [p for p in JSON_DIR.glob("*.json") if p not in generated]


def write_all() -> list[Path]:
    generated = generated_files()
    JSON_DIR.mkdir(exist_ok=True)
    for path in JSON_DIR.glob("*.json"):
        path.unlink()
    for path, text in generated.items():
        path.write_text(text)
    return sorted(generated)
