"""What a scheduled job runs with, and the ledger that runs each fire once.

Stored jobs hold only an import path and plain values, so a job finds the process's
services here rather than in its arguments. The executor tells each job which job and
which scheduled time it is running for; the job claims that fire in ``job_run`` before
doing anything, so a fire is done once even if two schedulers ever ran together (the
lease in ``scheduler.service`` is what normally keeps it to one).

Job run lifecycle::

    claimed (started_at) ──> done | skipped | failed | error (finished_at, detail)
"""

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.asyncio import AsyncIOExecutor
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import utcnow
from core.errors import HelpdeskError
from core.models import JobRun, SchedulerLease
from core.services import Services

logger = logging.getLogger(__name__)


@dataclass
class Runtime:
    """The services a process's jobs use, and how to wake its outbox worker."""

    services: Services
    holder: str
    wake_outbox: Callable[[], None] = field(default=lambda: None)
    # The lease that must still be held when a fire is claimed (None: run by hand).
    lease_name: str | None = None
    lease_ttl: timedelta = timedelta(seconds=30)


class Skipped(Exception):
    """A job found nothing to do, for a reason staff may want to read."""


_current: Runtime | None = None
_fire: ContextVar[tuple[str, datetime]] = ContextVar("scheduled_fire")


def install(runtime: Runtime | None) -> None:
    """Make ``runtime`` what jobs of this process run with (None when the scheduler stops)."""
    global _current
    _current = runtime


def installed() -> Runtime | None:
    """The runtime installed in this process, if any."""
    return _current


@contextlib.contextmanager
def firing(job_id: str, fire_time: datetime) -> Iterator[None]:
    """Run a job body by hand as the fire ``fire_time`` of ``job_id``."""
    token = _fire.set((job_id, fire_time))
    try:
        yield
    finally:
        _fire.reset(token)


def current() -> Runtime:
    """The runtime installed by the scheduler of this process."""
    if _current is None:
        raise RuntimeError("no scheduler runtime installed in this process")
    return _current


class FireExecutor(AsyncIOExecutor):  # type: ignore[misc]
    """The asyncio executor, telling each job its id and scheduled run time.

    With coalescing on, APScheduler hands over only the latest missed run time, so one
    submission is one fire. The context variable is copied into the job's task when the
    parent creates it, which happens inside ``_do_submit_job``.
    """

    def shutdown(self, wait: bool = True) -> None:
        # The stock executor cancels jobs in flight; a job has claimed its fire by then
        # and would leave it half done. Let them finish; the process's end stops them.
        running = [future for future in self._pending_futures if not future.done()]
        if running:
            logger.info("scheduler stopping with %d jobs still running", len(running))
        self._pending_futures.clear()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        token = _fire.set((job.id, run_times[-1]))
        try:
            super()._do_submit_job(job, run_times)
        finally:
            _fire.reset(token)


JobBody = Callable[..., Awaitable[str]]


def scheduled(body: JobBody) -> Callable[..., Awaitable[str]]:
    """Make ``body(runtime, fire_time, *args)`` a job that runs once per fire and
    leaves its outcome in ``job_run``."""

    @functools.wraps(body)
    async def job(*args: Any) -> str:
        job_id, fire_time = _fire.get()
        runtime = current()
        if not await _claim(runtime, job_id, fire_time):
            logger.info("job %s fire %s already run or not ours; skipped", job_id, fire_time)
            return "already run"

        outcome, detail = "done", ""
        try:
            detail = await body(runtime, fire_time, *args)
        except Skipped as skipped:
            outcome, detail = "skipped", str(skipped)
            logger.info("job %s fire %s skipped: %s", job_id, fire_time, detail)
        except HelpdeskError as error:
            outcome, detail = "failed", str(error)
            logger.error("job %s fire %s failed: %s", job_id, fire_time, detail)
        except Exception as error:
            await _finish(runtime, job_id, fire_time, "error", f"{type(error).__name__}: {error}")
            raise
        await _finish(runtime, job_id, fire_time, outcome, detail)
        return detail

    return job


async def _claim(runtime: Runtime, job_id: str, fire_time: datetime) -> bool:
    """Record the fire as ours, in the same transaction as a check that the lease is
    still ours: a process that stalled past its lease (a blocked loop, a long pause)
    must not fire next to the one that took the lease over. A lease that ran out but
    that nobody took is still ours to renew, so no fire is lost to a slow renewal."""
    try:
        async with runtime.services.db.session() as session:
            if runtime.lease_name and not await _still_held(session, runtime):
                logger.warning(
                    "job %s fire %s not run: %s no longer holds the %s lease",
                    job_id,
                    fire_time,
                    runtime.holder,
                    runtime.lease_name,
                )
                return False
            session.add(JobRun(job_id=job_id, fire_time=fire_time, holder=runtime.holder))
    except IntegrityError:
        return False
    return True


async def _still_held(session: AsyncSession, runtime: Runtime) -> bool:
    lease = await session.scalar(
        select(SchedulerLease).where(SchedulerLease.name == runtime.lease_name).with_for_update()
    )
    if lease is None or lease.holder != runtime.holder:
        return False
    lease.expires_at = max(lease.expires_at, utcnow() + runtime.lease_ttl)
    return True


async def _finish(
    runtime: Runtime, job_id: str, fire_time: datetime, outcome: str, detail: str
) -> None:
    async with runtime.services.db.session() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.job_id == job_id, JobRun.fire_time == fire_time)
            .values(finished_at=utcnow(), outcome=outcome, detail=detail[:2000])
        )
