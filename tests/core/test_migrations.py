"""Migrations on both databases: up, down and up again, and no drift from the models."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from core.db import Database
from core.models import Base
from tests.conftest import migrate


async def _tables(url: str) -> set[str]:
    db = Database(url)
    async with db.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await db.dispose()
    return names - {"alembic_version"}


async def _drift(url: str) -> list[object]:
    db = Database(url)

    def compare(sync: object) -> list[object]:
        context = MigrationContext.configure(sync, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with db.engine.connect() as connection:
        diff = await connection.run_sync(compare)
    await db.dispose()
    return diff


def test_upgrade_downgrade_upgrade_again(db_url: str) -> None:
    expected = set(Base.metadata.tables)
    assert asyncio.run(_tables(db_url)) == expected

    migrate(db_url, "base", down=True)
    assert asyncio.run(_tables(db_url)) == set()

    migrate(db_url)
    assert asyncio.run(_tables(db_url)) == expected


def test_migrations_match_the_models(db_url: str) -> None:
    assert asyncio.run(_drift(db_url)) == []
