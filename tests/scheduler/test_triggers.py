"""The wall-clock trigger, with explicit clocks: Kathmandu (UTC+05:45, no daylight saving)
and zones whose clocks change, where APScheduler's CronTrigger fires twice or not at all."""

import pickle
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from scheduler.triggers import LocalTimeTrigger


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone is UTC, as on most servers."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def fires(trigger: object, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times from ``start``, as APScheduler asks for them."""
    result: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)  # type: ignore[attr-defined]
        assert fire is not None
        result.append(fire)
        previous, now = fire, fire
    return result


def local_days(moments: list[datetime], zone: str) -> Counter[date]:
    return Counter(moment.astimezone(ZoneInfo(zone)).date() for moment in moments)


def test_six_in_kathmandu_is_a_quarter_past_midnight_utc(utc_host: None) -> None:
    trigger = LocalTimeTrigger("Asia/Kathmandu", 6, 0)

    first, second = fires(trigger, datetime(2026, 12, 3, 1, 0, tzinfo=UTC), 2)

    assert first == datetime(2026, 12, 4, 0, 15, tzinfo=UTC)
    assert second == datetime(2026, 12, 5, 0, 15, tzinfo=UTC)
    assert first.astimezone(ZoneInfo("Asia/Kathmandu")).strftime("%H:%M") == "06:00"


def test_a_fire_exactly_now_is_not_skipped() -> None:
    trigger = LocalTimeTrigger("Asia/Kathmandu", 6, 0)
    now = datetime(2026, 12, 4, 0, 15, tzinfo=UTC)

    assert trigger.get_next_fire_time(None, now) == now


def test_weekly_slot_in_the_stations_zone() -> None:
    friday_five_pm = LocalTimeTrigger("Asia/Kathmandu", 17, 0, weekdays=(4,))

    fire = fires(friday_five_pm, datetime(2026, 12, 3, 0, 0, tzinfo=UTC), 1)[0]

    assert fire == datetime(2026, 12, 4, 11, 15, tzinfo=UTC)  # Friday 17:00 +05:45


@pytest.mark.parametrize(
    ("zone", "start", "hour", "minute"),
    [
        # Clocks go back: 02:30 happens twice on 25 October.
        ("Europe/Berlin", datetime(2026, 10, 22, tzinfo=UTC), 2, 30),
        # Clocks go forward at 02:00: 02:30 does not exist on 29 March.
        ("Europe/Berlin", datetime(2026, 3, 26, tzinfo=UTC), 2, 30),
        # Clocks go forward at midnight: 00:30 does not exist on 8 March.
        ("America/Havana", datetime(2026, 3, 5, tzinfo=UTC), 0, 30),
    ],
)
def test_daily_job_fires_once_per_local_day_across_daylight_saving(
    zone: str, start: datetime, hour: int, minute: int
) -> None:
    ours = fires(LocalTimeTrigger(zone, hour, minute), start, 7)

    days = local_days(ours, zone)
    first = min(days)
    assert sorted(days) == [first + timedelta(days=n) for n in range(7)]
    assert set(days.values()) == {1}


def test_cron_trigger_is_what_we_guard_against() -> None:
    """If APScheduler fixes its DST handling this fails, and the custom trigger can go."""
    back = fires(
        CronTrigger(hour=2, minute=30, timezone="Europe/Berlin"),
        datetime(2026, 10, 24, 12, tzinfo=UTC),
        2,
    )
    forward = fires(
        CronTrigger(hour=0, minute=30, timezone="America/Havana"),
        datetime(2026, 3, 7, 12, tzinfo=UTC),
        1,
    )

    assert local_days(back, "Europe/Berlin")[date(2026, 10, 25)] == 2
    assert forward[0].astimezone(ZoneInfo("America/Havana")).date() == date(2026, 3, 9)


def test_days_of_month_skip_months_without_them() -> None:
    trigger = LocalTimeTrigger("Asia/Kathmandu", 10, 0, days_of_month=(20, 27))

    moments = fires(trigger, datetime(2026, 12, 1, tzinfo=UTC), 3)

    assert [m.astimezone(ZoneInfo("Asia/Kathmandu")).date() for m in moments] == [
        date(2026, 12, 20),
        date(2026, 12, 27),
        date(2027, 1, 20),
    ]


def test_survives_pickling_as_the_job_store_keeps_it() -> None:
    trigger = LocalTimeTrigger("Asia/Kathmandu", 7, 30, weekdays=(2, 5))

    restored = pickle.loads(pickle.dumps(trigger))

    assert restored == trigger
    assert str(restored) == "07:30 Asia/Kathmandu on wed,sat"


def test_unknown_zone_is_refused_when_built() -> None:
    with pytest.raises(Exception, match="Mars"):
        LocalTimeTrigger("Mars/Olympus", 6, 0)
