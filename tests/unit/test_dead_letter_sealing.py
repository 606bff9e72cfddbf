"""Sealing keeps stored copies of events unreadable without the configured keys."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
import stat

import pytest
from pydantic import SecretStr

from porting_runtime.sealed_outbox import open_outbox_row, pack_message, unpack_message
from porting_runtime.sealing import (
    LOCAL_KEY_FILE,
    SealedDataUnreadable,
    Sealer,
    SealingKeyMissing,
    ensure_local_key,
    kept_secret,
    generate_key,
)
from porting_runtime.settings import ServiceSettings

PIN = b'{"pin": "7261"}'


def test_sealed_data_opens_with_its_key_and_does_not_contain_the_clear_bytes():
    sealer = Sealer([generate_key()])
    token = sealer.seal(PIN)
    assert b"7261" not in token
    assert sealer.unseal(token) == PIN


def test_data_sealed_under_an_older_key_still_opens_after_a_new_key_is_prepended():
    old, new = generate_key(), generate_key()
    token = Sealer([old]).seal(PIN)
    rotated = Sealer([new, old])
    assert rotated.unseal(token) == PIN
    assert Sealer([new]).unseal(rotated.seal(PIN)) == PIN  # new data goes under the newest key


def test_data_sealed_under_a_key_no_longer_configured_cannot_be_opened():
    token = Sealer([generate_key()]).seal(PIN)
    with pytest.raises(SealedDataUnreadable):
        Sealer([generate_key()]).unseal(token)


def test_a_sealer_built_from_settings_uses_the_comma_separated_keys_newest_first():
    old, new = generate_key(), generate_key()
    settings = ServiceSettings(data_encryption_keys=SecretStr(f"{new}, {old}"))
    sealer = Sealer.from_settings(settings)
    assert sealer.unseal(Sealer([old]).seal(PIN)) == PIN
    assert Sealer([new]).unseal(sealer.seal(PIN)) == PIN


def test_settings_without_a_key_are_refused_with_a_message_naming_the_setting():
    with pytest.raises(SealingKeyMissing, match="DATA_ENCRYPTION_KEYS"):
        Sealer.from_settings(ServiceSettings(data_encryption_keys=None))
    with pytest.raises(SealingKeyMissing, match="DATA_ENCRYPTION_KEYS"):
        Sealer.from_settings(ServiceSettings(data_encryption_keys=SecretStr(" , ")))


def test_a_malformed_key_is_refused_without_echoing_it():
    with pytest.raises(SealingKeyMissing) as refused:
        Sealer([generate_key(), "not-a-fernet-key-secret"])
    assert "key number 2" in str(refused.value)
    assert "not-a-fernet-key-secret" not in str(refused.value)


def test_the_local_key_is_made_once_readable_only_by_its_owner_and_kept(tmp_path):
    first = ensure_local_key(tmp_path / "data")
    assert ensure_local_key(tmp_path / "data") == first
    path = tmp_path / "data" / LOCAL_KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert Sealer([first]).unseal(Sealer([first]).seal(PIN)) == PIN


def test_a_damaged_local_key_file_is_refused_rather_than_replaced(tmp_path):
    (tmp_path / LOCAL_KEY_FILE).write_text("garbage\n")
    with pytest.raises(SealingKeyMissing):
        ensure_local_key(tmp_path)
    assert (tmp_path / LOCAL_KEY_FILE).read_text() == "garbage\n"


def test_a_packed_message_keeps_nul_and_non_utf8_header_names_and_null_header_values():
    headers = [(b"ce\x00id", b"1"), (b"\xff\xfe", None), (b"", b""), (b"traceparent", b"00-ab")]
    for value in (PIN, b"", None):
        assert unpack_message(pack_message(value, headers)) == (value, headers)


def test_an_unsealed_outbox_row_opens_as_it_is_stored():
    row = {"topic": "t", "key": b"k", "value": b"v", "header_names": ["a"], "header_values": [b"1"], "sealed": False}
    message = open_outbox_row(row, Sealer([generate_key()]))
    assert (message.topic, message.key, message.value, message.headers) == ("t", b"k", b"v", [("a", b"1")])


def test_a_sealed_outbox_row_opens_to_its_value_and_headers_with_names_as_kafka_strings():
    sealer = Sealer([generate_key()])
    blob = sealer.seal(pack_message(PIN, [(b"ce_id", b"e1"), (b"n\x00ul", None), (b"bad\xff", b"x")]))
    row = {"topic": "t", "key": b"k", "value": blob, "header_names": [], "header_values": [], "sealed": True}
    message = open_outbox_row(row, sealer)
    assert message.value == PIN
    assert message.headers == [("ce_id", b"e1"), ("n\x00ul", None), ("bad\\xff", b"x")]


def test_stacks_starting_together_all_read_the_one_secret_that_was_kept(tmp_path):
    path = tmp_path / "stack" / "secret"
    makes = iter(range(1000))
    barrier = threading.Barrier(8)

    def make() -> str:
        # Slow, as a write can be: the others start while the first is making its secret, so a
        # file opened at its final name before it is written is read half-written (empty) every
        # time, not only when the threads happen to interleave so.
        time.sleep(0.05)
        return f"secret-{next(makes)}"

    def start() -> str:
        barrier.wait()
        return kept_secret(path, make)

    with ThreadPoolExecutor(8) as pool:
        read = list(pool.map(lambda _: start(), range(8)))
    assert len(set(read)) == 1 and read[0] == path.read_text().strip()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"], "no temporary file left behind"
