"""Alembic environment: runs migrations on the project's async engine.

The URL comes from ``config.attributes["url"]`` when the CLI calls Alembic, otherwise
from the project's settings. Batch mode is on so that ``ALTER`` steps work on SQLite,
which rebuilds a table to change it.
"""

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection

from core.config import get_settings
from core.db import create_engine
from core.models import Base

config = context.config
if config.config_file_name and not config.attributes.get("quiet"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)


# APScheduler creates and owns its job table; autogenerate must not propose dropping it.
FOREIGN_TABLES = {"apscheduler_jobs"}


def _include(obj: object, name: str | None, type_: str, reflected: bool, _compare: object) -> bool:
    return not (type_ == "table" and reflected and name in FOREIGN_TABLES)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_include,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online(url: str) -> None:
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def main() -> None:
    """Run the migrations Alembic asked for, online against the configured database."""
    url = config.attributes.get("url") or get_settings().resolved_database_url
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_online(url))


main()
