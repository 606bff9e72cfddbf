"""Service settings, read from environment variables (one place for every service)."""

from __future__ import annotations

import ssl
from typing import Literal

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .message_size import DEFAULT_MAX_MESSAGE_BYTES


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    database_url: str = "postgresql://postgres@127.0.0.1:5433/postgres"
    # Kafka SASL/TLS pass through here; PLAINTEXT is the local default.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    kafka_ssl_cafile: str | None = None
    # Prefixes every topic name (tests and shared clusters keep their topics apart).
    topic_prefix: str = ""
    # Prefixes the consumer group (the service's name). Tests use a fresh one, so a service
    # started after another of the same name never waits for the old group to rebalance.
    consumer_group_prefix: str = ""
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    # How long a fetch waits for records. The embedded broker answers a waiting fetch on a
    # fixed cycle, so a low wait keeps latency low; the cost is a few more empty fetches.
    consumer_fetch_max_wait_ms: int = Field(default=20, ge=0, le=5_000)
    # A poll of fewer than 100 records waits this long once for more before it is handled:
    # fewer, larger batches below the peak rate (see consume_loop.ConsumeLoop._poll). 0: never.
    consumer_linger_ms: int = Field(default=10, ge=0, le=1_000)
    # The broker's largest accepted record (Kafka's message.max.bytes, 1 MiB by default).
    # Follow-ups larger than this are refused when published, so their cause is dead-lettered.
    max_message_bytes: int = Field(default=DEFAULT_MAX_MESSAGE_BYTES, ge=10_000)
    # Fernet keys (comma-separated, newest first) that seal stored copies of whole events
    # (dead letters and their outbox rows), which may hold PINs and account numbers.
    # `porting up` makes one under its data directory; production sets its own.
    data_encryption_keys: SecretStr | None = None
    # How new data is sealed (porting_runtime.sealing): both are always opened. `fernet` while
    # an instance of a version before AES-GCM-SIV sealing still runs, or a rollback to one may come.
    sealing_format: Literal["aes-gcm-siv", "fernet"] = "aes-gcm-siv"
    dead_letter_retention_days: float = Field(default=30, gt=0)
    # /health turns degraded when a partition with lag, the relay with a backlog, or the
    # timers with due work made no progress for this long.
    stalled_after_seconds: float = Field(default=60, gt=0)
    outbox_batch_size: int = Field(default=1000, ge=1, le=10_000)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Above the topics a poll handles at once (each on its own connection), plus the relay, timers,
    # background work and HTTP.
    database_pool_size: int = Field(default=10, ge=2)
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def kafka_security(self) -> BaseSecurity | None:
        use_ssl = self.kafka_security_protocol in ("SSL", "SASL_SSL")
        context = ssl.create_default_context(cafile=self.kafka_ssl_cafile) if use_ssl else None
        if self.kafka_security_protocol in ("PLAINTEXT", "SSL"):
            return BaseSecurity(ssl_context=context, use_ssl=use_ssl) if use_ssl else None
        sasl = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}
        return sasl[self.kafka_sasl_mechanism](
            username=self.kafka_sasl_username or "",
            password=self.kafka_sasl_password or "",
            ssl_context=context,
            use_ssl=use_ssl,
        )
