"""Service settings, read from environment variables (one place for every service)."""

from __future__ import annotations

import ssl
from typing import Literal

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    consumer_batch_size: int = Field(default=500, ge=1, le=10_000)
    outbox_batch_size: int = Field(default=1000, ge=1, le=10_000)
    outbox_poll_interval_seconds: float = Field(default=1.0, gt=0)
    database_pool_size: int = Field(default=5, ge=2)
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
