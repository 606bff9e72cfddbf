"""`porting status` and `porting requests list` against the workflow's real database."""

from __future__ import annotations

import asyncio
import json
from datetime import date

from typer.testing import CliRunner

from porting_cli.main import app
from schemas import CarrierNumberResponse, CarrierOutcome, PortabilityReason

from .test_workflow_support import (
    ACCOUNT_NUMBER,
    PIN,
    US_NUMBER,
    answered,
    cancel,
    checked,
    port_requested,
    record,
    rejected,
    scheduled,
    workflow_handlers,
)


async def porting(*args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.output


async def test_porting_status_shows_the_request_its_numbers_its_whole_history_and_its_pending_timers(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)),
                            scheduled(sid, US_NUMBER, on=date(2027, 3, 2)))
        code, shown = await porting("status", sid, "--json", "--database-url", settings.database_url)
        human_code, human = await porting("status", sid, "--database-url", settings.database_url)
    assert (code, human_code) == (0, 0)
    view = json.loads(shown)
    assert (view["port_in_request_sid"], view["status"]) == (sid, "in_progress")
    assert [(n["phone_number"], n["status"], n["port_date"]) for n in view["phone_numbers"]] == [
        (US_NUMBER, "scheduled", "2027-03-02")]
    numbers_history = [(h["status_from"], h["status_to"]) for h in view["history"] if h["phone_number"]]
    assert numbers_history == [(None, "in_review"), ("in_review", "port_submitted"),
                               ("port_submitted", "port_pending"), ("port_pending", "scheduled")]
    assert all(h["at"] and h["cause_event_id"] for h in view["history"])
    assert {"at", "cause_event_id", "status_from", "status_to", "phone_number", "reason_code"} <= set(view["history"][0])
    assert sorted(t["kind"] for t in view["timers"]) == ["port_date_overdue", "port_date_reminder"]
    assert PIN not in shown and ACCOUNT_NUMBER not in shown
    assert "port_pending" in human and "port_date_overdue" in human


async def test_porting_status_shows_the_date_the_carrier_proposed_for_a_number_it_accepted(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    accepted = CarrierNumberResponse(phone_number=US_NUMBER, outcome=CarrierOutcome.ACCEPTED,
                                     proposed_port_date=date(2027, 3, 4))
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), answered(sid, accepted))
        code, shown = await porting("status", sid, "--json", "--database-url", settings.database_url)
        human_code, human = await porting("status", sid, "--database-url", settings.database_url)
    assert (code, human_code) == (0, 0)
    [number] = json.loads(shown)["phone_numbers"]
    assert (number["status"], number["port_date"], number["proposed_port_date"]) == ("port_pending", None, "2027-03-04")
    assert "2027-03-04 (proposed by the carrier)" in human


async def test_porting_requests_list_filters_by_status(settings):
    waiting, fine = port_requested(US_NUMBER), port_requested(US_NUMBER)
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(waiting, checked(waiting), fine, checked(fine),
                            answered(waiting.port_in_request_sid, rejected(US_NUMBER)))
        code, listed = await porting("requests", "list", "--status", "action_required",
                                     "--database-url", settings.database_url)
        _, everything = await porting("requests", "list", "--database-url", settings.database_url)
        bad_code, _ = await porting("requests", "list", "--status", "pending", "--database-url", settings.database_url)
    assert code == 0
    assert waiting.port_in_request_sid in listed and fine.port_in_request_sid not in listed
    assert waiting.port_in_request_sid in everything and fine.port_in_request_sid in everything
    assert bad_code == 2


async def test_porting_status_of_an_unknown_request_says_so(settings):
    async with workflow_handlers(settings):
        code, output = await porting("status", "KW" + "0" * 32, "--database-url", settings.database_url)
    assert code == 1 and "no port-in request" in output


async def test_porting_status_of_a_request_not_received_shows_the_events_waiting_for_it_and_their_timer(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(cancel(sid))
        code, shown = await porting("status", sid, "--json", "--database-url", settings.database_url)
        human_code, human = await porting("status", sid, "--database-url", settings.database_url)
    view = json.loads(shown)
    assert (code, human_code) == (0, 0)
    assert (view["status"], view["phone_numbers"]) == (None, [])
    assert [t["kind"] for t in view["timers"]] == ["parked_event_overdue"]
    assert [p["event_type"] for p in view["parked_events"]] == ["porting.cancel-requested.v1"]
    assert "not received yet" in human and "parked_event_overdue" in human


async def test_text_from_outside_is_printed_as_it_is_never_read_as_markup_by_the_operators_commands(settings):
    """A number as given "[/]" once crashed `porting status` (rich read it as a closing tag), and a
    carrier's "[link=...]" showed as a live hyperlink in the operator's terminal."""
    hostile_number, link = "[/]", "[link=https://evil.example/reset]Click here to reset[/link]"
    request = port_requested(US_NUMBER, hostile_number)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request, not_portable={hostile_number: PortabilityReason.INVALID_PHONE_NUMBER}),
                            answered(sid, rejected(US_NUMBER, text=f"PIN check [/red] {link}")))
        # A parked event's watch timer is keyed by the event's own source and id.
        await workflow.feed_batch([record(settings, cancel("KW" + "0" * 31 + "1"), event_id="[/][blink]id[/blink]")])
        status = await porting("status", sid, "--database-url", settings.database_url)
        listed = await porting("requests", "list", "--status", "[/x]", "--database-url", settings.database_url)
        timers = await porting("timers", "list", "workflow", "--database-url", settings.database_url)
    assert status[0] == 0, status[1]
    assert hostile_number in status[1] and "[/red]" in status[1] and "[link=https://evil.example/reset]" in status[1]
    assert listed[0] == 2 and "unknown status '[/x]'" in listed[1]
    assert timers[0] == 0 and "[/][blink]id[/blink]" in timers[1]


async def test_porting_status_shows_the_latest_history_entries_when_asked_and_says_how_many_it_left_out(settings):
    request = port_requested(US_NUMBER)
    sid = request.port_in_request_sid
    async with workflow_handlers(settings) as workflow:
        await workflow.feed(request, checked(request), answered(sid, (US_NUMBER, CarrierOutcome.ACCEPTED)))
        _, everything = await porting("status", sid, "--json", "--database-url", settings.database_url)
        latest_code, latest = await porting("status", sid, "--history", "2", "--database-url", settings.database_url)
        all_code, shown_all = await porting("status", sid, "--history", "0", "--database-url", settings.database_url)
    history = json.loads(everything)["history"]
    assert len(history) > 2 and (latest_code, all_code) == (0, 0)
    assert f"the latest 2 of {len(history)} entries" in latest
    assert history[-1]["cause_event_id"] in latest and history[0]["cause_event_id"] not in latest
    assert history[0]["cause_event_id"] in shown_all and "the latest" not in shown_all
