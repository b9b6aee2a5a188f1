"""The schedule the deployment asks for, as job specifications.

Every job id says what it is for (``build:radio-dhading:friday-1900``), so the stored
schedule can be read in ``helpdesk scheduler jobs`` and compared with this plan at each
start: unchanged jobs are kept with their pending run (so a run missed while the service
was down still happens within its grace time), changed ones replaced, stale ones removed.
"""

from dataclasses import dataclass

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from core.deployment import WEEKDAYS, Airtime, Deployment, StationConfig
from scheduler.triggers import LocalTimeTrigger

MINUTES_PER_WEEK = 7 * 24 * 60
# Job ids the plan owns; stored jobs with other prefixes are left alone.
PREFIXES = ("build:", "groups:", "reminders:", "heartbeat")
HEARTBEAT_ID = "heartbeat"


@dataclass(frozen=True)
class JobSpec:
    """One job as the plan wants it: id, function path, plain arguments, trigger."""

    id: str
    func: str
    args: tuple[str, ...]
    trigger: BaseTrigger
    grace_seconds: int


def plan(deployment: Deployment, heartbeat_seconds: float = 300) -> list[JobSpec]:
    """Every job the deployment needs, in a stable order (no heartbeat when 0)."""
    specs = []
    for station in deployment.stations.values():
        for slot in station.airtime:
            specs.append(_build_job(station, slot))
            specs.append(_groups_job(station, slot))

    reminders = deployment.config.reminders
    if reminders is not None:
        hour, minute = _hour_minute(reminders.time)
        trigger = LocalTimeTrigger(
            reminders.timezone, hour, minute, days_of_month=tuple(reminders.days_of_month)
        )
        specs.append(
            JobSpec(
                f"reminders:{reminders.survey}",
                "scheduler.jobs:remind_cfas",
                (reminders.survey,),
                trigger,
                grace_seconds=12 * 3600,
            )
        )
    if heartbeat_seconds > 0:
        specs.append(_heartbeat(heartbeat_seconds))
    return specs


def _slot_id(slot: Airtime) -> str:
    return f"{slot.day}-{slot.time.replace(':', '')}"


def _build_job(station: StationConfig, slot: Airtime) -> JobSpec:
    """Built ``lead_time_minutes`` before the slot, on the local clock (may be the day before)."""
    hour, minute = _hour_minute(slot.time)
    start = WEEKDAYS.index(slot.day) * 1440 + hour * 60 + minute - station.lead_time_minutes
    start %= MINUTES_PER_WEEK
    weekday, minute_of_day = divmod(start, 1440)
    trigger = LocalTimeTrigger(
        station.timezone, minute_of_day // 60, minute_of_day % 60, weekdays=(weekday,)
    )
    return JobSpec(
        f"build:{station.code}:{_slot_id(slot)}",
        "scheduler.jobs:build_bulletin",
        (station.code, slot.day, slot.time),
        trigger,
        # Building late is still worth it as long as the slot is ahead.
        grace_seconds=max(60, station.lead_time_minutes * 60),
    )


def _groups_job(station: StationConfig, slot: Airtime) -> JobSpec:
    hour, minute = _hour_minute(slot.groups_at or slot.time)
    trigger = LocalTimeTrigger(
        station.timezone, hour, minute, weekdays=(WEEKDAYS.index(slot.day),)
    )
    return JobSpec(
        f"groups:{station.code}:{_slot_id(slot)}",
        "scheduler.jobs:send_to_groups",
        (station.code, slot.day, slot.time),
        trigger,
        grace_seconds=6 * 3600,
    )


def _heartbeat(seconds: float) -> JobSpec:
    # A plain interval: no local clock is involved, so daylight saving cannot matter.
    return JobSpec(
        HEARTBEAT_ID,
        "scheduler.jobs:heartbeat",
        (),
        IntervalTrigger(seconds=seconds, timezone="UTC"),
        grace_seconds=max(1, int(seconds)),
    )


def _hour_minute(text: str) -> tuple[int, int]:
    hour, minute = text.split(":")
    return int(hour), int(minute)
