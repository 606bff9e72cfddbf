"""Business days come from each country's holiday calendar, never from weekdays alone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import holidays
import pytest

from portability.adapters.coverage_file import CoverageFile
from workflow.domain.calendar import BusinessCalendar, subdivision_for, time_zone_for_number

US = BusinessCalendar("US", None, ZoneInfo("America/Los_Angeles"))
QUEBEC = BusinessCalendar("CA", "QC", ZoneInfo("America/Toronto"))
ONTARIO = BusinessCalendar("CA", "ON", ZoneInfo("America/Toronto"))


@pytest.mark.parametrize(("calendar", "day", "why"), [
    (US, date(2027, 2, 15), "Washington's Birthday, a Monday"),
    (US, date(2027, 7, 5), "Independence Day observed on the Monday"),
    (BusinessCalendar("CA"), date(2027, 7, 1), "Canada Day, a Thursday"),
    (BusinessCalendar("GB"), date(2027, 5, 3), "the early May bank holiday"),
    (US, date(2027, 2, 13), "a Saturday"),
])
def test_a_public_holiday_or_weekend_day_is_not_a_business_day(calendar, day, why):
    assert not calendar.is_business_day(day), why


def test_a_provincial_holiday_counts_only_in_its_province():
    saint_jean = date(2027, 6, 24)
    assert not QUEBEC.is_business_day(saint_jean)
    assert ONTARIO.is_business_day(saint_jean)


def test_the_service_address_names_the_subdivision_only_when_the_library_has_it():
    assert subdivision_for("CA", "qc ") == "QC"
    assert subdivision_for("US", "CA") == "CA"
    assert subdivision_for("GB", "London") is None
    assert subdivision_for("CA", None) is None


def test_a_number_of_another_country_than_the_address_does_not_take_the_addresss_province():
    calendar = BusinessCalendar.for_number("+14155550100", "US", address_country="CA", address_state="QC")
    assert calendar.subdivision is None


def test_adding_business_days_skips_weekends_and_holidays():
    friday_before_presidents_day = date(2027, 2, 12)
    assert US.add_business_days(friday_before_presidents_day, 1) == date(2027, 2, 16)
    assert US.add_business_days(friday_before_presidents_day, 3) == date(2027, 2, 18)
    assert US.subtract_business_days(date(2027, 2, 16), 1) == date(2027, 2, 12)


def test_notice_counts_business_days_from_today_up_to_the_date_and_saturday_gives_none():
    thursday = date(2027, 2, 4)
    assert US.business_days_between(date(2027, 2, 1), thursday) == 3
    assert US.business_days_between(date(2027, 1, 30), date(2027, 2, 3)) == 2
    assert US.business_days_between(date(2027, 2, 12), date(2027, 2, 17)) == 2, "Presidents' Day does not count"


def test_a_deadline_keeps_the_local_time_and_a_weekend_receipt_runs_to_the_end_of_the_next_business_day():
    friday_4pm = datetime(2027, 2, 12, 16, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert US.deadline(friday_4pm, 1) == datetime(2027, 2, 16, 16, tzinfo=ZoneInfo("America/Los_Angeles"))
    saturday = datetime(2027, 2, 6, 10, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert US.deadline(saturday, 1) == datetime(2027, 2, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    assert US.deadline(friday_4pm, 1).tzinfo is UTC


def test_a_numbers_time_zone_comes_from_libphonenumber():
    assert time_zone_for_number("+14155550100") == ZoneInfo("America/Los_Angeles")
    assert time_zone_for_number("+442071234567") == ZoneInfo("Europe/London")
    assert time_zone_for_number("not a number") == ZoneInfo("UTC")


def test_every_country_the_coverage_file_ports_has_a_holiday_calendar_in_the_library():
    supported = holidays.list_supported_countries()
    assert set(CoverageFile().current().countries) <= set(supported)


def test_counting_notice_stops_at_what_the_rule_needs_so_a_date_centuries_away_costs_a_few_days(monkeypatch):
    from workflow.domain import calendar as calendar_module

    asked: list[date] = []
    real = calendar_module._is_business_day.__wrapped__

    def counting(country, subdivision, day):
        asked.append(day)
        return real(country, subdivision, day)

    monkeypatch.setattr(calendar_module, "_is_business_day", counting)
    calendar_module._business_days_between.cache_clear()
    assert US.business_days_between(date(2027, 2, 1), date(9999, 12, 30), at_most=10) == 10
    assert len(asked) < 20, "stopped after the tenth business day, not at the year 9999"
    assert US.business_days_between(date(2027, 2, 1), date(2027, 2, 4), at_most=10) == 3, "fewer stays exact"
