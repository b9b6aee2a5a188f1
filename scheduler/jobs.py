"""The scheduled jobs. Each takes only plain values (station codes, weekday names, survey
ids), so a stored schedule survives any change to the code around it, and each runs at
most once per fire (see ``scheduler.runtime.scheduled``).

A job returns a line for ``job_run.detail``; it raises ``Skipped`` when there was nothing
to do and a ``HelpdeskError`` when staff must act (a script too long for the slot, a
language no voice speaks).
"""

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.broadcasts import start_broadcast
from core.bulletins import approve, compose
from core.deployment import WEEKDAYS, StationConfig
from core.models import Bulletin, JobRun, Station
from core.rendering import render
from scheduler.reminders import local_month, queue_reminders
from scheduler.runtime import Runtime, Skipped, scheduled
from scheduler.triggers import LocalTimeTrigger

logger = logging.getLogger(__name__)

JOB_RUNS_KEPT = timedelta(days=90)
READY = ("approved", "aired")


@scheduled
async def build_bulletin(
    runtime: Runtime, fire_time: datetime, station_code: str, day: str, slot: str
) -> str:
    """Compose and render the bulletin of the slot ``lead_time_minutes`` after this fire.

    An editor's bulletin already composed for that date is kept and rendered as it is;
    an approved one is left alone.
    """
    services = runtime.services
    station = _station(runtime, station_code)
    air_at = _slot_after(station, fire_time, day, slot)

    async with services.db.session() as session:
        air_date = air_at.astimezone(ZoneInfo(station.timezone)).date()
        existing = await _bulletin_on(session, station_code, air_date)
        if existing is not None and existing.status in READY:
            raise Skipped(f"bulletin {existing.id} is already {existing.status}")
        if existing is None:
            composed = await compose(session, services.deployment, station_code, air_at)
            bulletin_id = composed.bulletin.id
            for warning in composed.warnings:
                logger.warning("bulletin %s for %s: %s", bulletin_id, station_code, warning)
        else:
            bulletin_id = existing.id

    rendered = await render(services.db, services.deployment, services.settings, bulletin_id)
    files = sum(len(language.files) for language in rendered)
    detail = f"bulletin {bulletin_id} for {air_at.isoformat()} rendered: {files} files"
    if station.auto_approve:
        async with services.db.session() as session:
            await approve(session, bulletin_id, media_dir=services.settings.resolved_media_dir)
        detail += ", approved"
    logger.info("station %s (%s %s): %s", station_code, day, slot, detail)
    return detail


@scheduled
async def send_to_groups(
    runtime: Runtime, fire_time: datetime, station_code: str, day: str, slot: str
) -> str:
    """Queue the day's approved bulletin for the station's community groups."""
    services = runtime.services
    station = _station(runtime, station_code)
    local_date = fire_time.astimezone(ZoneInfo(station.timezone)).date()

    async with services.db.session() as session:
        bulletin = await _bulletin_on(session, station_code, local_date)
        if bulletin is None:
            raise Skipped(f"no bulletin for {station_code} on {local_date}")
        if bulletin.status not in READY:
            # Unapproved bulletins never go out; staff see this line in `scheduler runs`.
            logger.warning(
                "bulletin %s for %s on %s is %s, not approved: not sent to groups",
                bulletin.id,
                station_code,
                local_date,
                bulletin.status,
            )
            raise Skipped(f"bulletin {bulletin.id} is {bulletin.status}, not approved")
        broadcast = await start_broadcast(session, services.deployment, bulletin.id)
        detail = f"bulletin {bulletin.id}: broadcast {broadcast.id} to {broadcast.recipients}"

    runtime.wake_outbox()
    logger.info("station %s (%s %s): %s", station_code, day, slot, detail)
    return detail


@scheduled
async def remind_cfas(runtime: Runtime, fire_time: datetime, survey_id: str) -> str:
    """Queue reminders for the CFAs who have not answered ``survey_id`` this month."""
    services = runtime.services
    reminders = services.deployment.config.reminders
    if reminders is None or reminders.survey != survey_id:
        raise Skipped(f"the deployment no longer reminds about {survey_id}")
    zone = reminders.timezone
    month = local_month(fire_time, zone)

    async with services.db.session() as session:
        queued, left_out = await queue_reminders(
            session, survey_id, month, zone, fire_time.astimezone(ZoneInfo(zone)).date()
        )
    runtime.wake_outbox()
    return f"{month}: {queued} reminders queued, {left_out} left out (opted out or unreachable)"


@scheduled
async def heartbeat(runtime: Runtime, fire_time: datetime) -> str:
    """Leave a trace that the scheduler fires, and forget job runs older than 90 days."""
    async with runtime.services.db.session() as session:
        result = await session.execute(
            delete(JobRun).where(JobRun.fire_time < fire_time - JOB_RUNS_KEPT)
        )
    return f"alive; {getattr(result, 'rowcount', 0)} old job runs forgotten"


def _station(runtime: Runtime, code: str) -> StationConfig:
    station = runtime.services.deployment.stations.get(code)
    if station is None:
        raise Skipped(f"station {code} is no longer in the deployment")
    return station


def _slot_after(station: StationConfig, fire_time: datetime, day: str, slot: str) -> datetime:
    """The first ``day`` ``slot`` (local time) at or after ``fire_time``: for a scheduled
    build, the slot its lead time ends at; for one run by hand, the coming slot."""
    hour, minute = (int(part) for part in slot.split(":"))
    trigger = LocalTimeTrigger(station.timezone, hour, minute, weekdays=(WEEKDAYS.index(day),))
    air_at = trigger.get_next_fire_time(None, fire_time)
    assert air_at is not None  # a weekly trigger always has a next fire
    return air_at


async def _bulletin_on(
    session: AsyncSession, station_code: str, air_date: date
) -> Bulletin | None:
    bulletin: Bulletin | None = await session.scalar(
        select(Bulletin)
        .join(Station, Bulletin.station_id == Station.id)
        .where(Station.code == station_code, Bulletin.air_date == air_date)
    )
    return bulletin
