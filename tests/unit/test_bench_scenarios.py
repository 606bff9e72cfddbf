"""`porting bench`'s workflow and pipeline scenarios, its e-mail completion and its combined
report: the pure parts, without servers (`make bench` is the run)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from porting_cli import bench
from porting_cli.bench_mail import MailArrivals, is_customer_mail, request_of
from porting_cli.bench_scenarios import (
    PIPELINE,
    PORTABILITY,
    SCENARIOS,
    WORKFLOW,
    port_date,
    port_request,
    scenarios_named,
)
from schemas import PortRequested, decode

# --- the registry -----------------------------------------------------------------------------------


def test_every_scenario_is_registered_and_all_runs_them_in_pipeline_order():
    assert list(SCENARIOS) == ["portability", "workflow", "pipeline"]
    assert scenarios_named("all") == [PORTABILITY, WORKFLOW, PIPELINE]
    assert scenarios_named("pipeline") == [PIPELINE]
    assert scenarios_named("workflow, portability,workflow") == [WORKFLOW, PORTABILITY]
    with pytest.raises(KeyError):
        scenarios_named("workflow,nothing")
    with pytest.raises(KeyError):
        scenarios_named(" , ")


def test_each_scenario_runs_the_services_its_pipeline_crosses_with_the_issue_target():
    assert [d.name for d in WORKFLOW.definitions()] == ["portability", "workflow"]
    assert [d.name for d in PIPELINE.definitions()] == ["portability", "workflow", "notifier"]
    assert (PORTABILITY.target_per_second, WORKFLOW.target_per_second, PIPELINE.target_per_second) == (5000, 2000, 1000)
    assert WORKFLOW.completion_topics("p.") == ["p.porting.port-submitted.v1"]
    assert PIPELINE.completion == "mail" and PIPELINE.completion_topics("p.") == []
    assert PORTABILITY.completion == WORKFLOW.completion == "topics"
    # Short runs by default: the whole `make bench` within a few minutes.
    assert PORTABILITY.default_events >= WORKFLOW.default_events >= PIPELINE.default_events


def test_the_notifier_gets_a_valid_webhook_secret_and_no_ops_desk():
    from notifier.settings import NotifierSettings

    values = PIPELINE.service_settings()["notifier"]
    settings = NotifierSettings(**values, smtp_port=2525)
    assert settings.webhook_signing_secret is not None and settings.ops_alert_emails == []
    assert PIPELINE.service_settings()["notifier"]["webhook_signing_secret"] != values["webhook_signing_secret"]
    assert dict(WORKFLOW.service_settings()) == {}


# --- the requests -------------------------------------------------------------------------------------


def test_a_bench_request_passes_the_workflows_review():
    from workflow.domain.calendar import BusinessCalendar
    from workflow.domain.review import review_number

    request = port_request(7)
    number = request.phone_numbers[0].phone_number
    calendar = BusinessCalendar("US")
    requirements = next(iter(_us_requirements()))
    assert request.webhook_url is None  # the notifier sends no webhooks
    for pin_required in (False, True):
        assert review_number(request, number, requirements=requirements, pin_and_account_number_required=pin_required,
                             calendar=calendar, today=date.today()) == []


def _us_requirements():
    from schemas import CancellationPolicyKind, PortingRequirements, PortingTrack

    yield PortingRequirements(track=PortingTrack.API, min_notice_business_days=3,
                              cancellation_policy=CancellationPolicyKind.NORTH_AMERICAN)


def test_the_port_date_is_a_us_business_day_with_more_than_the_minimum_notice():
    from workflow.domain.calendar import BusinessCalendar

    calendar = BusinessCalendar("US")
    friday = date(2026, 11, 20)
    chosen = port_date(friday)
    assert calendar.is_business_day(chosen)
    assert calendar.business_days_between(friday, chosen) == 15


def test_the_workflow_and_pipeline_workloads_are_one_request_per_key_with_fresh_numbers():
    first, second = WORKFLOW.workload(20, "w."), PIPELINE.workload(20, "p.")
    numbers = []
    for workload, topic in ((first, "w.porting.port-requested.v1"), (second, "p.porting.port-requested.v1")):
        assert len(set(workload.keys)) == 20
        for key, record in zip(workload.keys, workload.records, strict=True):
            assert record.topic == topic and record.key == key.encode()
            event = decode(record.headers, record.value, expected_type=PortRequested.event_type).data
            assert event.port_in_request_sid == key and len(event.phone_numbers) == 1
            numbers.append(event.phone_numbers[0].phone_number)
    assert len(set(numbers)) == 40


# --- e-mail completion --------------------------------------------------------------------------------

MAIL = (b"From: Number Porting <porting@localhost>\r\nTo: ada@example.com\r\nSubject: We received it\r\n"
        b"X-Port-In-Request-Sid: KWabc123\r\nMIME-Version: 1.0\r\n\r\nX-Port-In-Request-Sid: KWnot-this-one\r\n")


def test_an_email_is_matched_to_its_request_by_the_notifiers_header_only():
    assert request_of(MAIL) == "KWabc123"
    assert request_of(MAIL.decode().replace("\r\n", "\n")) == "KWabc123"
    assert request_of(b"Subject: x\r\n\r\nX-Port-In-Request-Sid: KWbody\r\n") is None
    assert request_of(b"x-port-in-request-sid:KWlower\n\n") == "KWlower"
    assert request_of(None) is None


@pytest.mark.parametrize("arg", [
    "<ada@example.com>", "<ada@example.com> SIZE=1234 BODY=8BITMIME", "<porting@carrier.example>",
    "<first.last+tag@sub.example.co.uk>", "<o'neil@example.com>", "<>", "", "ada@example.com",
    " <ada@example.com>", "<ada..b@example.com>", "<.ada@example.com>", "<ada@example..com>",
    "<\"quoted local\"@example.com>", "<ada@[127.0.0.1]>", "<@route:ada@example.com>", "<ada@example.com",
    "<ada>", "<ada@>", "<josé@exämple.com>", "<" + "a" * 65 + "@example.com>", "<ada@example.com>\r\n",
    "<ada@example.com>\t SIZE=1", "<ada@example.com> (comment) SIZE=1", "<ada@example.com>SIZE=1", "<ada@example.com>  ",
    "<=?utf-8?q?ada?=@example.com>", "<ada@=?utf-8?q?ex?=>", "<a@b> \x0bSIZE=1", "<a@b> \x0b(c)", "<a@b>\xa0x",
    "<a@b> \u3000SIZE=1", "<a@b>\x1c", "<a@b> =?utf-8?q?x?=",
])
def test_the_benchmark_relay_reads_an_address_exactly_as_aiosmtpd_does(arg):
    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    class Handler:
        pass

    ours, theirs = QuickAddressSMTP(Handler()), SMTP(Handler())
    assert ours._getaddr(arg) == theirs._getaddr(arg)


class _Kept:
    """An aiosmtpd handler keeping what each message's DATA gave it."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, object]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.original_content, envelope.content))
        return "250 kept"


class _Legacy:
    """A handler of aiosmtpd's old API (process_message instead of handle_DATA)."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, object]] = []

    async def process_message(self, peer, mail_from, rcpt_tos, data):
        self.messages.append((data, data))
        return "250 legacy"


async def _converse(server_class, script: bytes, *, data_size_limit: int | None, utf8: bool, decode_data: bool,
                    cuts: tuple[int, ...] = (), handler_class: type = _Kept):
    """Every reply to a pipelined script, and what the handler kept. With `cuts`, the script goes
    in pieces cut there, each after the server has read the one before (a pause)."""
    handler = handler_class()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: server_class(handler, hostname="relay", enable_SMTPUTF8=utf8, decode_data=decode_data,
                             data_size_limit=data_size_limit, loop=loop), "127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname()[:2])
        bounds = [0, *cuts, len(script)]
        for start, end in zip(bounds, bounds[1:]):
            writer.write(script[start:end])
            await writer.drain()
            if end < len(script):
                await asyncio.sleep(0.01)
        replies = await asyncio.wait_for(reader.read(), 10)  # the script ends with QUIT
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return replies, handler.messages


ENVELOPE = b"EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"


@pytest.mark.parametrize("data", [
    b"Subject: x\r\n\r\nHello.\r\n.\r\n",                   # a line ending in a dot
    b".\r\n",                                                 # no content at all
    b"..\r\n.\r\n",                                           # a stuffed lone dot
    b"..leading\r\nmid..dle\r\n...\r\n.x\r\nend.\r\n.\r\n",    # stuffed and unstuffed leading dots
    b"bare\nLF.\n.\nstill in\r\n.\r\n",                      # only CRLF ends a line
    b"one line.\r\n.\r\n",
    "Grüße, café\r\n.\r\n".encode(),                          # UTF-8 content
    b"\xff\xfe not UTF-8\r\n.\r\n",
    b"x" * 1200 + b"\r\n" + b"y" * 300 + b".\r\n.\r\n",        # over the limit, one dot-line ending
    b"z" * 998 + b"\r\n.\r\n",
    b"z" * 999 + b"\r\n.\r\n",                                # a line at aiosmtpd's limit, and past it
    b"z" * 1000 + b"\r\n.\r\n",
    b"z" * 1001 + b"\r\n.\r\n",
    b"z" * 1002 + b"\r\n.\r\n",
    b"z" * 1400 + b"\r\n" + b"y" * 1200 + b"\r\n.\r\n",        # too long a line, then too much
    b"a\r\n" * 600 + b"y" * 1200 + b"\r\n.\r\n",               # too much, then too long a line
    b"y" * 1001 + b"\r\n" + b"a\r\n" * 300 + b".\r\n",          # limits crossed on the same line
    b"a\r\n" * 499 + b"b\r\n.\r\n", b"a\r\n" * 500 + b".\r\n", b"a\r\n" * 501 + b".\r\n",  # around the size
    b"a" * 998 + b"\r\n" + b"x" * 1001 + b".\r\n.\r\n",           # the size crossed within a line too long ...
    b"a" * 998 + b"\r\n" + b"x" * 998 + b".\r\n.\r\n",            # ... or within one that is not
    b"a" * 700 + b"\r\n" + b"x" * 2400 + b"\r\n.\r\n",            # ... or a line that has no dot at all
    b"a" * 1300 + b"\r\r\n.\r\n",                                # a CR before the CRLF
    b"\r\n.\r\n",                                             # one empty line
])
@pytest.mark.parametrize("utf8,decode_data", [(True, False), (True, True), (False, True)])
@pytest.mark.parametrize("split", [False, True])
async def test_the_benchmark_relay_takes_a_message_exactly_as_aiosmtpd_does(data, utf8, decode_data, split):
    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    # A second transaction pipelined behind the first's end shows nothing of it was left unread.
    script = ENVELOPE + data + SECOND_TRANSACTION
    # Split: the data arrives in pieces, cut inside a line, beside a CR and right after a dot.
    cuts = tuple(sorted({len(ENVELOPE) + c for c in (1, len(data) // 3, len(data) - 2)})) if split else ()
    options = {"data_size_limit": 1500, "utf8": utf8, "decode_data": decode_data, "cuts": cuts}
    ours = await _converse(QuickAddressSMTP, script, **options)
    theirs = await _converse(SMTP, script, **options)
    assert ours == theirs
    assert b"250 kept" in ours[0]


async def test_the_benchmark_relay_measures_a_line_whose_crlf_came_in_two_reads_as_aiosmtpd_does():
    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    # Cut one byte into the Y line: the reader's limit then hands over the X line without its LF,
    # just as the size limit is crossed in it. Read on to the next CRLF, the X line would take
    # the Y line in and be "too long"; it is too much data.
    data = b"a" * 998 + b"\r\n" + b"X" * 600 + b"\r\n" + b"Y" * 1500 + b"\r\n.\r\n"
    script = ENVELOPE + data + SECOND_TRANSACTION
    options = {"data_size_limit": 1500, "utf8": True, "decode_data": False, "cuts": (len(ENVELOPE) + 1603,)}
    ours = await _converse(QuickAddressSMTP, script, **options)
    assert ours == await _converse(SMTP, script, **options)
    assert b"552 Error: Too much mail data" in ours[0]


SECOND_TRANSACTION = b"MAIL FROM:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\nok\r\n.\r\nQUIT\r\n"
_PIECES = [b".", b"\r", b"\n", b"\r\n", b"a", b"..", b"\xff", "é".encode(), b"\r\n.", b"\r\n..", b"x" * 998,
           b"y" * 999, b"z" * 1000, b"w" * 1001, b"v" * 1002, b"a\r\n" * 100, b"b" * 2500]


async def test_the_benchmark_relay_answers_random_data_exactly_as_aiosmtpd_does():
    import random
    import re

    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    rnd, compared = random.Random(2111), 0
    while compared < 120:
        data = b"".join(rnd.choice(_PIECES) for _ in range(rnd.randint(0, 10))) + rnd.choice([b"\r\n.\r\n", b".\r\n"])
        found = re.search(rb"(?:^|\r\n)\.\r\n", data)
        if found is None or found.end() != len(data):
            continue  # the data must end at its first terminating line
        script = ENVELOPE + data + SECOND_TRANSACTION
        cuts = tuple(sorted(rnd.sample(range(1, len(script)), 2))) if rnd.random() < 0.3 else ()
        options = {"data_size_limit": rnd.choice([None, 5, 1000, 1003, 1500, 2000]), "cuts": cuts,
                   "utf8": rnd.random() < 0.7, "decode_data": rnd.random() < 0.5}
        assert await _converse(QuickAddressSMTP, script, **options) == await _converse(SMTP, script, **options), \
            (data[:200], options)
        compared += 1


@pytest.mark.filterwarnings("ignore:Use handler.handle_DATA:DeprecationWarning")
async def test_the_benchmark_relay_keeps_aiosmtpds_command_lines_help_and_old_handlers():
    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    script = (b"EHLO client\r\nHELP DATA\r\nHELP\r\n" + b"\xff" * 1100 + b"\r\n" + b"\r" * 1100 + b"\n"
              + b"NOOP " + "é".encode() * 600 + b"\r\n" + b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"
              + b"DATA\r\nhi\r\n.\r\nQUIT\r\n")
    for utf8 in (True, False):
        options = {"data_size_limit": 1500, "utf8": utf8, "decode_data": False}
        ours = await _converse(QuickAddressSMTP, script, **options)
        assert ours == await _converse(SMTP, script, **options)
        assert b"250 Syntax: DATA" in ours[0] and ours[0].count(b"Command line too long") >= 2
        legacy = {**options, "handler_class": _Legacy}
        ours = await _converse(QuickAddressSMTP, script, **legacy)
        assert ours == await _converse(SMTP, script, **legacy)
        assert b"250 legacy" in ours[0]


async def test_the_benchmark_relay_refuses_data_out_of_place_as_aiosmtpd_does():
    from aiosmtpd.smtp import SMTP

    from porting_cli.bench_mail import QuickAddressSMTP

    script = (b"EHLO client\r\nDATA\r\nMAIL FROM:<a@example.com>\r\nDATA\r\nRCPT TO:<b@example.com>\r\n"
              b"DATA now\r\nDATA\r\nfine\r\n.\r\nQUIT\r\n")
    options = {"data_size_limit": 1500, "utf8": True, "decode_data": False}
    ours = await _converse(QuickAddressSMTP, script, **options)
    assert ours == await _converse(SMTP, script, **options)
    assert ours[0].count(b"503") == 2 and b"501" in ours[0] and ours[1] == [(b"fine\r\n", b"fine\r\n")]


def test_only_customer_emails_count():
    assert is_customer_mail(["ada@example.com"], ())
    assert not is_customer_mail(["OPS@example.com"], ["ops@example.com"])
    assert is_customer_mail(["ops@example.com", "ada@example.com"], ["ops@example.com"])


async def test_a_request_completes_at_its_first_email_and_the_second_is_noted_apart():
    arrivals = MailArrivals()
    arrivals.expect(["a", "b"])
    arrivals.note("a", 1.0)
    arrivals.note(None, 1.5)  # not about a request
    arrivals.note("a", 2.0)
    assert not await arrivals.finished(timeout=0.05) and arrivals.missing == 1
    arrivals.note("b", 3.0)
    arrivals.note("a", 4.0)  # a third: counted as a duplicate
    assert await arrivals.finished(timeout=1)
    assert arrivals.arrivals == {"a": 1.0, "b": 3.0} and arrivals.later == {"a": 2.0}
    assert arrivals.duplicates == 1 and arrivals.records == 5
    assert not await arrivals.later_finished(["a", "b"], timeout=0.1)
    arrivals.note("b", 5.0)
    assert await arrivals.later_finished(["a", "b"], timeout=1)


async def test_expecting_keys_already_seen_finishes_at_once():
    arrivals = MailArrivals()
    arrivals.note("a", 1.0)
    arrivals.expect(["a"])
    assert await asyncio.wait_for(arrivals.finished(timeout=5), 1)


# --- options and the combined report ------------------------------------------------------------------


def test_event_counts_default_to_each_scenarios_own():
    options = bench.Options()
    assert options.scenario == "all"
    assert options.event_count(PIPELINE) == PIPELINE.default_events
    assert options.naive_count(PIPELINE) == PIPELINE.default_events // 10
    given = bench.Options(events=300, naive_events=7)
    assert given.event_count(WORKFLOW) == 300 and given.naive_count(WORKFLOW) == 7


def _report(name: str, rate: float) -> dict:
    return {"benchmark": "porting bench", "scenario": name, "started_at": "t", "code": {"commit": "c"},
            "machine": {"cores": 2, "load_at_start": [1, 1, 1], "load_at_end": [2, 2, 2]},
            "stack": {"postgres_durable": False}, "pipeline": {"events_per_second": rate},
            "targets": {"events_per_second": {"measured": rate}}}


def test_one_scenario_reports_as_before_and_several_as_one_object():
    single = _report("portability", 5000.0)
    assert bench.combined([single], 1.0) is single
    both = bench.combined([_report("portability", 5000.0), _report("workflow", 2100.0)], 12.34)
    assert set(both["scenarios"]) == {"portability", "workflow"}
    assert both["scenarios"]["workflow"]["pipeline"]["events_per_second"] == 2100.0
    assert "stack" not in both["scenarios"]["workflow"] and "machine" in both["scenarios"]["workflow"]
    assert both["targets"]["workflow"]["events_per_second"]["measured"] == 2100.0
    assert both["stack"] == {"postgres_durable": False} and both["duration_seconds"] == 12.3
    assert both["machine"]["load_at_end"] == [2, 2, 2]


async def test_a_scenarios_report_measures_against_its_own_target(monkeypatch):
    async def raw(self, *, count=None, per_second=None):
        return {"target_rate": per_second} if per_second is not None else {"events": count,
                                                                            "events_per_second": 20_000.0}

    async def system(self, kind, *, count=None, per_second=None):
        if per_second is not None:
            return {"target_rate": per_second, "events": 100, "p99_ms": 90.0}
        return {"events": count, "events_per_second": 1500.0 if kind == "pipeline" else 100.0}

    monkeypatch.setattr(bench.Bench, "_raw", raw)
    monkeypatch.setattr(bench.Bench, "_system", system)
    stack = type("Stack", (), {"kafka": None, "postgres": None, "root": None})()
    workflow = await bench.Bench(bench.Options(), stack, WORKFLOW).run()
    pipeline = await bench.Bench(bench.Options(), stack, PIPELINE).run()
    assert workflow["targets"]["events_per_second"] == {"goal": ">= 2000", "measured": 1500.0, "met": False}
    assert pipeline["targets"]["events_per_second"] == {"goal": ">= 1000", "measured": 1500.0, "met": True}
    assert workflow["settings"]["bench"]["events"] == WORKFLOW.default_events
    assert "completion" in pipeline["settings"]["bench"] and "completion" not in workflow["settings"]["bench"]
