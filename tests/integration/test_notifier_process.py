"""`python -m notifier`, as `porting up` and docker-compose run it: configured by the environment,
healthy, sending, counting, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx

from notifier.adapters.mail_catcher import catching_mail, read_mail
from porting_cli.embedded import free_port

from ..kafka_support import wait_until
from ..unit.notifier.events import status_changed
from .test_notifier_service import publish_events
from .test_notifier_support import signing_secret


async def test_the_notifier_process_sends_what_it_consumes_serves_health_and_metrics_and_stops_on_sigterm(settings, tmp_path):
    http_port = free_port()
    async with catching_mail(tmp_path / "mail") as smtp_port:
        environment = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "DATABASE_URL": settings.database_url,
            "TOPIC_PREFIX": settings.topic_prefix, "CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
            "DATA_ENCRYPTION_KEYS": settings.data_encryption_keys.get_secret_value(),
            "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(http_port), "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
            "WEBHOOK_SIGNING_SECRET": signing_secret(), "OPS_ALERT_EMAILS": "ops@carrier.example",
        }
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "notifier", env=environment,
                                                       stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}") as client:
                async def healthy() -> bool:
                    try:
                        return (await client.get("/health")).status_code == 200
                    except httpx.TransportError:
                        return False

                await wait_until(healthy, timeout=60, what="the notifier's /health")
                await publish_events(settings, status_changed(None, "in_review", [("+14155550100", None, "in_review")],
                                                              webhook_url=None))

                async def received() -> bool:
                    return any(m.subject == "We received your port-in request" for m in read_mail(tmp_path / "mail"))

                await wait_until(received, what="the receipt e-mail in the catcher")

                async def counted() -> bool:  # once its outcome is recorded, just after the send
                    return 'notifier_deliveries_sent_total{channel="email"} 1.0' in (await client.get("/metrics")).text

                await wait_until(counted, what="the sent e-mail counted in /metrics")
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), timeout=30)
    assert code == 0
