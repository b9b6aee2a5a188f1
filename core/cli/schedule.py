"""Commands about the scheduler: the stored jobs, what their fires did, running one now."""

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import select

from core.cli.common import fail, run
from core.models import JobRun
from core.services import Services
from scheduler.store import reading_job_store

scheduler_app = typer.Typer(
    help="Scheduled builds, broadcasts and reminders.", no_args_is_help=True
)


@scheduler_app.command("jobs")
def scheduler_jobs() -> None:
    """List the stored jobs with their next run, and any that cannot be loaded."""

    async def work(services: Services) -> tuple[list[Any], dict[str, str]]:
        with reading_job_store(services.settings) as store:
            return store.get_all_jobs(), store.broken

    jobs, broken = run(work)
    if not jobs and not broken:
        typer.echo("no jobs stored yet: they are created when the service starts")
    for job in jobs:
        typer.echo(f"{job.id:<42} {_local(job.next_run_time, job.trigger):<32} {job.trigger}")
    for job_id, reason in broken.items():
        typer.secho(f"{job_id:<42} CANNOT BE LOADED: {reason}", fg=typer.colors.RED)


def _local(moment: datetime | None, trigger: Any) -> str:
    if moment is None:
        return "paused"
    zone = getattr(trigger, "timezone", "UTC")
    return moment.astimezone(ZoneInfo(str(zone))).strftime("%a %Y-%m-%d %H:%M %Z")


@scheduler_app.command("runs")
def scheduler_runs(
    limit: Annotated[int, typer.Option(help="How many, newest first")] = 20,
    job: Annotated[str | None, typer.Option(help="Only this job id")] = None,
) -> None:
    """What the latest fires did: done, skipped (and why), failed (and why)."""

    async def work(services: Services) -> list[JobRun]:
        query = select(JobRun).order_by(JobRun.fire_time.desc()).limit(limit)
        if job:
            query = query.where(JobRun.job_id == job)
        async with services.db.session() as session:
            return list(await session.scalars(query))

    runs = run(work)
    if not runs:
        typer.echo("no job has fired yet")
    for entry in runs:
        outcome = entry.outcome or "running"
        typer.echo(
            f"{entry.fire_time:%Y-%m-%d %H:%M:%S}Z {entry.job_id:<42} {outcome:<8} "
            f"{entry.detail or ''}"
        )


@scheduler_app.command("run")
def scheduler_run(
    job_id: Annotated[str, typer.Argument(help="A job id from `helpdesk scheduler jobs`")],
    at: Annotated[
        datetime | None, typer.Option(help="Do the fire of this UTC time instead of the next")
    ] = None,
) -> None:
    """Do a job's next fire now, e.g. build Friday's bulletin on Thursday.

    The fire is then recorded as done, so the scheduler does not repeat it at its time.
    """
    moment = at.replace(tzinfo=ZoneInfo("UTC")) if at and at.tzinfo is None else at

    # Imported here: the jobs pull in the audio pipeline, which every other command
    # would otherwise wait seconds for.
    from scheduler.service import run_now

    async def work(services: Services) -> tuple[str, str]:
        await services.sync_content()
        return await run_now(services, job_id, moment)

    outcome, detail = run(work)
    if outcome == "already run":
        fail(f"job {job_id}: that fire has already run; see `helpdesk scheduler runs`")
    if outcome in ("failed", "error"):
        fail(f"job {job_id} {outcome}: {detail}")
    typer.echo(f"{outcome}: {detail}")
