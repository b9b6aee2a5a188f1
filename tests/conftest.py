"""Shared fixtures: real databases (a SQLite file and a PostgreSQL database created for
this run), the sample deployment loaded into them, and the engine on top.

PostgreSQL is expected at ``HELPDESK_TEST_PG`` (default: the local server with trust
authentication). When it cannot be reached the PostgreSQL cases are skipped on a
developer's machine and fail in CI (``CI`` set), where they must run.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from alembic import command
from sqlalchemy import text

from core.cli import alembic_config
from core.config import PROJECT_ROOT, Settings
from core.db import Database
from core.models import Base
from core.services import Services

PG_SERVER = os.environ.get("HELPDESK_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def settings_for(url: str, data_dir: Path, **overrides: object) -> Settings:
    """Settings for a test: its own data folder and database, the sample content."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": url,
        "content_dir": PROJECT_ROOT / "content",
        "locales_dir": PROJECT_ROOT / "locales",
        **overrides,
    }
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def migrate(url: str, revision: str = "head", *, down: bool = False) -> None:
    """Run Alembic on ``url`` as ``helpdesk db upgrade`` does."""
    config = alembic_config(settings_for(url, Path("/nonexistent")))
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database created for this test run, migrated, dropped at the end."""
    name = f"helpdesk_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI and unreachable: {error}")
        pytest.skip(f"PostgreSQL not reachable at {PG_SERVER}: {error}")
    url = f"{PG_SERVER.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    migrate(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind: a new SQLite file, or the run's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}"
        migrate(url)
        return url
    url: str = request.getfixturevalue("pg_url")
    asyncio.run(_truncate(url))
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite file, for tests about behaviour rather than storage."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}"
    migrate(url)
    return url


async def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    async with db.session() as session:
        await session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # APScheduler's own table, created by the scheduler rather than by Alembic.
        await session.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    await db.dispose()


@pytest.fixture
async def services(db_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """Services on each database kind, with the sample deployment loaded."""
    built = Services.build(settings_for(db_url, tmp_path))
    await built.sync_content()
    yield built
    await built.close()


@pytest.fixture
async def sqlite_services(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """Services on a SQLite file, with the sample deployment loaded."""
    built = Services.build(settings_for(sqlite_url, tmp_path))
    await built.sync_content()
    yield built
    await built.close()
