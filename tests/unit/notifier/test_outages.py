"""How a recorded batch changes recipients' outages: in time order, one alert per recipient."""

from datetime import UTC, datetime, timedelta

from notifier.domain.outages import Ended, OutageChanges, RecipientFailures, outage_changes

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
HOOK = "https://a.example/hook"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_batchs_failures_are_grouped_per_recipient_sorted_with_the_first_in_time_named():
    changes = outage_changes([
        Ended("webhook", HOOK, "msg_3", False, at(3)),
        Ended("email", "Ada@Example.com", "msg_2", False, at(2)),
        Ended("webhook", HOOK, "msg_1", False, at(1)),
        Ended("email", "ada@example.com", "msg_4", False, at(4)),
        Ended("webhook", "https://a.example/Hook", "msg_5", False, at(5)),
    ])
    assert changes == OutageChanges(undelivered_before=[
        RecipientFailures("email", "ada@example.com", "msg_2", 2),
        RecipientFailures("webhook", "https://a.example/Hook", "msg_5", 1),
        RecipientFailures("webhook", HOOK, "msg_1", 2),
    ], reachable=[], undelivered_after=[])


def test_failures_before_a_recipients_last_delivery_in_the_batch_come_before_its_outage_ends_and_later_ones_after():
    changes = outage_changes([
        Ended("webhook", HOOK, "msg_refused_first", False, at(1)),
        Ended("webhook", HOOK, "msg_taken", True, at(2)),
        Ended("webhook", HOOK, "msg_refused_then", False, at(3)),
        Ended("webhook", HOOK, "msg_taken_again", True, at(4)),
        Ended("webhook", HOOK, "msg_refused_last", False, at(5)),
    ])
    assert changes.undelivered_before == [RecipientFailures("webhook", HOOK, "msg_refused_first", 2)]
    assert changes.reachable == [("webhook", HOOK)]
    assert changes.undelivered_after == [RecipientFailures("webhook", HOOK, "msg_refused_last", 1)]


def test_a_batch_of_deliveries_only_ends_outages_and_an_empty_batch_changes_nothing():
    changes = outage_changes([Ended("email", "Ada@Example.com", "msg_1", True, at(1))])
    assert changes == OutageChanges([], [("email", "ada@example.com")], [])
    assert not outage_changes([])


def test_distinct_non_ascii_mailboxes_are_not_merged_by_case_folding():
    changes = outage_changes([Ended("email", "\u212aate@example.com", "msg_1", False, at(1)),
                              Ended("email", "kate@example.com", "msg_2", False, at(2))])
    assert [f.recipient for f in changes.undelivered_before] == ["kate@example.com", "\u212aate@example.com"]


def test_every_recipient_concerned_is_named_once_for_its_lock_in_sorted_order():
    changes = outage_changes([Ended("webhook", "https://b.example/", "msg_1", True, at(1)),
                              Ended("webhook", "https://a.example/", "msg_2", False, at(2)),
                              Ended("webhook", "https://b.example/", "msg_3", False, at(3))])
    assert changes.recipients == ["webhook\x1fhttps://a.example/", "webhook\x1fhttps://b.example/"]
