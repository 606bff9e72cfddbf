"""Business days: the `holidays` calendar of a number's country (and its province or state
where the library has one), with that country's weekend; never weekdays alone.

Deadlines are counted in the local time of the number, so "within one business day" means
what the porting desk and the customer both read on their calendars.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from phonenumbers import timezone as phone_time_zones

from schemas.phone_numbers import as_phone_number

_SUPPORTED = holidays.list_supported_countries()


@lru_cache(maxsize=256)
def _holidays(country: str | None, subdivision: str | None) -> holidays.HolidayBase:
    if country in _SUPPORTED:
        return holidays.country_holidays(country, subdiv=subdivision)
    # A country the library does not know: no holiday is known, Saturday and Sunday are off.
    # Coverage only lists countries the library has (a unit test says so).
    return holidays.HolidayBase()


# Day counting is remembered per calendar (country, subdivision) and arguments: the review counts
# a port date's notice day by day and each deadline steps through the days after it, and
# `holidays` answers one day in about 1.3 µs: some 100 µs a request before (issue 8). Requests
# of a day ask the same questions (today, the same port dates), and an answer never changes
# while the process runs (a calendar is the one `_holidays` keeps).

@lru_cache(maxsize=16_384)  # some 200 bytes an entry: dozens of calendars over a year
def _is_business_day(country: str | None, subdivision: str | None, day: date) -> bool:
    return _holidays(country, subdivision).is_working_day(day)


def _next_business_day(country: str | None, subdivision: str | None, day: date) -> date:
    while not _is_business_day(country, subdivision, day):
        day += timedelta(days=1)
    return day


@lru_cache(maxsize=16_384)
def _add_business_days(country: str | None, subdivision: str | None, day: date, count: int) -> date:
    for _ in range(count):
        day = _next_business_day(country, subdivision, day + timedelta(days=1))
    return day


@lru_cache(maxsize=16_384)
def _business_days_between(country: str | None, subdivision: str | None, start: date, end: date,
                           at_most: int | None) -> int:
    count, day = 0, start
    while day < end and (at_most is None or count < at_most):
        count += _is_business_day(country, subdivision, day)
        day += timedelta(days=1)
    return count


def subdivision_for(country: str | None, state: str | None) -> str | None:
    """The address's state or province when the library keeps a calendar for it ("QC", "CA")."""
    if not country or not state:
        return None
    candidate = state.strip().upper()
    return candidate if candidate in (_SUPPORTED.get(country) or ()) else None


@lru_cache(maxsize=65_536)
def time_zone_for_number(phone_number: str) -> ZoneInfo:
    """The number's own time zone (the first libphonenumber gives), UTC when it has none.
    Looked up by prefix alone: the zone of a number's area, whatever its type."""
    number = as_phone_number(phone_number)
    if number is None:
        return ZoneInfo("UTC")
    names = [n for n in phone_time_zones.time_zones_for_geographical_number(number) if n != "Etc/Unknown"] or \
        [n for n in phone_time_zones.time_zones_for_number(number) if n != "Etc/Unknown"]
    return ZoneInfo(names[0] if names else "UTC")


@dataclass(frozen=True)
class BusinessCalendar:
    country: str | None
    subdivision: str | None = None
    time_zone: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def for_number(cls, phone_number: str, country: str | None, *, address_country: str | None = None,
                   address_state: str | None = None) -> BusinessCalendar:
        # The service address names the province or state only for numbers of its own country.
        subdivision = subdivision_for(country, address_state) if address_country == country else None
        return cls(country, subdivision, time_zone_for_number(phone_number))

    def is_business_day(self, day: date) -> bool:
        return _is_business_day(self.country, self.subdivision, day)

    def today(self, now: datetime) -> date:
        return now.astimezone(self.time_zone).date()

    def next_business_day(self, day: date) -> date:
        """The day itself when it is a business day, else the first one after it."""
        return _next_business_day(self.country, self.subdivision, day)

    def add_business_days(self, day: date, count: int) -> date:
        """The count-th business day after `day` (`day` itself does not count)."""
        return _add_business_days(self.country, self.subdivision, day, count)

    def subtract_business_days(self, day: date, count: int) -> date:
        for _ in range(count):
            day -= timedelta(days=1)
            while not self.is_business_day(day):
                day -= timedelta(days=1)
        return day

    def business_days_between(self, start: date, end: date, *, at_most: int | None = None) -> int:
        """Business days from `start` up to, not including, `end`: the notice `start` gives before
        `end`. A request received on a Saturday is worked on Monday, so Saturday gives none.
        Counting stops at `at_most`: a rule comparing with a notice needs no more, and a date
        centuries away (a hostile 9999-12-30) would otherwise cost seconds of day-by-day counting."""
        return _business_days_between(self.country, self.subdivision, start, end, at_most)

    def deadline(self, moment: datetime, count: int) -> datetime:
        """`count` business days after `moment`, at the same local time. A moment outside business
        days starts at the beginning of the next one: received Saturday, one business day is the
        end of Monday."""
        local = moment.astimezone(self.time_zone)
        if self.is_business_day(local.date()):
            day, at = self.add_business_days(local.date(), count), local.time()
        else:
            day, at = self.add_business_days(self.next_business_day(local.date()), count), time(0)
        return datetime.combine(day, at, self.time_zone).astimezone(UTC)

    def at(self, day: date, when: time) -> datetime:
        return datetime.combine(day, when, self.time_zone).astimezone(UTC)
