"""Which window a count-diff run checks, however it was started (schedule, UI, CLI, backfill)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdp.finance.reconcile import previous_month
from cdp.quality.count_diff import requested_window


def test_a_scheduled_run_checks_the_whole_day_before_its_logical_date() -> None:
    start, end = requested_window(None, None, datetime(2026, 3, 2, 6, 30, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, tzinfo=UTC))


def test_a_run_without_a_data_interval_checks_yesterday() -> None:
    """A run triggered from the CLI has no logical date or interval end: it must not fail (KeyError)."""
    start, end = requested_window(None, None, None)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (start, end) in {(today - timedelta(days=1), today), (today, today + timedelta(days=1))}


def test_the_params_window_wins_and_its_end_defaults_to_one_day_later() -> None:
    moment = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    assert requested_window("2024-05-01", None, moment) == (
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 2, tzinfo=UTC),
    )
    assert requested_window("2024-05-01T00:00:00Z", "2024-05-03T12:00:00+02:00", moment) == (
        datetime(2024, 5, 1, tzinfo=UTC),
        datetime(2024, 5, 3, 10, tzinfo=UTC),
    )


def test_a_reconciliation_without_a_month_takes_the_month_before_the_run() -> None:
    assert previous_month(datetime(2026, 1, 2, 7, tzinfo=UTC)) == "2025-12"
    assert previous_month(datetime(2026, 3, 31, 23, tzinfo=UTC)) == "2026-02"
    now = datetime.now(UTC)
    assert previous_month(None) == (now.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
