"""Failures: what can never succeed is dead-lettered; what can pass is retried and never skipped."""

from __future__ import annotations

import json

import asyncpg
import pytest

from porting_runtime.failures import classify
from porting_runtime.kafka import ensure_topics
from porting_runtime.secret_fields import topic_copy
from schemas import KafkaRecord, dead_letter_topic

from ..factories import port_requested, port_requested_payload
from ..kafka_support import outbox_at_rest
from ..tcp_proxy import CuttableProxy
from .ledger import (
    REJECTED_CUSTOMER,
    collect,
    fetchval,
    port_requested_record,
    publish,
    rows_are,
    running,
    wait_until,
)


def _raw(settings, value: bytes, headers: list[tuple[str, bytes]], key: bytes = b"k") -> KafkaRecord:
    return KafkaRecord(settings.topic("porting.port-requested.v1"), key, value, headers)


async def test_poison_messages_land_in_the_dead_letter_topic_with_their_bytes_less_their_secrets_and_the_next_is_processed(settings):
    good = port_requested_record(settings, port_requested())
    headers = good.headers
    unknown_version = [(n, b"porting.port-requested.v9" if n == "ce_type" else v) for n, v in headers]
    rule_breaker = port_requested_record(settings, port_requested(
        losing_carrier_information={**port_requested_payload()["losing_carrier_information"], "customer_name": REJECTED_CUSTOMER}))
    schema_violation = json.dumps({**port_requested_payload(), "revision": 0}).encode()
    poison = [
        _raw(settings, b"{not json", headers),
        _raw(settings, schema_violation, [(n, v) for n, v in headers if n != "ce_subject"]),
        _raw(settings, good.value, unknown_version),
        _raw(settings, good.value, [("ce_id", b"\xff\xfe")]),  # not even UTF-8
        rule_breaker,
    ]
    # All on one key, so they share a partition with the good event that follows them.
    poison = [KafkaRecord(p.topic, b"same-key", p.value, p.headers) for p in poison]
    good = KafkaRecord(good.topic, b"same-key", good.value, good.headers)
    await publish(settings, [*poison, good])

    async with running(settings):
        await wait_until(lambda: rows_are(settings, "effects", 1))
        dead = await collect(settings, settings.topic(dead_letter_topic("ledger")), expect=5)

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 1
    # Their bytes as they came, but for the PIN and account number (DESIGN 9; the kept rows have them).
    assert [d.value for d in dead] == [topic_copy(p.value)[0] for p in poison]
    assert not any(b"1234" in d.value for d in dead)
    reasons = [dict(d.headers)["dlt_error"].decode() for d in dead]
    assert reasons[0].startswith("not valid JSON")
    assert "revision" in reasons[1]
    assert "unknown event type or version 'porting.port-requested.v9'" in reasons[2]
    assert "UTF-8" in reasons[3]
    assert reasons[4] == "the customer name breaks a rule"
    for record, original in zip(dead, poison, strict=True):
        headers = dict(record.headers)
        assert headers["dlt_source_topic"].decode() == original.topic
        assert int(headers["dlt_source_offset"]) >= 0
        assert [h for h in record.headers if not h[0].startswith("dlt_")] == list(original.headers)
    assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == 5


async def test_a_database_outage_is_retried_and_never_dead_lettered(settings, infrastructure):
    host, port = _host_port(settings.database_url)
    proxy = await CuttableProxy(host, port).start()
    via_proxy = settings.model_copy(update={"database_url": settings.database_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")})
    records = [port_requested_record(settings, port_requested()) for _ in range(5)]
    try:
        async with running(via_proxy, serve_http=True) as service:
            proxy.cut()
            await publish(settings, records)
            # The consumer keeps failing to reach the database while the events wait.
            await wait_until(lambda: _transient_failures_grew(), timeout=60)
            assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 0
            health = await wait_until(lambda: _degraded(service), timeout=10)
            assert any(name.startswith("partition") for name in health["problems"]), health
            proxy.restore()
            await wait_until(lambda: rows_are(settings, "effects", 5))
            assert await wait_until(lambda: _healthy(service), timeout=30)
    finally:
        await proxy.stop()

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 5
    assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == 0


async def test_sessions_ended_under_a_running_service_lose_no_event_and_dead_letter_none(settings):
    """A failover or an operator ending sessions: every connection of the service (its pool and
    the relay's lock) is terminated again and again while events flow. Each fault is the
    connection's, never a record's: every event takes effect once, and each follow-up is sent.
    A guard of the whole path: whether a transaction is mid-flight when its session ends is
    chance, so the classification itself is proven by the unit tests of `classify`."""
    import asyncio

    import asyncpg

    records = [port_requested_record(settings, port_requested()) for _ in range(300)]
    admin = await asyncpg.connect(settings.database_url)
    terminated = 0
    try:
        async with running(settings):
            publishing = asyncio.create_task(publish(settings, records))
            for _ in range(40):  # ~2 s of sessions ended every 50 ms
                terminated += await admin.fetchval(
                    """SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                       WHERE datname = current_database() AND pid <> pg_backend_pid()
                         AND backend_type = 'client backend'""")
                await asyncio.sleep(0.05)
            await publishing
            assert await wait_until(lambda: rows_are(settings, "effects", 300), timeout=90)
            assert await wait_until(lambda: outbox_at_rest(settings), timeout=60)
    finally:
        await admin.close()

    assert terminated >= 10, "sessions were ended while the service ran"
    assert await fetchval(settings.database_url, "SELECT count(DISTINCT event_id) FROM effects") == 300
    assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == 0
    follow_ups = await collect(settings, settings.topic("porting.port-alert-raised.v1"), expect=300, settle=0.5)
    assert len({r.value for r in follow_ups}) == 300, "every follow-up was published (a resend is a duplicate)"


_baseline: dict[str, float] = {}


async def _transient_failures_grew() -> bool:
    from porting_runtime.metrics import PIPELINE_FAILURES

    value = PIPELINE_FAILURES.labels("ledger", "transient")._value.get()  # noqa: SLF001
    first = _baseline.setdefault("consumer", value)
    return value > first


def _host_port(url: str) -> tuple[str, int]:
    location = url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = location.partition(":")
    return host, int(port or 5432)


async def test_a_statement_prepared_before_a_migration_changed_its_result_fails_once_as_transient_then_passes(
        database_url):
    """A rolling deploy migrates a table while a service holds statements prepared on the old shape:
    PostgreSQL refuses the stale plan inside the transaction, and the retry (what a transient
    failure gets) prepares it again."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("CREATE TABLE claims (event_id text PRIMARY KEY)")
        claim = "INSERT INTO claims VALUES ($1) RETURNING event_id"
        await connection.fetch(claim, "before")  # prepared and cached on this connection
        await connection.execute("ALTER TABLE claims ALTER COLUMN event_id TYPE varchar(256)")
        with pytest.raises(Exception) as raised:
            async with connection.transaction():
                await connection.fetch(claim, "during")
        async with connection.transaction():
            retried = await connection.fetch(claim, "during")
    finally:
        await connection.close()
    assert type(raised.value).__name__ == "InvalidCachedStatementError"
    assert classify(raised.value) == "transient"
    assert [r["event_id"] for r in retried] == ["during"]


async def test_topics_are_created_once_and_creating_them_again_is_harmless(settings):
    await ensure_topics(settings, [settings.topic("x")])
    await ensure_topics(settings, [settings.topic("x")])


async def test_a_fault_outside_the_handlers_holds_the_partition_instead_of_skipping_it(settings):
    records = [port_requested_record(settings, port_requested()) for _ in range(3)]
    async with running(settings):
        # An operator mistake the pipeline cannot write around: its outbox is gone for a while.
        await fetchval(settings.database_url, "ALTER TABLE outbox RENAME TO outbox_away")
        await publish(settings, records)
        await wait_until(lambda: _inbox_is_empty_after_attempts(settings), timeout=10)
        await fetchval(settings.database_url, "ALTER TABLE outbox_away RENAME TO outbox")
        await wait_until(lambda: rows_are(settings, "effects", 3))

    assert await fetchval(settings.database_url, "SELECT count(*) FROM effects") == 3
    assert await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters") == 0


async def _inbox_is_empty_after_attempts(settings) -> bool:
    from porting_runtime.metrics import PIPELINE_FAILURES

    attempts = PIPELINE_FAILURES.labels("ledger", "transient")._value.get()  # noqa: SLF001
    baseline = _baseline.setdefault("fault", attempts)
    nothing_committed = await fetchval(settings.database_url, "SELECT count(*) FROM inbox") == 0
    return attempts >= baseline + 2 and nothing_committed


async def _health(service) -> tuple[int, dict]:
    import httpx

    port = service.server.servers[0].sockets[0].getsockname()[1]
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"http://127.0.0.1:{port}/health")
    return answer.status_code, answer.json()


async def _degraded(service) -> dict | None:
    if not getattr(service, "server", None) or not service.server.started:
        return None
    status, body = await _health(service)
    return body if status == 503 and body["status"] == "degraded" else None


async def _healthy(service) -> bool:
    status, _ = await _health(service)
    return status == 200


async def test_health_answers_starting_until_the_consumer_has_joined_its_group_and_ok_only_once_it_consumes(settings):
    seen: list[tuple[int, str, bool]] = []

    async def consuming_and_healthy(service) -> bool:
        if not getattr(service, "server", None) or not service.server.started:
            return False
        status, body = await _health(service)
        seen.append((status, body["status"], service.consume_loop.running))
        return status == 200

    async with running(settings, serve_http=True) as service:
        await wait_until(lambda: consuming_and_healthy(service), timeout=60, what="/health answering 200")

    assert all(consuming for status, _, consuming in seen if status == 200), seen
    # The group join takes seconds on the embedded broker: the HTTP port answered before it ended.
    assert (503, "starting", False) in seen, seen
