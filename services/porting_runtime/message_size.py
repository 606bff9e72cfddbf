"""How large a message is to the broker, near enough to refuse one before it is sent: the
follow-up a handler publishes, an outbox row the relay sends, a dead letter redriven."""

from __future__ import annotations

from collections.abc import Sequence

# The largest message a Kafka broker takes by default (message.max.bytes, near enough), and the
# services' MAX_MESSAGE_BYTES unless set.
DEFAULT_MAX_MESSAGE_BYTES = 1_000_000
# Kafka's per-record overhead beyond key, value and headers (offsets, lengths, batch header share).
RECORD_OVERHEAD_BYTES = 512


def message_size(key: bytes | None, value: bytes | None, headers: Sequence[tuple[str | bytes, bytes | None]]) -> int:
    return len(key or b"") + len(value or b"") + RECORD_OVERHEAD_BYTES + sum(
        len(name.encode() if isinstance(name, str) else name) + len(header or b"") for name, header in headers)
