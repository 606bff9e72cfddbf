"""The notifier's own settings, read from the environment like the runtime's."""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from datetime import timedelta
from typing import Annotated

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import NoDecode

from porting_runtime import ServiceSettings

from .domain.attempts import RetryPolicy
from .domain.webhook_targets import WebhookTargets


# RFC 5322 dot-atom: atoms of atext joined by single dots.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


class NotifierSettings(ServiceSettings):
    # Where e-mail goes. The default is the local catcher `porting up` starts.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30, gt=0)
    notifier_from_address: str = "Number Porting <porting@localhost>"
    # The ops desk: every PortAlertRaised is e-mailed here (comma-separated).
    ops_alert_emails: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Standard Webhooks secret, `whsec_` and base64. Webhooks wait (and retry) while it is unset.
    webhook_signing_secret: SecretStr | None = None
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    # Webhook URLs are the customer's: https to public addresses only, unless these allow more
    # (`porting up` allows http and loopback, for a local receiver). CIDRs, comma-separated.
    webhook_allow_http: bool = False
    webhook_allowed_private_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)
    # Delivery: retried with exponential backoff, given up this long after it was recorded.
    delivery_give_up_hours: float = Field(default=24, gt=0)
    retry_first_delay_seconds: float = Field(default=30, gt=0)
    retry_multiplier: float = Field(default=2.0, ge=1)
    retry_max_delay_seconds: float = Field(default=3600, gt=0)
    # At most this many sends in flight per channel, per instance. An e-mail is four round trips
    # (MAIL, RCPT, DATA, the message) of a few ms each on a busy host: `make bench` measured 24 ms
    # a send to the local catcher, and over three runs each the pipeline did 658 requests/s (median)
    # with 16 and 771 with 64. A relay that limits connections per client (Postfix's
    # smtpd_client_connection_count_limit, 50, applied to clients outside mynetworks) needs less.
    email_send_concurrency: int = Field(default=64, ge=1, le=1000)
    webhook_send_concurrency: int = Field(default=8, ge=1, le=1000)
    # How long before a port date the reminder to configure voice and SMS routing goes out.
    routing_reminder_days_before: float = Field(default=2, ge=0)

    @field_validator("ops_alert_emails", "webhook_allowed_private_networks", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("notifier_from_address")
    @classmethod
    def _one_ascii_sender(cls, value: str) -> str:
        """The envelope sender goes in every MAIL FROM: one plain ASCII address whose local part
        and domain are dot-atoms (a display name may be any text, quoted where it holds a comma).
        A non-ASCII or malformed address failed every e-mail, each retried for a day."""
        found = email.utils.getaddresses([value])
        address = found[0][1] if len(found) == 1 else ""
        local, at, domain = address.rpartition("@")
        if not (at and _DOT_ATOM.fullmatch(local) and _DOT_ATOM.fullmatch(domain)):
            raise ValueError("NOTIFIER_FROM_ADDRESS must hold one plain ASCII address, as 'Name <porting@example.com>' "
                             "(a display name with a comma in double quotes; an internationalised domain in its "
                             "xn-- form)")
        return value

    @field_validator("webhook_signing_secret")
    @classmethod
    def _standard_webhooks_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        raw = value.get_secret_value()
        if not raw.startswith("whsec_"):
            raise ValueError("WEBHOOK_SIGNING_SECRET must be whsec_ followed by base64 (24 to 64 random bytes)")
        encoded = raw.removeprefix("whsec_").rstrip("=")
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("WEBHOOK_SIGNING_SECRET: the part after whsec_ is not base64") from None
        if len(key) < 24:
            raise ValueError("WEBHOOK_SIGNING_SECRET is too short: use at least 24 random bytes")
        return value

    def webhook_targets(self) -> WebhookTargets:
        return WebhookTargets(allow_http=self.webhook_allow_http,
                              allowed_private_networks=tuple(self.webhook_allowed_private_networks))

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            first_delay=timedelta(seconds=self.retry_first_delay_seconds),
            multiplier=self.retry_multiplier,
            max_delay=timedelta(seconds=self.retry_max_delay_seconds),
            give_up_after=timedelta(hours=self.delivery_give_up_hours),
        )
