"""What every ``helpdesk`` command shares: running async work with the services, and
turning this project's errors into a clear line and exit code 1.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from alembic.config import Config as AlembicConfig

from core.config import PROJECT_ROOT, Settings, get_settings
from core.errors import HelpdeskError
from core.services import Services

T = TypeVar("T")


def run(work: Callable[[Services], Awaitable[T]]) -> T:
    """Build the services, run ``work`` on them, close them; errors become clear exits."""

    async def main() -> T:
        services = Services.build(get_settings())
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except HelpdeskError as error:
        fail(str(error))


def fail(message: str) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with status 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


def alembic_config(settings: Settings) -> AlembicConfig:
    """Alembic's configuration for this project, pointed at the configured database."""
    config = AlembicConfig(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = settings.resolved_database_url
    config.attributes["quiet"] = True
    return config
