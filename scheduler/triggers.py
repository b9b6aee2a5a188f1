"""The trigger every scheduled job uses: a wall-clock time in a named zone, on chosen
weekdays or days of the month.

APScheduler's own ``CronTrigger`` goes wrong on daylight-saving days (checked with
APScheduler 3.11): when the local time occurs twice it fires twice, and when the local
time does not exist that day (Havana springs forward at midnight) it skips the day. A
programme's daily or weekly job must run exactly once per local day, so this trigger
picks one instant per matching day:

* a time that occurs twice (clocks go back) fires at its first occurrence;
* a time that does not exist (clocks go forward) fires at the same instant as the time
  before the change would have had, which reads one gap later on the local clock.
"""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

# Far enough to find the 29th of a month or any weekday; guards a loop with no match.
SEARCH_DAYS = 400
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class LocalTimeTrigger(BaseTrigger):  # type: ignore[misc]
    """Fires at ``hour:minute`` local time in ``timezone`` on the matching days.

    Args:
        timezone: an IANA zone name, such as ``Asia/Kathmandu`` (UTC+05:45).
        hour, minute: the local wall-clock time.
        weekdays: 0 (Monday) to 6 (Sunday); None for every day.
        days_of_month: 1 to 31; None for every day. Both given: both must match.
    """

    def __init__(
        self,
        timezone: str,
        hour: int,
        minute: int,
        *,
        weekdays: tuple[int, ...] | None = None,
        days_of_month: tuple[int, ...] | None = None,
    ) -> None:
        ZoneInfo(timezone)  # an unknown zone fails here, not at the first fire
        self.timezone = timezone
        self.hour = hour
        self.minute = minute
        self.weekdays = tuple(sorted(weekdays)) if weekdays is not None else None
        self.days_of_month = tuple(sorted(days_of_month)) if days_of_month is not None else None

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire after ``previous_fire_time`` (exclusive) and at or after ``now``."""
        zone = ZoneInfo(self.timezone)
        earliest = now if previous_fire_time is None else max(now, previous_fire_time)
        day = earliest.astimezone(zone).date() - timedelta(days=1)

        for _ in range(SEARCH_DAYS):
            day += timedelta(days=1)
            if not self.matches(day):
                continue
            fire = self.instant(day)
            if fire >= now and (previous_fire_time is None or fire > previous_fire_time):
                return fire
        return None

    def matches(self, day: date) -> bool:
        """Whether the trigger fires on local date ``day``."""
        if self.weekdays is not None and day.weekday() not in self.weekdays:
            return False
        return self.days_of_month is None or day.day in self.days_of_month

    def instant(self, day: date) -> datetime:
        """The UTC instant of the wall-clock time on local date ``day`` (see module doc)."""
        local = datetime.combine(day, time(self.hour, self.minute), tzinfo=ZoneInfo(self.timezone))
        return local.replace(fold=0).astimezone(UTC)

    def __getstate__(self) -> dict[str, object]:
        return {
            "version": 1,
            "timezone": self.timezone,
            "hour": self.hour,
            "minute": self.minute,
            "weekdays": self.weekdays,
            "days_of_month": self.days_of_month,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        if state.get("version") != 1:
            raise ValueError(f"LocalTimeTrigger state version {state.get('version')} unknown")
        self.__dict__.update({key: value for key, value in state.items() if key != "version"})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalTimeTrigger) and self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash(tuple(self.__getstate__().items()))

    def __str__(self) -> str:
        days = ""
        if self.weekdays is not None:
            days = " on " + ",".join(WEEKDAY_NAMES[d] for d in self.weekdays)
        if self.days_of_month is not None:
            days += " on day " + ",".join(str(d) for d in self.days_of_month)
        return f"{self.hour:02d}:{self.minute:02d} {self.timezone}{days}"

    def __repr__(self) -> str:
        return f"<LocalTimeTrigger {self}>"
