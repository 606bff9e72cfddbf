"""The grouping that gives a recipient's failures in one batch at most one alert."""

from notifier.domain.outages import RecipientFailures, Undelivered, by_recipient


def test_a_batchs_failures_are_grouped_per_recipient_sorted_with_the_first_in_the_batch_named():
    grouped = by_recipient([
        Undelivered("webhook", "https://a.example/hook", "msg_1"),
        Undelivered("email", "Ada@Example.com", "msg_2"),
        Undelivered("webhook", "https://a.example/hook", "msg_3"),
        Undelivered("email", "ada@example.com", "msg_4"),
        Undelivered("webhook", "https://a.example/Hook", "msg_5"),
    ])
    assert grouped == [
        RecipientFailures("email", "ada@example.com", "msg_2", 2),
        RecipientFailures("webhook", "https://a.example/Hook", "msg_5", 1),
        RecipientFailures("webhook", "https://a.example/hook", "msg_1", 2),
    ]


def test_no_failures_group_into_nothing():
    assert by_recipient([]) == []
