"""The notifier's settings, read from the environment."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from notifier.settings import NotifierSettings

SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def test_ops_addresses_are_read_comma_separated_and_the_secret_as_standard_webhooks_wants_it(monkeypatch):
    monkeypatch.setenv("OPS_ALERT_EMAILS", "ops@carrier.example, noc@carrier.example,")
    monkeypatch.setenv("WEBHOOK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("DELIVERY_GIVE_UP_HOURS", "6")
    settings = NotifierSettings()
    assert settings.ops_alert_emails == ["ops@carrier.example", "noc@carrier.example"]
    assert settings.webhook_signing_secret.get_secret_value() == SECRET
    assert SECRET not in repr(settings)
    assert settings.retry_policy().give_up_after.total_seconds() == 6 * 3600


@pytest.mark.parametrize("secret", ["plain-password", "whsec_not base64!", "whsec_" + base64.b64encode(b"short").decode()])
def test_a_signing_secret_that_is_not_a_usable_whsec_key_is_refused_at_start(secret):
    with pytest.raises(ValidationError, match="WEBHOOK_SIGNING_SECRET"):
        NotifierSettings(webhook_signing_secret=secret)


def test_by_default_mail_goes_to_the_local_catcher_and_nothing_is_signed_without_a_secret(monkeypatch):
    for name in ("SMTP_HOST", "SMTP_PORT", "WEBHOOK_SIGNING_SECRET", "OPS_ALERT_EMAILS"):
        monkeypatch.delenv(name, raising=False)
    settings = NotifierSettings()
    assert (settings.smtp_host, settings.smtp_port, settings.webhook_signing_secret) == ("127.0.0.1", 1025, None)
    assert settings.retry_policy().give_up_after.total_seconds() == 24 * 3600


def test_webhooks_go_to_public_https_addresses_unless_the_operator_allows_private_networks(monkeypatch):
    for name in ("WEBHOOK_ALLOW_HTTP", "WEBHOOK_ALLOWED_PRIVATE_NETWORKS"):
        monkeypatch.delenv(name, raising=False)
    strict = NotifierSettings().webhook_targets()
    assert (strict.allow_http, strict.allowed_private_networks) == (False, ())
    monkeypatch.setenv("WEBHOOK_ALLOW_HTTP", "true")
    monkeypatch.setenv("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8, ::1/128,10.20.0.0/16")
    local = NotifierSettings().webhook_targets()
    assert local.allow_http
    assert [str(network) for network in local.allowed_private_networks] == ["127.0.0.0/8", "::1/128", "10.20.0.0/16"]


@pytest.mark.parametrize("networks", ["10.0.0.5/8", "localhost", "10.0.0.0/33"])
def test_an_allowed_network_that_is_not_a_cidr_is_refused_at_start(monkeypatch, networks):
    monkeypatch.setenv("WEBHOOK_ALLOWED_PRIVATE_NETWORKS", networks)
    with pytest.raises(ValidationError, match="webhook_allowed_private_networks"):
        NotifierSettings()


@pytest.mark.parametrize("sender", ["Portage <portage@exämple.ca>", "porting@", "<>", "no address at all",
                                    "Porting <por ting@example.com>", "Porting <porting@example.com\u202e>",
                                    "porting@example.com.", "porting@example..com", "a@example.com, b@example.com",
                                    "Porting, Inc. <porting@example.com>"])
def test_a_sender_address_no_relay_can_take_is_refused_at_startup_by_its_setting_name(sender):
    with pytest.raises(ValidationError, match="NOTIFIER_FROM_ADDRESS"):
        NotifierSettings(notifier_from_address=sender)


@pytest.mark.parametrize("sender", ["Portage Numéros <portage@xn--exmple-cua.ca>", "porting@carrier.example",
                                    '"Porting, Desk" <porting@carrier.example>'])
def test_a_sender_with_any_display_name_and_a_plain_ascii_address_is_taken(sender):
    assert NotifierSettings(notifier_from_address=sender).notifier_from_address == sender
