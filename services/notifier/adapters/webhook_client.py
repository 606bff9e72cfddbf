"""POSTs a signed webhook (Standard Webhooks) and says what came of it.

The signature covers the delivery id, the attempt's timestamp and the exact body bytes, so a
receiver using any Standard Webhooks library can reject a forged, altered or replayed call.
Redirects are not followed: the signature was made for this URL's receiver. The URL is the
customer's, so it is sent to only as the webhook rules allow (domain/webhook_targets.py): a
refused URL is a final failure, kept as an attempt with its reason, never retried.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from .. import metrics
from ..domain.attempts import AttemptResult, Outcome, classify_http_status
from ..domain.webhook_targets import TargetRefused, WebhookTargets
from .pinned_transport import PinnedTransport, Resolver, system_resolver

USER_AGENT = "porting-notifier/1.0"


class WebhookClient:
    def __init__(self, signing_secret: str | None, *, timeout_seconds: float = 10.0, max_connections: int = 32,
                 targets: WebhookTargets | None = None, resolver: Resolver = system_resolver) -> None:
        self.signer = Webhook(signing_secret) if signing_secret else None
        self.targets = targets or WebhookTargets()  # https to public addresses only, unless the operator says
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            transport=PinnedTransport(self.targets, limits=limits, resolver=resolver),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
        )

    async def close(self) -> None:
        await self.client.aclose()

    def signed_headers(self, delivery_id: str, body: bytes, at: datetime) -> dict[str, str]:
        if self.signer is None:
            raise RuntimeError("WEBHOOK_SIGNING_SECRET is not set")
        at = at.astimezone(UTC)
        return {
            "content-type": "application/json",
            "webhook-id": delivery_id,
            "webhook-timestamp": str(math.floor(at.timestamp())),
            "webhook-signature": self.signer.sign(delivery_id, at, body.decode()),
        }

    async def post(self, url: str, delivery_id: str, body: bytes, *, at: datetime | None = None) -> AttemptResult:
        if self.signer is None:
            # Nothing unsigned ever leaves; it waits (and retries) until the secret is configured.
            return AttemptResult(Outcome.RETRYABLE, "WEBHOOK_SIGNING_SECRET is not set: not sent")
        headers = self.signed_headers(delivery_id, body, at or datetime.now(UTC))
        try:
            parsed = httpx.URL(url)
            self.targets.check_url(parsed.scheme, parsed.host)
            response = await self.client.post(parsed, content=body, headers=headers)
        except TargetRefused as refused:
            metrics.WEBHOOK_TARGETS_REFUSED.labels(refused.kind).inc()
            return AttemptResult(Outcome.FAILED, refused.reason[:500])
        except httpx.TimeoutException as error:
            return AttemptResult(Outcome.RETRYABLE, f"no answer in time ({type(error).__name__})")
        except httpx.TransportError as error:
            return AttemptResult(Outcome.RETRYABLE, f"connection failed: {type(error).__name__}: {error}"[:500])
        except httpx.InvalidURL as error:
            return AttemptResult(Outcome.FAILED, f"invalid webhook URL: {error}"[:500])
        outcome = classify_http_status(response.status_code)
        return AttemptResult(outcome, f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                             status_code=response.status_code, retry_after=_retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds, given as a number or as an HTTP date (RFC 9110 10.2.3)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
