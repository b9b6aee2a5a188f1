"""APScheduler's job store in the project's database, made safe for a living schedule.

APScheduler 3 keeps jobs as pickles whose function is stored by its import path. Ours
store only that path and plain arguments (station codes, survey ids), never objects. If
a stored job cannot be loaded (its function was renamed, say), the stock store deletes
it and logs one line; a programme would silently lose a station's schedule. This store
logs it as an error naming the job, sets the job aside (no next run, so the scheduler
does not spin on it) and leaves it in place for ``helpdesk scheduler jobs`` to show.
The next start re-creates every job from the deployment, which repairs the rename.

On PostgreSQL the job table is in the project's database. On SQLite it is in a file of
its own beside it (``helpdesk-scheduler.db`` next to ``helpdesk.db``): APScheduler 3
writes synchronously on the event loop, and a blocking write waiting for the lock of
the file that an async transaction of the same loop holds can never get it; the loop
stalls until the busy timeout ("database is locked"). A file of its own has no other
writer in the process.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import and_, create_engine, event, select
from sqlalchemy.engine import Engine, make_url

from core.config import Settings
from core.db import sqlite_pragmas

logger = logging.getLogger(__name__)

TABLE = "apscheduler_jobs"


def sync_url(url: str) -> str:
    """The blocking-driver form of a database URL (APScheduler 3 is sync)."""
    parsed = make_url(url)
    drivers = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg2"}
    parsed = parsed.set(drivername=drivers.get(parsed.get_backend_name(), parsed.drivername))
    return parsed.render_as_string(hide_password=False)


def job_store_url(database_url: str) -> str:
    """Where the jobs are kept for the project's database (see module doc), sync form."""
    parsed = make_url(sync_url(database_url))
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return parsed.render_as_string(hide_password=False)
    path = Path(parsed.database or "")
    own_file = path.with_name(f"{path.stem}-scheduler{path.suffix or '.db'}")
    return parsed.set(database=str(own_file)).render_as_string(hide_password=False)


def sync_engine(database_url: str, busy_timeout_ms: int) -> Engine:
    """A blocking engine on the job store of ``database_url``, with the SQLite settings
    of ``core.db``."""
    engine = create_engine(job_store_url(database_url), pool_pre_ping=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            sqlite_pragmas(dbapi_connection, busy_timeout_ms)

    return engine


def job_store(settings: Settings) -> "KeepingJobStore":
    """The job store of the configured database, on a blocking engine of its own."""
    engine = sync_engine(settings.resolved_database_url, settings.sqlite_busy_timeout_ms)
    return KeepingJobStore(engine)


@contextmanager
def reading_job_store(settings: Settings) -> Iterator["KeepingJobStore"]:
    """The job store for a command, outside any running scheduler; closed after."""
    store = job_store(settings)
    store.jobs_t.create(store.engine, checkfirst=True)
    try:
        yield store
    finally:
        store.engine.dispose()


class KeepingJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """A SQLAlchemy job store that never deletes a job it cannot load (see module doc)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine=engine, tablename=TABLE)
        self.broken: dict[str, str] = {}

    def _get_jobs(self, *conditions: Any) -> list[Any]:
        query = select(self.jobs_t.c.id, self.jobs_t.c.job_state).order_by(
            self.jobs_t.c.next_run_time
        )
        if conditions:
            query = query.where(and_(*conditions))

        jobs = []
        with self.engine.begin() as connection:
            for row in connection.execute(query):
                try:
                    jobs.append(self._reconstitute_job(row.job_state))
                except Exception as error:
                    self._set_aside(connection, row.id, error)
        return jobs

    def _set_aside(self, connection: Any, job_id: str, error: Exception) -> None:
        reason = f"{type(error).__name__}: {error}"
        if job_id not in self.broken:
            logger.error(
                "scheduled job %s cannot be loaded (%s); kept in the store without a next "
                "run. It is re-created at the next start if the deployment still has it.",
                job_id,
                reason,
            )
        self.broken[job_id] = reason
        connection.execute(
            self.jobs_t.update().where(self.jobs_t.c.id == job_id).values(next_run_time=None)
        )
