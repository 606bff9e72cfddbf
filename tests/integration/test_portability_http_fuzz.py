"""The Portability API against hostile input, on the real app and database.

Whatever is sent: no 5xx (the database is up, so any would be a bug), every error in the public
shape with its status, and no look-alike of a number is ever answered as that number.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sys
import unicodedata
from urllib.parse import quote

import httpx
import pytest

from .portability_support import HELD_BY_STRANGER, PARENT, PORTABLE, TARGET, TOKENS, portability_api

ERROR_FIELDS = {"code", "message", "more_info", "status"}
PATH = "/v1/Porting/Portability/PhoneNumber/"
GOOD_AUTH = b"Basic " + base64.b64encode(f"{TARGET}:{TOKENS[TARGET]}".encode())
# Requests at once: enough to overlap, few enough for two cores and scrypt on each.
CONCURRENCY = 4


@pytest.fixture(scope="module")
async def api(module_settings):
    async with portability_api(module_settings) as client:
        yield client


def answered_properly(response: httpx.Response) -> dict | None:
    """Asserts the answer is no 5xx and, when an error, the public shape; returns an error's body."""
    assert response.status_code < 500, (response.request.url, response.status_code, response.text[:300])
    if response.status_code < 400 or response.request.method == "HEAD":
        return None
    assert response.headers["content-type"] == "application/json", response.text[:300]
    body = response.json()
    assert set(body) == ERROR_FIELDS, body
    assert body["status"] == response.status_code
    assert isinstance(body["code"], int) and body["more_info"].endswith(f"/{body['code']}")
    return body


async def send_all(api: httpx.AsyncClient, requests: list[httpx.Request]) -> list[httpx.Response]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(request: httpx.Request) -> httpx.Response:
        async with gate:
            return await api.send(request, auth=None)

    return await asyncio.gather(*(send(r) for r in requests))


def get(api: httpx.AsyncClient, raw_path: str, *, authorization: bytes | None = GOOD_AUTH,
        method: str = "GET") -> httpx.Request:
    """A request for exactly this (already percent-encoded) path and query."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    return api.build_request(method, httpx.URL(str(api.base_url).rstrip("/") + raw_path), headers=headers)


def encoded(number: str) -> str:
    """The number percent-encoded as UTF-8, as a client puts it in a path."""
    return quote(number, safe="+")


def _look_alike_digits() -> dict[str, str]:
    """One non-ASCII character per digit family (full-width, Arabic-Indic, Devanagari, superscript,
    circled, mathematical bold, ...) standing for a digit of HELD_BY_STRANGER, substituted into it."""
    variants: dict[str, str] = {}
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        value = unicodedata.digit(character, None)
        if value is None or "0" <= character <= "9":
            continue
        family = unicodedata.name(character, f"U+{code:04X}").rsplit(" ", 1)[0]
        position = HELD_BY_STRANGER.rfind(str(value))
        if family not in variants and position > 0:
            variants[family] = HELD_BY_STRANGER[:position] + character + HELD_BY_STRANGER[position + 1:]
    return variants


LOOK_ALIKE_DIGITS = _look_alike_digits()
LOOK_ALIKE_SPELLINGS = [
    HELD_BY_STRANGER + "\n", HELD_BY_STRANGER + "\r\n", HELD_BY_STRANGER + "\t", HELD_BY_STRANGER + " ",
    " " + HELD_BY_STRANGER, HELD_BY_STRANGER + "\x00", "\x00" + HELD_BY_STRANGER, "\ufeff" + HELD_BY_STRANGER,
    HELD_BY_STRANGER[:5] + "\u200b" + HELD_BY_STRANGER[5:], "\u202e" + HELD_BY_STRANGER,
    "＋" + HELD_BY_STRANGER[1:], "﹢" + HELD_BY_STRANGER[1:], "⁺" + HELD_BY_STRANGER[1:],
    "00" + HELD_BY_STRANGER[1:], "+0" + HELD_BY_STRANGER[1:], "++" + HELD_BY_STRANGER[1:],
    "+1 415 556 2603", "+1-415-556-2603", "+1(415)5562603", "+1.415.556.2603", HELD_BY_STRANGER[1:],
    "+4402079460000",  # libphonenumber reads it as +442079460000: a second spelling
]


def test_the_look_alikes_cover_dozens_of_digit_families():
    assert len(LOOK_ALIKE_DIGITS) > 40
    assert {"FULLWIDTH DIGIT", "ARABIC-INDIC DIGIT", "SUPERSCRIPT", "DEVANAGARI DIGIT"} <= set(LOOK_ALIKE_DIGITS)


async def test_the_held_number_itself_answers_that_it_belongs_to_someone_else(api):
    for spelling in (HELD_BY_STRANGER, "%2B" + HELD_BY_STRANGER[1:]):  # percent-encoded ASCII is the same URL
        response = await api.send(get(api, PATH + spelling), auth=None)
        assert response.status_code == 200
        assert (response.json()["not_portable_reason_code"], response.json()["phone_number"]) == \
            (22132, HELD_BY_STRANGER)


async def test_no_look_alike_of_a_held_number_is_answered_as_that_number_nor_as_any_number(api):
    spellings = [*LOOK_ALIKE_DIGITS.values(), *LOOK_ALIKE_SPELLINGS]
    responses = await send_all(api, [get(api, PATH + encoded(s)) for s in spellings])
    wrong = {s: (r.status_code, r.text[:120]) for s, r in zip(spellings, responses, strict=True)
             if r.status_code != 400 or answered_properly(r)["code"] != 22102}
    assert wrong == {}


@pytest.mark.parametrize("raw", [
    "%FF", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "%00", "%2B1415%00", "%E2%80%8B", "%F0%9F%93%9E", "%25",
    "%", "%G1", "%2B%2B", "%0A", "%2B1%0D%0A415", "%7F", "%1B%5B31m", "%2B1415555%C2%A0", "hello", "null",
    "undefined", "%2B1e10", "-1", "0x1F", "%2B1415555267" + "1" * 3, "%2B" + "1" * 15, "%2B" + "1" * 16,
    "%2B", "%2B1", "%2B12", "%2B1" + "2" * 64, "%2B" + "9" * 1000, "%2B" + "1" * 8000, "%2B%2D1", "%20%2B14155552671",
])
async def test_odd_encodings_and_lengths_of_the_number_are_22102(api, raw):
    response = await api.send(get(api, PATH + raw), auth=None)
    assert response.status_code == 400
    assert answered_properly(response)["code"] == 22102


def _basic(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


TOKEN = TOKENS[TARGET].encode()
BAD_AUTHORIZATIONS = {
    "absent": None,
    "empty": b"",
    "scheme alone": b"Basic",
    "not base64": b"Basic !!!not-base64!!!",
    "bad padding": _basic(TARGET.encode() + b":" + TOKEN)[:-1],
    "no colon": _basic(TARGET.encode() + TOKEN),
    "not UTF-8": _basic(b"\xff\xfe\xfd:" + TOKEN),
    "Latin-1 username": _basic("AC\u00e9:".encode("latin-1") + TOKEN),
    "NUL in the username": _basic(TARGET.encode() + b"\x00:" + TOKEN),
    "NUL alone as username": _basic(b"\x00:" + TOKEN),
    "NUL in the token": _basic(TARGET.encode() + b":" + TOKEN + b"\x00"),
    "colon alone": _basic(b":"),
    "no token": _basic(TARGET.encode() + b":"),
    "no username": _basic(b":" + TOKEN),
    "newline after the username": _basic(TARGET.encode() + b"\n:" + TOKEN),
    "upper-case sid": _basic(b"AC" + TARGET[2:].upper().encode() + b":" + TOKEN),
    "full-width sid": _basic("ＡＣ".encode() + TARGET[2:].encode() + b":" + TOKEN),
    "another account's token": _basic(TARGET.encode() + b":" + TOKENS[PARENT].encode()),
    "huge token": _basic(TARGET.encode() + b":" + b"x" * 6000),
    "huge username": _basic(b"AC" + b"f" * 6000 + b":" + TOKEN),
    "bearer": b"Bearer " + TOKEN,
    "digest": b'Digest username="' + TARGET.encode() + b'", realm="x", nonce="y"',
    "raw Latin-1 bytes": b"Basic \xff\xfe\xe9",
    "trailing garbage": _basic(TARGET.encode() + b":" + TOKEN) + b" extra",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATIONS.values(), ids=BAD_AUTHORIZATIONS.keys())
async def test_missing_or_malformed_credentials_answer_401_with_code_20003(api, authorization):
    response = await api.send(get(api, PATH + PORTABLE, authorization=authorization), auth=None)
    assert response.status_code == 401
    assert answered_properly(response)["code"] == 20003
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("scheme", [b"basic", b"BASIC", b"bAsIc"])
async def test_the_basic_scheme_is_case_insensitive(api, scheme):
    authorization = scheme + b" " + base64.b64encode(f"{TARGET}:{TOKENS[TARGET]}".encode())
    response = await api.send(get(api, PATH + PORTABLE, authorization=authorization), auth=None)
    assert response.status_code == 200 and response.json()["portable"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "PROPFIND", "FOO"])
async def test_a_wrong_method_answers_405_in_the_public_shape(api, method):
    response = await api.send(get(api, PATH + PORTABLE, method=method), auth=None)
    assert response.status_code == 405
    assert answered_properly(response)["code"] == 20004
    assert "GET" in response.headers["allow"]


async def test_head_is_never_a_server_error(api):
    answered_properly(await api.send(get(api, PATH + PORTABLE, method="HEAD"), auth=None))


@pytest.mark.parametrize("raw_path", [
    "/", "/v1", "/v1/Porting/Portability/PhoneNumber", PATH, PATH + PORTABLE + "/extra",
    "/v1/porting/portability/phonenumber/" + PORTABLE, "/v2/Porting/Portability/PhoneNumber/" + PORTABLE,
    "//v1/Porting/Portability/PhoneNumber/" + PORTABLE, PATH + "%2B1415%2F5552671", "/../../etc/passwd",
    "/%00", "/%FF", "/v1/Porting/Portability/PhoneNumber%00/" + PORTABLE, "/" + "a" * 6000, "/docs/../admin",
    PATH + PORTABLE + "/", "/health/", "/metrics/",
])
async def test_an_unknown_path_answers_404_with_code_20404(api, raw_path):
    # A trailing slash once answered a bodiless 307 to a Location on the caller's Host header.
    request = get(api, raw_path)
    request.headers["host"] = "evil.example"
    response = await api.send(request, auth=None)
    assert response.status_code == 404
    assert answered_properly(response)["code"] == 20404
    assert "location" not in response.headers


@pytest.mark.parametrize("query", [
    "?TargetAccountSid=", "?TargetAccountSid", "?TargetAccountSid=%00", f"?TargetAccountSid={TARGET}%0A",
    f"?TargetAccountSid={TARGET}%00", f"?TargetAccountSid={TARGET}x", f"?TargetAccountSid=ac{TARGET[2:]}",
    "?TargetAccountSid=" + quote("AC" + "０" * 32), "?TargetAccountSid=%FF", "?TargetAccountSid=" + "A" * 5000,
    f"?TargetAccountSid={PARENT}", "?TargetAccountSid=AC" + "0" * 32,
])
async def test_a_malformed_or_foreign_target_account_answers_403_with_code_20003(api, query):
    response = await api.send(get(api, PATH + PORTABLE + query), auth=None)
    assert response.status_code == 403
    assert answered_properly(response)["code"] == 20003


@pytest.mark.parametrize("query", [
    "?AddressSid=", "?AddressSid=%00", "?AddressSid=AD" + "c" * 32 + "%0A", "?AddressSid=AD" + "g" * 32,
    "?AddressSid=" + quote("AD" + "０" * 32), "?AddressSid=%FF",
])
async def test_a_malformed_address_sid_answers_400(api, query):
    response = await api.send(get(api, PATH + PORTABLE + query), auth=None)
    assert response.status_code == 400
    assert answered_properly(response)["code"] == 20001


@pytest.mark.parametrize("query", [
    "?Foo=bar", "?targetaccountsid=nonsense", "?%FF=%FF", "?=", "?&&&", "?a=" + "b" * 5000,
    f"?TargetAccountSid={TARGET}", f"?AddressSid=AD{'c' * 32}&Unknown=%00", "?" + "&".join(f"k{i}=v" for i in range(500)),
])
async def test_unknown_or_odd_query_parameters_do_not_change_the_answer(api, query):
    response = await api.send(get(api, PATH + PORTABLE + query), auth=None)
    assert response.status_code == 200
    assert (response.json()["phone_number"], response.json()["portable"]) == (PORTABLE, True)


async def test_a_malformed_number_is_22102_before_a_malformed_target_account_and_after_bad_credentials(api):
    both = PATH + "%2B1%EF%BC%94155552671?TargetAccountSid=%00"
    assert answered_properly(await api.send(get(api, both), auth=None))["code"] == 22102
    assert (await api.send(get(api, both, authorization=b"Basic x"), auth=None)).status_code == 401


async def _raw_exchange(api: httpx.AsyncClient, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(api.base_url.host, api.base_url.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), timeout=10)
    finally:
        writer.close()


@pytest.mark.parametrize("authorization", [b"Basic ", b"Basic  \t ", b"  Basic", b"Basic \x80\x81", b"Basic \xff"])
async def test_credentials_no_client_library_would_send_answer_401_with_code_20003(api, authorization):
    answer = await _raw_exchange(api, b"GET " + PATH.encode() + PORTABLE.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\nAuthorization: " + authorization + b"\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert json.loads(body)["code"] == 20003


@pytest.mark.parametrize("request_bytes", [
    b"GET " + PATH.encode() + b"+1\xef\xbc\x94155552671 HTTP/1.1\r\nHost: x\r\nAuthorization: " + GOOD_AUTH + b"\r\n\r\n",
    b"GET " + PATH.encode() + PORTABLE.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic \x00\r\n\r\n",
    b"GET " + PATH.encode() + PORTABLE.encode() + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n",
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(32) + b"\r\n\r\n",  # a TLS hello
    b"GET " + PATH.encode() + PORTABLE.encode() + b" HTTP/9.9\r\n\r\n",
])
async def test_what_is_not_http_at_all_is_refused_by_the_server_in_the_public_shape_and_the_api_goes_on(
        api, request_bytes):
    # Refused by the app (401, 404), or by the HTTP server before any app code runs
    # (porting_runtime.http_server): a public error either way.
    answer = await _raw_exchange(api, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:200]
    assert b"content-type: application/json" in head.lower()
    error = json.loads(body)
    assert set(error) == {"code", "message", "more_info", "status"} and error["status"] == status
    if status == 400:
        assert error["code"] == 20001 and error["message"] == "The request is not valid HTTP/1.1."
    response = await api.get(PATH + PORTABLE)
    assert response.status_code == 200 and response.json()["portable"]
