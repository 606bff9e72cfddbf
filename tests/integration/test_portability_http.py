"""The Portability HTTP API on the real database, as clients and the twilio library see it."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from schemas import PortabilityReason

from ..kafka_support import fetchval
from .portability_support import (
    HELD_BY_SIBLING,
    HELD_BY_STRANGER,
    HELD_BY_TARGET,
    PARENT,
    PORTABLE,
    SIBLING,
    TARGET,
    TOKENS,
    WIRELESS,
    portability_api,
    portability_service,
)

SEED_FIELDS = {"phone_number", "account_sid", "portable", "pin_and_account_number_required", "not_portable_reason",
               "not_portable_reason_code", "number_type", "country", "url"}
ERROR_FIELDS = {"code", "message", "more_info", "status"}
R = PortabilityReason


@pytest.fixture(scope="module")
async def api(module_settings):
    async with portability_api(module_settings) as client:
        yield client


def path(number: str) -> str:
    return f"/v1/Porting/Portability/PhoneNumber/{number}"


@pytest.mark.parametrize(("number", "query", "code", "account_sid"), [
    (HELD_BY_TARGET, {}, R.ALREADY_IN_THE_TARGET_ACCOUNT, TARGET),
    (HELD_BY_SIBLING, {}, R.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS, SIBLING),
    (HELD_BY_STRANGER, {}, R.ALREADY_IN_TWILIO_DIFFERENT_OWNER, None),
    ("+573001234567", {}, R.UNSUPPORTED, None),
    ("+18002752273", {}, R.MANUAL_PORTING_AVAILABLE, None),
    ("+16135552671", {}, R.MISSING_REQUIRED_FIELDS, None),  # Canada needs the service address
    ("+16135552671", {"AddressSid": "AD" + "c" * 32}, None, None),
    (PORTABLE, {}, None, None),
])
async def test_a_well_formed_number_answers_200_with_the_seeds_fields_portable_or_not(api, number, query, code, account_sid):
    response = await api.get(path(number), params=query)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == SEED_FIELDS
    assert (body["not_portable_reason_code"], body["account_sid"]) == (code, account_sid)
    assert body["portable"] is (code is None)
    assert body["not_portable_reason"] == (code.name if code else None)
    assert body["phone_number"] == number
    assert body["url"].endswith(path(number) + (f"?AddressSid={query['AddressSid']}" if query else ""))


async def test_a_mobile_number_reports_that_a_pin_and_account_number_will_be_required(api):
    body = (await api.get(path(WIRELESS))).json()
    assert (body["number_type"], body["country"], body["pin_and_account_number_required"], body["portable"]) == \
        ("MOBILE", "US", True, True)


@pytest.mark.parametrize("number", ["14155552671", "+1 415 555 2671", "+15551234567", "hello"])
async def test_a_malformed_number_answers_400_with_code_22102(api, number):
    response = await api.get(path(number))
    assert response.status_code == 400
    assert set(response.json()) == ERROR_FIELDS
    assert response.json()["code"] == 22102


@pytest.mark.parametrize("auth", [None, (TARGET, "wrong-token"), ("AC" + "0" * 32, "x")])
async def test_missing_or_bad_credentials_answer_401_with_code_20003(api, auth):
    response = await api.get(path(PORTABLE), auth=auth) if auth else \
        await httpx.AsyncClient(base_url=str(api.base_url)).get(path(PORTABLE))
    assert response.status_code == 401
    assert response.json()["code"] == 20003
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("target", [PARENT, SIBLING, "AC" + "0" * 32, "not-an-account"])
async def test_a_target_account_the_caller_may_not_act_for_answers_403_with_code_20003(api, target):
    response = await api.get(path(PORTABLE), params={"TargetAccountSid": target})
    assert response.status_code == 403
    assert response.json()["code"] == 20003


async def test_a_parent_account_may_check_for_its_sub_account(api):
    response = await api.get(path(HELD_BY_TARGET), params={"TargetAccountSid": TARGET}, auth=(PARENT, TOKENS[PARENT]))
    assert response.json()["not_portable_reason_code"] == 22131


async def test_an_internal_failure_answers_503_with_code_22135(settings, tmp_path, monkeypatch):
    coverage = tmp_path / "coverage.yaml"
    coverage.write_text("countries: [")
    monkeypatch.setenv("PORTABILITY_COVERAGE_FILE", str(coverage))
    async with portability_service(settings) as service:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.settings.http_port}") as client:
            response = await client.get(path(PORTABLE), auth=(TARGET, TOKENS[TARGET]))
    assert response.status_code == 503
    assert response.json()["code"] == 22135


async def test_every_http_check_is_kept(api, module_settings):
    query = "SELECT count(*) FROM portability_checks WHERE requested_by = $1"
    before = await fetchval(module_settings.database_url, query, TARGET)
    await api.get(path(PORTABLE))
    await api.get(path(HELD_BY_TARGET))
    assert await fetchval(module_settings.database_url, query, TARGET) == before + 2


async def test_the_openapi_document_is_served_at_the_usual_path(api):
    document = (await api.get("/openapi.json")).json()
    assert "/v1/Porting/Portability/PhoneNumber/{PhoneNumber}" in document["paths"]


async def test_the_unchanged_twilio_library_fetches_a_portability_result(api):
    def fetch(number: str, **options):
        client = Client(TARGET, TOKENS[TARGET])
        client.numbers.base_url = str(api.base_url)
        return client.numbers.v1.porting_portabilities(number).fetch(**options)

    held = await asyncio.to_thread(fetch, HELD_BY_SIBLING, target_account_sid=TARGET)
    assert (held.portable, held.not_portable_reason, held.not_portable_reason_code, held.account_sid) == \
        (False, "ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS", 22136, SIBLING)
    assert (held.number_type, held.country, held.phone_number) == ("LOCAL", "US", HELD_BY_SIBLING)
    portable = await asyncio.to_thread(fetch, PORTABLE)
    assert portable.portable and portable.url.endswith(path(PORTABLE))
    with pytest.raises(TwilioRestException) as refused:
        await asyncio.to_thread(fetch, PORTABLE, target_account_sid=PARENT)
    assert (refused.value.status, refused.value.code) == (403, 20003)
