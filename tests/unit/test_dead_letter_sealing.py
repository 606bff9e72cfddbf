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


# AES-256-GCM sealing, and Fernet tokens from earlier versions.

VALUE = (bytes(range(256)) * 2 + b'{"pin": "7261", "account_number": "ACC-99887766"}').ljust(600, b"x")
NONCE_AT, CIPHERTEXT_AT = 1, 13  # marker, then the 12-byte nonce, then ciphertext and the 16-byte tag


def test_a_sealed_value_opens_to_itself_and_never_contains_the_plaintext():
    sealer = Sealer([generate_key()])
    for value in (VALUE, PIN, b"", b"\x00", b"gAAAAA"):
        token = sealer.seal(value)
        assert sealer.unseal(token) == value
        if len(value) >= 4:  # a byte or two turns up in random ciphertext by chance (b"\x00" did, in CI)
            assert value not in token
    assert b"7261" not in sealer.seal(VALUE) and b"ACC-99887766" not in sealer.seal(VALUE)


def test_two_seals_of_the_same_value_differ():
    sealer = Sealer([generate_key()])
    tokens = {sealer.seal(VALUE) for _ in range(50)}
    assert len(tokens) == 50
    assert len({t[NONCE_AT:CIPHERTEXT_AT] for t in tokens}) == 50, "a fresh nonce every time"


def test_a_new_token_is_the_marker_a_nonce_and_aes_256_gcm_siv_under_a_key_derived_with_hkdf_from_the_configured_one():
    # Pins the stored format: data sealed today must open with the code of tomorrow.
    import base64

    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = generate_key()
    token = Sealer([key]).seal(VALUE)
    assert token[:1] == b"\x01" and len(token) == 1 + 12 + len(VALUE) + 16
    derived = HKDF(algorithm=SHA256(), length=32, salt=None,
                   info=b"porting-platform sealing aes-256-gcm-siv v1").derive(base64.urlsafe_b64decode(key))
    assert derived != base64.urlsafe_b64decode(key)
    assert AESGCMSIV(derived).decrypt(token[NONCE_AT:CIPHERTEXT_AT], token[CIPHERTEXT_AT:], b"\x01") == VALUE


def test_the_marker_can_never_begin_a_fernet_token():
    from cryptography.fernet import Fernet

    fernet, sealer = Fernet(generate_key()), Sealer([generate_key()])
    assert all(fernet.encrypt(value).startswith(b"gAAAAA") for value in (b"", PIN, VALUE))
    assert all(sealer.seal(value)[:1] == b"\x01" for value in (b"", PIN, VALUE))


def test_a_fernet_token_made_by_the_previous_version_still_opens():
    from cryptography.fernet import Fernet

    key = generate_key()
    for value in (VALUE, PIN, b""):
        assert Sealer([key]).unseal(Fernet(key.encode("ascii")).encrypt(value)) == value
    assert Sealer.from_text(f" {key} ").unseal(Fernet(key).encrypt(PIN)) == PIN


def test_a_fernet_token_sealed_under_an_older_key_still_opens_after_a_new_key_is_prepended():
    from cryptography.fernet import Fernet

    old, new = generate_key(), generate_key()
    legacy = Fernet(old).encrypt(VALUE)
    assert Sealer([new, old]).unseal(legacy) == VALUE
    with pytest.raises(SealedDataUnreadable):
        Sealer([new]).unseal(legacy)


def test_a_value_sealed_under_an_older_key_opens_after_a_new_key_is_prepended_and_not_once_the_old_key_is_dropped():
    old, middle, new = generate_key(), generate_key(), generate_key()
    token = Sealer([old]).seal(VALUE)
    assert Sealer([new, old]).unseal(token) == VALUE
    assert Sealer([new, middle, old]).unseal(token) == VALUE
    resealed = Sealer([new, old]).seal(VALUE)
    assert Sealer([new]).unseal(resealed) == VALUE, "new data goes under the newest key"
    for without_old in ([new], [new, middle]):
        with pytest.raises(SealedDataUnreadable):
            Sealer(without_old).unseal(token)


def _flipped(token: bytes, at: int) -> bytes:
    return token[:at] + bytes([token[at] ^ 0x01]) + token[at + 1:]


DAMAGES = {
    "a byte of the nonce flipped": lambda t: _flipped(t, NONCE_AT + 5),
    "the first byte of the ciphertext flipped": lambda t: _flipped(t, CIPHERTEXT_AT),
    "a byte in the middle of the ciphertext flipped": lambda t: _flipped(t, CIPHERTEXT_AT + 300),
    "a byte of the tag flipped": lambda t: _flipped(t, len(t) - 1),
    "truncated to 0 bytes": lambda t: t[:0],
    "truncated to 1 byte": lambda t: t[:1],
    "truncated to 12 bytes": lambda t: t[:12],
    "truncated to 28 bytes": lambda t: t[:28],
    "truncated to 29 bytes": lambda t: t[:29],
    "the tag cut off": lambda t: t[:-16],
    "the last byte cut off": lambda t: t[:-1],
    "a byte appended": lambda t: t + b"\x00",
    "the marker changed to another byte": lambda t: b"\x02" + t[1:],
    "the marker changed to a Fernet token's first byte": lambda t: b"g" + t[1:],
    "the marker dropped": lambda t: t[1:],
    "the marker alone": lambda t: b"\x01",
    "the marker and a nonce and tag of zeros": lambda t: b"\x01" + bytes(28),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_token_raises_sealed_data_unreadable_and_nothing_else(damage):
    sealer = Sealer([generate_key(), generate_key()])
    damaged = damage(sealer.seal(VALUE))
    with pytest.raises(SealedDataUnreadable) as refused:
        sealer.unseal(damaged)
    assert type(refused.value) is SealedDataUnreadable
    assert refused.value.__cause__ is None and refused.value.__context__ is None, "no cryptography error chained"
    assert str(refused.value) == ("sealed data cannot be opened with the configured DATA_ENCRYPTION_KEYS "
                                  "(sealed under a key since removed, or damaged)")


@pytest.mark.parametrize("damage", [lambda t: _flipped(t, 10), lambda t: t[:-1], lambda t: t[:0], lambda t: b"x" + t])
def test_a_damaged_fernet_token_from_the_previous_version_raises_sealed_data_unreadable(damage):
    from cryptography.fernet import Fernet

    key = generate_key()
    with pytest.raises(SealedDataUnreadable):
        Sealer([key]).unseal(damage(Fernet(key).encrypt(VALUE)))


def test_the_error_message_does_not_contain_the_key():
    keys = [generate_key(), generate_key()]
    for token in (Sealer([generate_key()]).seal(VALUE), _flipped(Sealer(keys).seal(VALUE), CIPHERTEXT_AT), b"\x01"):
        with pytest.raises(SealedDataUnreadable) as refused:
            Sealer(keys).unseal(token)
        shown = f"{refused.value!s} {refused.value!r}"
        assert refused.value.__context__ is None and refused.value.__cause__ is None
        for key in keys:
            assert key not in shown and key[:12] not in shown


def test_while_sealing_format_is_fernet_new_data_opens_with_the_previous_versions_fernet_and_both_formats_still_open():
    # A rolling upgrade from a version that only reads Fernet: its instances must read what this one seals.
    from cryptography.fernet import Fernet, MultiFernet

    from porting_runtime.settings import ServiceSettings

    old, new = generate_key(), generate_key()
    settings = ServiceSettings(data_encryption_keys=f"{new},{old}", sealing_format="fernet")
    compatible = Sealer.from_settings(settings)
    token = compatible.seal(VALUE)
    assert MultiFernet([Fernet(new), Fernet(old)]).decrypt(token) == VALUE  # what the previous version does
    assert compatible.unseal(Sealer([new, old]).seal(PIN)) == PIN
    assert Sealer([new, old]).unseal(token) == VALUE
    assert Sealer.from_settings(ServiceSettings(data_encryption_keys=new)).seal(PIN)[:1] == b"\x01"


def test_an_unknown_sealing_format_is_refused_by_name():
    with pytest.raises(ValueError, match="SEALING_FORMAT"):
        Sealer([generate_key()], "rot13")


@pytest.mark.parametrize("wrap", [bytearray, memoryview])
def test_a_token_read_as_a_bytearray_or_memoryview_opens_in_either_format(wrap):
    from cryptography.fernet import Fernet

    key = generate_key()
    assert Sealer([key]).unseal(wrap(Sealer([key]).seal(VALUE))) == VALUE
    assert Sealer([key]).unseal(wrap(Fernet(key).encrypt(VALUE))) == VALUE
