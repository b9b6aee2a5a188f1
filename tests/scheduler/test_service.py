"""The scheduler service on real databases: the stored schedule survives restarts, a run
missed while down still happens once, a job that cannot be loaded is kept and reported,
and the lease keeps firing to one holder."""

import asyncio
import logging
import pickle
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine, select, text

from core.db import utcnow
from core.models import JobRun
from core.services import Services
from scheduler.plan import JobSpec
from scheduler.service import SchedulerService
from scheduler.store import job_store_url
from scheduler.triggers import LocalTimeTrigger
from tests.scheduler import sample_jobs

NOTE = "tests.scheduler.sample_jobs:note"


def tomorrow_at_six() -> LocalTimeTrigger:
    return LocalTimeTrigger("Asia/Kathmandu", 6, 0)


def note_spec(label: str = "a", trigger: object = None) -> JobSpec:
    return JobSpec(
        f"test:{label}", NOTE, (label,), trigger or tomorrow_at_six(), grace_seconds=3600
    )


@pytest.fixture
async def started(services: Services) -> AsyncIterator[list[SchedulerService]]:
    """Scheduler services made by a test, stopped at its end."""
    made: list[SchedulerService] = []
    yield made
    for service in made:
        service.stop()


async def start(services: Services, made: list[SchedulerService], name: str) -> SchedulerService:
    """A scheduler that holds the lease and fires, as ``run`` makes one."""
    service = SchedulerService(services, holder=name)
    assert await service.lease.acquire()
    service.start()
    made.append(service)
    return service


def stored_rows(services: Services) -> dict[str, tuple[float | None, bytes]]:
    engine = create_engine(job_store_url(services.settings.resolved_database_url))
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, next_run_time, job_state FROM apscheduler_jobs")
        )
        result = {row.id: (row.next_run_time, row.job_state) for row in rows}
    engine.dispose()
    return result


def set_stored(services: Services, job_id: str, **values: object) -> None:
    engine = create_engine(job_store_url(services.settings.resolved_database_url))
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    with engine.begin() as connection:
        connection.execute(
            text(f"UPDATE apscheduler_jobs SET {assignments} WHERE id = :id"),
            {"id": job_id, **values},
        )
    engine.dispose()


async def test_sample_schedule_is_stored_and_kept_unchanged_across_restarts(
    services: Services, started: list[SchedulerService]
) -> None:
    first = await start(services, started, "one")
    before = stored_rows(services)
    first.stop()
    await first.lease.release()

    second = await start(services, started, "two")
    changes = second.sync(
        [*_plan(services)]  # the same plan again: nothing to add or replace
    )

    assert "build:radio-dhading:friday-1900" in before
    assert changes["kept"] == len(before) and changes["added"] == changes["replaced"] == 0
    assert stored_rows(services) == before


def _plan(services: Services) -> list[JobSpec]:
    from scheduler.plan import plan

    return plan(services.deployment, services.settings.scheduler_heartbeat_seconds)


async def test_run_missed_while_down_happens_once_after_restart(
    services: Services, started: list[SchedulerService]
) -> None:
    sample_jobs.seen.clear()
    first = await start(services, started, "one")
    first.sync([note_spec("missed")])
    first.stop()
    await first.lease.release()
    # The service was down when the job was due three times over (coalesced into one).
    due = utcnow().replace(microsecond=0) - timedelta(minutes=5)
    state = pickle.loads(stored_rows(services)["test:missed"][1])
    state["next_run_time"] = due
    set_stored(
        services, "test:missed", next_run_time=due.timestamp(), job_state=pickle.dumps(state)
    )

    second = await start(services, started, "two")
    second.sync([note_spec("missed")])
    await _until(lambda: sample_jobs.seen)

    assert sample_jobs.seen == [("missed", due)]
    async with services.db.session() as session:
        run = await session.scalar(select(JobRun).where(JobRun.job_id == "test:missed"))
    assert run is not None and run.outcome == "done" and run.holder == "two"
    assert run.fire_time == due


async def test_job_that_cannot_be_loaded_is_kept_and_reported(
    services: Services, started: list[SchedulerService], caplog: pytest.LogCaptureFixture
) -> None:
    first = await start(services, started, "one")
    first.sync([note_spec("renamed")])
    first.stop()
    await first.lease.release()
    state = pickle.loads(stored_rows(services)["test:renamed"][1])
    state["func"] = "tests.scheduler.sample_jobs:renamed_away"
    set_stored(services, "test:renamed", job_state=pickle.dumps(state))

    with caplog.at_level(logging.ERROR, logger="scheduler.store"):
        second = await start(services, started, "two")

    assert "test:renamed" in stored_rows(services)
    assert stored_rows(services)["test:renamed"][0] is None  # set aside, not spinning
    assert second.store is not None and "test:renamed" in second.store.broken
    assert any("test:renamed cannot be loaded" in r.getMessage() for r in caplog.records)


async def test_changed_plan_replaces_and_removes_only_its_own_jobs(
    services: Services, started: list[SchedulerService]
) -> None:
    service = await start(services, started, "one")
    service.sync([note_spec("a")])
    assert service.scheduler is not None
    service.scheduler.add_job(NOTE, trigger=tomorrow_at_six(), args=["x"], id="manual:x")

    changes = service.sync([note_spec("a", LocalTimeTrigger("Asia/Kathmandu", 7, 0))])

    assert changes["replaced"] == 1
    # The plan owns build:, groups:, reminders: and heartbeat; "manual:" is someone else's.
    assert {"test:a", "manual:x"} <= set(stored_rows(services))
    assert "build:radio-dhading:friday-1900" not in stored_rows(services)


async def test_only_the_lease_holder_fires(services: Services) -> None:
    services.settings.lease_seconds = 0.6
    services.settings.scheduler_heartbeat_seconds = 0.2
    one = SchedulerService(services, holder="one")
    two = SchedulerService(services, holder="two")
    tasks = [asyncio.create_task(one.run()), asyncio.create_task(two.run())]
    try:
        await asyncio.wait_for(_started_any(one, two), 5)
        await asyncio.sleep(1.5)
        firing = [s for s in (one, two) if s.scheduler is not None]
        assert len(firing) == 1
        holder = firing[0].holder
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async with services.db.session() as session:
        runs = (await session.scalars(select(JobRun).where(JobRun.job_id == "heartbeat"))).all()
    assert len(runs) >= 4
    assert {run.holder for run in runs} == {holder}
    assert all(run.outcome == "done" for run in runs)


async def _started_any(*services: SchedulerService) -> None:
    while not any(s.started.is_set() for s in services):
        await asyncio.sleep(0.05)


async def _until(condition: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_interval_trigger_string_is_stable() -> None:
    """Sync compares triggers by their text; an interval must read the same each start."""
    assert str(IntervalTrigger(seconds=300, timezone="UTC")) == str(
        IntervalTrigger(seconds=300, timezone="UTC", start_date=datetime(2030, 1, 1, tzinfo=UTC))
    )
