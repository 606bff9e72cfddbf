"""The portability service on the real broker and database: PortRequested in, PortabilityChecked out."""

from __future__ import annotations

from schemas import KafkaRecord, PortabilityReason, dead_letter_topic

from ..kafka_support import collect, fetchval, publish, wait_until
from .portability_support import (
    HELD_BY_SIBLING,
    HELD_BY_STRANGER,
    HELD_BY_TARGET,
    PORTABLE,
    TARGET,
    WIRELESS,
    answers_for,
    checked,
    portability_service,
    request_for,
    status_change,
)

R = PortabilityReason


async def test_every_reason_code_comes_back_in_one_portability_checked_per_request(settings):
    numbers = {
        "415 555 2671": R.INVALID_PHONE_NUMBER,
        HELD_BY_TARGET: R.ALREADY_IN_THE_TARGET_ACCOUNT,
        HELD_BY_SIBLING: R.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS,
        HELD_BY_STRANGER: R.ALREADY_IN_TWILIO_DIFFERENT_OWNER,
        "+573001234567": R.UNSUPPORTED,
        "+18002752273": R.MANUAL_PORTING_AVAILABLE,
        WIRELESS: R.MISSING_REQUIRED_FIELDS,  # no PIN given
        PORTABLE: None,
    }
    async with portability_service(settings):
        sid, record = request_for(settings, list(numbers))
        unknown_sid, unknown_account = request_for(settings, [PORTABLE], account="AC" + "0" * 32)
        answers = await answers_for(settings, [record, unknown_account], [sid, unknown_sid])
        recorded = await fetchval(settings.database_url, "SELECT count(*) FROM portability_checks")

    results = answers[sid].results
    assert [r.phone_number for r in results] == ["415 555 2671", *list(numbers)[1:]]
    assert [r.not_portable_reason_code for r in results] == list(numbers.values())
    assert [r.not_portable_reason for r in results][:2] == ["INVALID_PHONE_NUMBER", "ALREADY_IN_THE_TARGET_ACCOUNT"]
    assert results[-1].portable and results[-1].requirements is not None
    assert answers[unknown_sid].results[0].not_portable_reason_code is R.UNAUTHORIZED
    assert recorded == len(numbers) + 1, "every check is kept"


async def test_a_request_for_a_thousand_numbers_is_answered_with_one_portability_checked(settings):
    numbers = [f"+1201555{i:04d}" for i in range(1000)]
    async with portability_service(settings):
        sid, record = request_for(settings, numbers)
        answers = await answers_for(settings, [record], [sid])
    assert len(answers[sid].results) == 1000
    assert all(r.portable for r in answers[sid].results)


async def test_a_completed_port_moves_the_number_into_the_target_account(settings):
    async with portability_service(settings):
        first_sid, first = request_for(settings, [PORTABLE])
        await answers_for(settings, [first], [first_sid])
        # The workflow says the port is under way, then completed.
        await publish(settings, [status_change(settings, first_sid, PORTABLE, "in_review", "in_review"),
                                 status_change(settings, first_sid, PORTABLE, "completed", "completed")])
        await _until_held(settings, PORTABLE)
        again_sid, again = request_for(settings, [PORTABLE])
        answers = await answers_for(settings, [again], [first_sid, again_sid])
    assert answers[again_sid].results[0].not_portable_reason_code is R.ALREADY_IN_THE_TARGET_ACCOUNT
    assert answers[again_sid].results[0].account_sid == TARGET


async def test_a_number_is_reserved_while_its_port_is_under_way_and_released_when_cancelled(settings):
    other_account = "AC" + "7" * 32
    async with portability_service(settings) as service:
        await service.pool.execute("INSERT INTO accounts VALUES ($1, NULL, 'x')", other_account)
        sid, _ = request_for(settings, [PORTABLE])
        await publish(settings, [status_change(settings, sid, PORTABLE, "in_review", "in_review")])
        await _until_reserved(settings, PORTABLE, True)
        during_sid, during = request_for(settings, [PORTABLE], account=other_account)
        await answers_for(settings, [during], [during_sid])  # answered before the cancellation arrives
        await publish(settings, [status_change(settings, sid, PORTABLE, "canceled", "canceled")])
        await _until_reserved(settings, PORTABLE, False)
        after_sid, after = request_for(settings, [PORTABLE], account=other_account)
        answers = await answers_for(settings, [after], [during_sid, after_sid])
    assert answers[during_sid].results[0].not_portable_reason_code is R.ALREADY_IN_TWILIO_DIFFERENT_OWNER
    assert answers[after_sid].results[0].portable


async def test_malformed_and_schema_violating_requests_are_dead_lettered_and_the_service_keeps_consuming(settings):
    async with portability_service(settings):
        sid, good = request_for(settings, [PORTABLE])
        bad_json = KafkaRecord(good.topic, good.key, b'{"port_in_request_sid": ', good.headers)
        no_numbers = KafkaRecord(good.topic, good.key, good.value.replace(b'"phone_numbers":[{', b'"phone_numbers":[],"x":[{'), good.headers)
        await publish(settings, [bad_json, no_numbers, good])
        answers = await checked(settings, [sid])
        dead = await collect(settings, settings.topic(dead_letter_topic("portability")), expect=2)
    assert answers[sid].results[0].portable
    assert [d.value for d in dead] == [bad_json.value, no_numbers.value]


async def test_a_broken_coverage_file_answers_internal_error_until_it_is_fixed(settings, tmp_path, monkeypatch):
    coverage = tmp_path / "coverage.yaml"
    coverage.write_text("countries: [")
    monkeypatch.setenv("PORTABILITY_COVERAGE_FILE", str(coverage))
    async with portability_service(settings):
        broken_sid, broken = request_for(settings, [PORTABLE])
        await answers_for(settings, [broken], [broken_sid])
        coverage.write_text("countries:\n  US: {number_types: {LOCAL: api}, min_notice_business_days: 2, "
                            "cancellation_policy: north_american}\n")
        fixed_sid, fixed = request_for(settings, [PORTABLE])
        answers = await answers_for(settings, [fixed], [broken_sid, fixed_sid])
    assert answers[broken_sid].results[0].not_portable_reason_code is R.ERROR_INTERNAL_SERVER_ERROR
    assert answers[fixed_sid].results[0].portable


async def test_look_alike_and_control_character_numbers_are_each_22102_and_the_request_is_answered(settings):
    numbers = {
        "+1４155562603": R.INVALID_PHONE_NUMBER,  # full-width 4: HELD_BY_STRANGER to libphonenumber
        "+1\u0664155562603": R.INVALID_PHONE_NUMBER,  # Arabic-Indic 4
        HELD_BY_STRANGER + "\n": R.INVALID_PHONE_NUMBER,
        "+1415556260\x00": R.INVALID_PHONE_NUMBER,  # Postgres text and jsonb refuse a NUL
        "\x00": R.INVALID_PHONE_NUMBER,
        "+1415\x1b[2J": R.INVALID_PHONE_NUMBER,
        "+4402079460000": R.INVALID_PHONE_NUMBER,  # a second spelling of +442079460000
        HELD_BY_STRANGER: R.ALREADY_IN_TWILIO_DIFFERENT_OWNER,
        PORTABLE: None,
    }
    async with portability_service(settings) as service:
        sid, record = request_for(settings, list(numbers))
        answers = await answers_for(settings, [record], [sid])
        kept = await service.pool.fetch(
            "SELECT phone_number, phone_number_given, result FROM portability_checks WHERE port_in_request_sid = $1 "
            "ORDER BY id", sid)
        dead = await fetchval(settings.database_url, "SELECT count(*) FROM dead_letters")
    results = answers[sid].results
    assert [r.phone_number for r in results] == list(numbers), "each number answered, as given"
    assert [r.not_portable_reason_code for r in results] == list(numbers.values())
    assert dead == 0
    assert [row["phone_number_given"].decode() for row in kept] == list(numbers), "kept exactly, as bytes"
    assert [row["phone_number"] for row in kept] == [None] * 6 + ["+4402079460000", HELD_BY_STRANGER, PORTABLE]


async def test_a_status_change_for_a_look_alike_number_reserves_nothing(settings):
    async with portability_service(settings) as service:
        sid, _ = request_for(settings, [PORTABLE])
        # One request's changes share a key, hence a partition: the second is applied after the first.
        await publish(settings, [status_change(settings, sid, "+1２015550123", "in_review", "in_review"),
                                 status_change(settings, sid, PORTABLE + "\n", "in_review", "in_review"),
                                 status_change(settings, sid, PORTABLE, "in_review", "in_review")])
        await _until_reserved(settings, PORTABLE, True)
        reserved = await service.pool.fetch("SELECT phone_number FROM inventory WHERE port_in_request_sid = $1", sid)
    assert [r["phone_number"] for r in reserved] == [PORTABLE]


async def _until_held(settings, number):
    async def held():
        return await fetchval(settings.database_url,
                              "SELECT account_sid FROM inventory WHERE phone_number = $1 AND port_in_request_sid IS NULL", number)
    assert await wait_until(held) == TARGET


async def _until_reserved(settings, number, reserved: bool):
    async def state():
        value = await fetchval(settings.database_url,
                               "SELECT port_in_request_sid IS NOT NULL FROM inventory WHERE phone_number = $1", number)
        return bool(value) == reserved
    await wait_until(state, what=f"{number} reserved is {reserved}")
