"""The notifier on the real broker and PostgreSQL refuses a webhook_url on loopback unless the
operator allows it (no SSRF): the refusal is one final attempt with its reason, shown by
`porting notifications`, counted, alerted to ops, and the rest of the batch is sent; with the
allowance (as `porting up` sets it) the same receiver gets the webhook."""

from __future__ import annotations

import asyncio
import json

import asyncpg
from standardwebhooks import Webhook
from typer.testing import CliRunner

from notifier import metrics
from notifier.adapters.mail_catcher import catching_mail, read_mail
from porting_runtime import MovableClock, ServiceSettings

from ..kafka_support import wait_until
from ..unit.notifier.events import status_changed
from .test_notifier_service import (START, _all_delivered, _cli, _mail_with, _state_is, notifier_settings,
                                    publish_events, rows, running_notifier)
from .test_notifier_support import signing_secret, webhook_receiver

REFUSAL = "a loopback address; refused"


async def test_a_webhook_to_a_loopback_receiver_is_refused_without_the_allowance_and_delivered_with_it(
        settings, tmp_path):
    secret, clock = signing_secret(), MovableClock(START)
    refused_before = metrics.WEBHOOK_TARGETS_REFUSED.labels("loopback")._value.get()  # noqa: SLF001
    async with catching_mail(tmp_path / "mail") as smtp_port, webhook_receiver() as receiver:
        # http stays allowed here, so it is the loopback address alone that is refused.
        strict = notifier_settings(settings, smtp_port, secret, webhook_allowed_private_networks=[])
        refused = status_changed("in_progress", "completed", [], webhook_url=receiver.url)
        refused_sid = refused.data.port_in_request_sid
        async with running_notifier(strict, clock):
            await publish_events(settings, refused)
            await wait_until(lambda: _webhook_state_is(settings, refused_sid, "failed"), what="the webhook refused")
            await wait_until(lambda: _mail_with(tmp_path, "Your port is complete"), what="the same batch's e-mail")
            await wait_until(lambda: _mail_with(tmp_path, "[porting alert]"), what="the ops alert")
        assert receiver.calls == []
        [attempt] = await rows(settings, """SELECT a.attempt, a.outcome, a.detail FROM delivery_attempts a
                                            JOIN notifications n USING (delivery_id)
                                            WHERE n.port_in_request_sid = $1 AND n.channel = 'webhook'""", refused_sid)
        assert (attempt["attempt"], attempt["outcome"]) == (1, "failed")
        assert attempt["detail"] == f"webhook_url is 127.0.0.1, {REFUSAL}"
        assert metrics.WEBHOOK_TARGETS_REFUSED.labels("loopback")._value.get() == refused_before + 1  # noqa: SLF001
        [alert] = [m for m in read_mail(tmp_path / "mail") if m.subject.startswith("[porting alert]")]
        assert REFUSAL in alert.message.get_body(("plain",)).get_content()
        shown = await asyncio.to_thread(CliRunner().invoke, _cli(), ["notifications", refused_sid, "--database-url",
                                                                     settings.database_url], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and REFUSAL in shown.output, shown.output

        allowed = status_changed("in_progress", "completed", [], webhook_url=receiver.url, notification_emails=[])
        async with running_notifier(notifier_settings(settings, smtp_port, secret), clock):  # loopback allowed
            await publish_events(settings, allowed)
            await wait_until(lambda: _all_delivered(settings, allowed.data.port_in_request_sid, expect=1),
                             what="the webhook delivered")
    [call] = receiver.calls
    assert Webhook(secret).verify(call.body, call.headers)["data"]["port_in_request_sid"] == \
        allowed.data.port_in_request_sid
    assert json.loads(call.body)["type"] == "PortInCompleted"
    assert await _state_is(settings, allowed.data.port_in_request_sid, "delivered")


async def _webhook_state_is(settings: ServiceSettings, sid: str, state: str) -> bool:
    try:
        found = await rows(settings, "SELECT state FROM notifications WHERE port_in_request_sid = $1 AND channel = "
                                     "'webhook'", sid)
    except asyncpg.UndefinedTableError:  # the notifier has not made its tables yet
        return False
    return bool(found) and all(r["state"] == state for r in found)
