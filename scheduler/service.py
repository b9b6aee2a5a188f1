"""The scheduler of a service process: APScheduler 3 on the event loop, its jobs in the
project's database, and a lease so only one process fires them.

Every process runs :meth:`SchedulerService.run`. The one that holds the ``scheduler``
lease starts APScheduler and brings the stored jobs in line with the deployment; the
others wait and take over if the holder stops renewing. Losing the lease (a database
outage longer than the lease) stops APScheduler at once, so two never fire together.

Lifecycle of one process::

    waiting ──lease taken──> firing ──lease lost──> waiting
                               └──cancelled──> stopped (lease released)
"""

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from core.errors import HelpdeskError
from core.lease import Lease, process_name
from core.models import JobRun
from core.services import Services

# The jobs' module pulls in the audio pipeline. Imported here, it loads when the service
# starts rather than while the scheduler holds its lease with the event loop blocked.
from scheduler import jobs as _jobs  # noqa: F401
from scheduler import runtime
from scheduler.plan import PREFIXES, JobSpec, plan
from scheduler.store import KeepingJobStore, job_store, reading_job_store

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
JOB_DEFAULTS = {
    # After downtime or a busy moment, run a missed job once, not once per missed fire.
    "coalesce": True,
    "max_instances": 1,
    # Each job sets its own grace; this covers jobs added by hand.
    "misfire_grace_time": 300,
}


class SchedulerService:
    """Runs this process's share of the scheduling (see module doc).

    Args:
        services: the process's services.
        holder: this process's name in the lease; unique per process by default.
        wake_outbox: called when a job queued messages, to deliver them at once.
    """

    def __init__(
        self,
        services: Services,
        holder: str | None = None,
        wake_outbox: Any = None,
    ) -> None:
        self.services = services
        self.holder = holder or process_name()
        settings = services.settings
        self.lease = Lease(services.db, LEASE_NAME, self.holder, settings.lease_seconds)
        self.wake_outbox = wake_outbox or (lambda: None)
        self.scheduler: AsyncIOScheduler | None = None
        self.store: KeepingJobStore | None = None
        self.started = asyncio.Event()

    async def run(self) -> None:
        """Hold or wait for the lease, firing jobs while held, until cancelled."""
        renew_every = self.services.settings.lease_seconds / 3
        try:
            while True:
                held = await self._renew()
                if held and self.scheduler is None:
                    self.start()
                elif not held and self.scheduler is not None:
                    self.stop()
                await asyncio.sleep(renew_every)
        finally:
            self.stop()
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def _renew(self) -> bool:
        try:
            return await self.lease.acquire()
        except Exception as error:
            # The database is away: a lease not renewed must be treated as lost.
            logger.warning("scheduler lease of %s not renewed: %s", self.holder, error)
            return False

    def start(self) -> None:
        """Start APScheduler on this loop and sync its jobs with the deployment."""
        settings = self.services.settings
        self.store = job_store(settings)
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": self.store},
            executors={"default": runtime.FireExecutor()},
            job_defaults=JOB_DEFAULTS,
            timezone="UTC",
        )
        runtime.install(
            runtime.Runtime(
                self.services,
                self.holder,
                self.wake_outbox,
                lease_name=LEASE_NAME,
                lease_ttl=self.lease.ttl,
            )
        )
        self.scheduler.start()
        changes = self.sync(plan(self.services.deployment, settings.scheduler_heartbeat_seconds))
        self.started.set()
        logger.info("scheduler firing in %s: %s", self.holder, changes)

    def stop(self) -> None:
        """Stop firing (jobs stay stored for whoever holds the lease next)."""
        if self.scheduler is None:
            return
        # Shutting down is deferred to the next loop turn; a wake-up already queued
        # would still take due jobs from the shared store and then lose them. Pausing
        # takes effect at once.
        self.scheduler.pause()
        self.scheduler.shutdown(wait=False)
        self.scheduler = None
        self.started.clear()
        runtime.install(None)
        logger.info("scheduler stopped in %s", self.holder)

    def sync(self, specs: list[JobSpec]) -> dict[str, int]:
        """Add, replace or remove stored jobs so they match ``specs``; unchanged jobs
        keep their pending run, which is how a run missed during downtime still happens."""
        assert self.scheduler is not None
        stored = {job.id: job for job in self.scheduler.get_jobs()}
        wanted = {spec.id for spec in specs}
        changes = {"added": 0, "replaced": 0, "kept": 0, "removed": 0}

        for spec in specs:
            job = stored.get(spec.id)
            if job is not None and _same(job, spec):
                changes["kept"] += 1
                continue
            self._add(spec)
            changes["replaced" if job is not None else "added"] += 1

        for job_id in stored.keys() - wanted:
            if job_id.startswith(PREFIXES):
                self.scheduler.remove_job(job_id)
                changes["removed"] += 1
        return changes

    def _add(self, spec: JobSpec) -> None:
        assert self.scheduler is not None
        self.scheduler.add_job(
            spec.func,
            trigger=spec.trigger,
            args=list(spec.args),
            id=spec.id,
            name=spec.id,
            misfire_grace_time=spec.grace_seconds,
            replace_existing=True,
        )


def _same(job: Any, spec: JobSpec) -> bool:
    return (
        job.func_ref == spec.func
        and tuple(job.args) == spec.args
        and type(job.trigger) is type(spec.trigger)
        and str(job.trigger) == str(spec.trigger)
        and job.misfire_grace_time == spec.grace_seconds
    )


async def run_now(services: Services, job_id: str, at: datetime | None = None) -> tuple[str, str]:
    """Do the work of a stored job's next fire now (or of its fire at ``at``).

    Returns:
        The fire's outcome (done, skipped, failed, or "already run") and its detail.

    The fire is claimed in ``job_run`` like a scheduled one, so when its time comes the
    scheduler finds it done and does not build or broadcast a second time.

    Raises:
        HelpdeskError: no such job, or it cannot be loaded.
    """
    with reading_job_store(services.settings) as store:
        try:
            job = store.lookup_job(job_id)
        except Exception as error:
            raise HelpdeskError(f"job {job_id} cannot be loaded: {error}") from error
    if job is None:
        raise HelpdeskError(f"no scheduled job {job_id}; see `helpdesk scheduler jobs`")

    fire_time = at or job.next_run_time
    if fire_time is None:
        raise HelpdeskError(f"job {job_id} has no next run; give the fire time with --at")
    installed = runtime.installed()
    if installed is None:
        runtime.install(runtime.Runtime(services, process_name()))
    try:
        with runtime.firing(job_id, fire_time):
            result: str = await job.func(*job.args)
    finally:
        if installed is None:
            runtime.install(None)
    if result == "already run":
        return result, result
    async with services.db.session() as session:
        run = await session.get(JobRun, (job_id, fire_time))
    return (run.outcome or "done", run.detail or "") if run else ("done", result)
