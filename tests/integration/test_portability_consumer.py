"""The portability service on the real broker and database: PortRequested in, PortabilityChecked out."""

from __future__ import annotations

from porting_runtime.secret_fields import topic_copy
from schemas import KafkaRecord, PortabilityChecked, PortabilityReason, dead_letter_topic

from ..kafka_support import collect, fetchval, publish, wait_until
from ..factories import request_sid
from .portability_support import (
    HELD_BY_SIBLING,
    HELD_BY_STRANGER,
    HELD_BY_TARGET,
    PORTABLE,
    SIBLING,
    STRANGER,
    TARGET,
    WIRELESS,
    answers_for,
    checked,
    consumer_records,
    portability_handlers,
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
    # As they came, but for the PIN and account number (DESIGN 9; the kept rows have them).
    assert [d.value for d in dead] == [topic_copy(bad_json.value)[0], topic_copy(no_numbers.value)[0]]


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


async def test_look_alike_numbers_are_each_22102_and_control_characters_are_refused_by_the_contract(settings):
    numbers = {
        "+1４155562603": R.INVALID_PHONE_NUMBER,  # full-width 4: HELD_BY_STRANGER to libphonenumber
        "+1\u0664155562603": R.INVALID_PHONE_NUMBER,  # Arabic-Indic 4
        "+4402079460000": R.INVALID_PHONE_NUMBER,  # a second spelling of +442079460000
        HELD_BY_STRANGER: R.ALREADY_IN_TWILIO_DIFFERENT_OWNER,
        PORTABLE: None,
    }
    # A NUL passed this check and then failed the workflow's PostgreSQL: refused at the contract now.
    controls = ["+1415556260\\u0000", "\\u0000", "+1415\\u001b[2J", HELD_BY_STRANGER + "\\n"]
    refused = []
    for control in controls:
        refused_sid, like = request_for(settings, [PORTABLE])
        refused.append((refused_sid, KafkaRecord(like.topic, like.key, like.value.replace(
            f'"{PORTABLE}"'.encode(), f'"{control}"'.encode()), like.headers)))
    async with portability_service(settings) as service:
        sid, record = request_for(settings, list(numbers))
        await publish(settings, [record for _, record in refused])
        answers = await answers_for(settings, [record], [sid])
        await wait_until(lambda: fetchval(settings.database_url, "SELECT count(*) = $1 FROM dead_letters",
                                          len(controls)), what="the requests with control characters dead-lettered")
        kept = await service.pool.fetch(
            "SELECT phone_number, phone_number_given, result FROM portability_checks WHERE port_in_request_sid = $1 "
            "ORDER BY id", sid)
        reasons = [r["error"] for r in await service.pool.fetch("SELECT error FROM dead_letters")]
        checks_of_refused = await fetchval(settings.database_url, "SELECT count(*) FROM portability_checks "
                                           "WHERE port_in_request_sid = ANY ($1::text[])", [s for s, _ in refused])
    results = answers[sid].results
    assert [r.phone_number for r in results] == list(numbers), "each number answered, as given"
    assert [r.not_portable_reason_code for r in results] == list(numbers.values())
    assert [row["phone_number_given"].decode() for row in kept] == list(numbers), "kept exactly, as bytes"
    assert [row["phone_number"] for row in kept] == [None] * 2 + ["+4402079460000", HELD_BY_STRANGER, PORTABLE]
    assert len(reasons) == len(controls)
    assert all("phone_number" in reason and "pattern" in reason for reason in reasons), reasons
    assert checks_of_refused == 0


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


UNKNOWN_ACCOUNT = "AC" + "0" * 32
# Per target account: the answers to HELD_BY_TARGET, a fresh portable number, and a look-alike of HELD_BY_STRANGER.
EXPECTED = {
    TARGET: [R.ALREADY_IN_THE_TARGET_ACCOUNT, None, R.INVALID_PHONE_NUMBER],
    SIBLING: [R.ALREADY_IN_ONE_OF_YOUR_TWILIO_ACCOUNTS, None, R.INVALID_PHONE_NUMBER],
    STRANGER: [R.ALREADY_IN_TWILIO_DIFFERENT_OWNER, None, R.INVALID_PHONE_NUMBER],
    UNKNOWN_ACCOUNT: [R.UNAUTHORIZED, R.UNAUTHORIZED, R.INVALID_PHONE_NUMBER],
}


def _statements(statements: list[str], fragment: str) -> int:
    return sum(fragment in statement for statement in statements)


async def _outbox(consumer) -> list[tuple[PortabilityChecked, dict[str, bytes]]]:
    rows = await consumer.pool.fetch(
        "SELECT value, header_names, header_values FROM outbox WHERE topic LIKE '%portability-checked%' ORDER BY id")
    return [(PortabilityChecked.model_validate_json(r["value"]), dict(zip(r["header_names"], r["header_values"],
                                                                          strict=True))) for r in rows]


async def test_a_batch_of_requests_is_checked_with_one_read_and_one_insert_and_each_gets_its_own_answer(settings):
    accounts = list(EXPECTED)
    requests = [request_for(settings, [HELD_BY_TARGET, f"+1201555{i:04d}", "+1４155562603"], account=accounts[i % 4])
                for i in range(300)]
    async with portability_handlers(settings) as (consumer, statements):
        await consumer.process(consumer_records([record for _, record in requests]))
        # Holdings, the account hierarchy and number blocks are read together.
        counted = {what: _statements(statements, fragment) for what, fragment in [
            ("holdings", "FROM inventory"), ("hierarchy", "JOIN lineage"),
            ("blocks", "FROM number_blocks"), ("checks", "INSERT INTO portability_checks")]}
        published = await _outbox(consumer)
        kept = await consumer.pool.fetch("SELECT port_in_request_sid, requested_by, target_account_sid, reason_code "
                                         "FROM portability_checks ORDER BY id")
    assert counted == {"holdings": 1, "hierarchy": 1, "blocks": 1, "checks": 1}
    assert [event.port_in_request_sid for event, _ in published] == [sid for sid, _ in requests]
    for i, (event, headers) in enumerate(published):
        assert event.account_sid == accounts[i % 4]
        assert [r.not_portable_reason_code for r in event.results] == EXPECTED[event.account_sid]
        assert event.results[1].phone_number == f"+1201555{i:04d}"
        # Each follow-up continues its own request's trace.
        cause = dict(requests[i][1].headers)
        assert headers["traceparent"].split(b"-")[1] == cause["traceparent"].split(b"-")[1]
    assert len(kept) == 900
    assert [(k["port_in_request_sid"], k["target_account_sid"]) for k in kept[::3]] == \
        [(sid, accounts[i % 4]) for i, (sid, _) in enumerate(requests)]
    assert {k["requested_by"] for k in kept} == {dict(record.headers)["ce_id"].decode() for _, record in requests}


async def test_a_request_whose_answer_the_broker_would_refuse_is_dead_lettered_alone(settings):
    settings = settings.model_copy(update={"max_message_bytes": 10_000})
    big_sid, big = request_for(settings, [f"+1201555{i:04d}" for i in range(100)])
    sid, small = request_for(settings, [PORTABLE])
    async with portability_handlers(settings) as (consumer, _):
        await consumer.process(consumer_records([big, small]))
        published = await _outbox(consumer)
        kept = await consumer.pool.fetch("SELECT DISTINCT port_in_request_sid FROM portability_checks")
        dead = await consumer.pool.fetch("SELECT error FROM dead_letters")
    assert [event.port_in_request_sid for event, _ in published] == [sid]
    assert [k["port_in_request_sid"] for k in kept] == [sid], "no check of the refused request is kept"
    assert len(dead) == 1 and "portability-checked" in dead[0]["error"]


async def test_a_batch_of_status_changes_leaves_the_inventory_as_applying_them_one_by_one(settings):
    first, second, third, fourth = (request_sid() for _ in range(4))
    taken, freed, completed = "+12015550301", "+12015550302", "+12015550303"
    changes = [
        status_change(settings, first, taken, "in_review", "in_review"),
        status_change(settings, second, taken, "in_review", "in_review", account=SIBLING),  # taken: nothing
        status_change(settings, first, taken, "canceled", "in_review"),  # frees it ...
        status_change(settings, second, taken, "in_review", "in_review", account=SIBLING),  # ... for the second
        status_change(settings, third, freed, "in_review", "in_review"),
        status_change(settings, third, freed, "in_review", "canceled"),  # the request ends: all released
        status_change(settings, fourth, completed, "completed", "completed"),
        status_change(settings, fourth, "+1２015550304", "in_review", "in_review"),  # a look-alike: never kept
    ]
    async with portability_handlers(settings) as (consumer, _):
        await consumer.process(consumer_records(changes))
        rows = await consumer.pool.fetch("SELECT phone_number, account_sid, port_in_request_sid FROM inventory "
                                         "WHERE phone_number LIKE '+1201555030%' ORDER BY phone_number")
    assert [tuple(r) for r in rows] == [(taken, SIBLING, second), (completed, TARGET, None)]


async def test_status_changes_for_distinct_numbers_cost_one_statement_per_kind_of_change(settings):
    changes = [status_change(settings, request_sid(), f"+1201555{i:04d}", status, "in_review")
               for i, status in enumerate(["in_review", "canceled", "completed"] * 50)]
    async with portability_handlers(settings) as (consumer, statements):
        await consumer.process(consumer_records(changes))
        counted = [_statements(statements, fragment) for fragment in
                   ("INSERT INTO inventory (phone_number, account_sid)\n", "DELETE FROM inventory",
                    "INSERT INTO inventory (phone_number, account_sid, port_in_request_sid)")]
        held = await consumer.pool.fetchval("SELECT count(*) FROM inventory WHERE port_in_request_sid IS NULL "
                                            "AND phone_number LIKE '+1201555%'")
        reserved = await consumer.pool.fetchval("SELECT count(*) FROM inventory WHERE port_in_request_sid IS NOT NULL")
    assert counted == [1, 1, 1]
    assert (held, reserved) == (50, 50)


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
