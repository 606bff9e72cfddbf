"""`porting publish`: wrap a JSON payload in the CloudEvents envelope and publish it."""

from __future__ import annotations

import json
from pathlib import Path

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from porting_runtime.kafka import connection_options
from porting_runtime.settings import ServiceSettings
from schemas import EVENTS_BY_TYPE, KafkaRecord, encode
from schemas.cloudevents import envelope_headers


class PublishError(ValueError):
    pass


def envelope(topic: str, payload_file: Path, *, event_id: str | None = None, validate: bool = True,
             topic_prefix: str = "") -> KafkaRecord:
    """The record to publish. Invalid payloads are refused unless `validate` is off (to try dead-lettering)."""
    if topic not in EVENTS_BY_TYPE:
        raise PublishError(f"unknown topic {topic!r}; known: {', '.join(EVENTS_BY_TYPE)}")
    text = payload_file.read_text()
    model = EVENTS_BY_TYPE[topic]
    if not validate:
        sid = str(_loose_json(text).get("port_in_request_sid", "unknown"))
        headers = envelope_headers(topic, sid, source="porting-cli", event_id=event_id)
        return KafkaRecord(topic_prefix + topic, sid.encode(), text.encode(), headers)
    try:
        event = model.model_validate_json(text, strict=True)
    except ValidationError as error:
        raise PublishError(f"{payload_file} is not a valid {model.__name__}:\n{error}") from None
    return encode(event, source="porting-cli", topic=topic_prefix + topic, event_id=event_id)


def _loose_json(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def publish_record(settings: ServiceSettings, record: KafkaRecord) -> tuple[int, int]:
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=False)
    try:
        await producer.start()
        sent = await producer.send_and_wait(record.topic, record.value, key=record.key, headers=record.headers)
        return sent.partition, sent.offset
    finally:
        await producer.stop()
