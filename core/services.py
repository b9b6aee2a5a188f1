"""The long-lived objects a process needs, built once from the settings."""

import logging
from dataclasses import dataclass

from bot.engine import Engine
from core.config import Settings
from core.db import Database
from core.deployment import Deployment, load_deployment, sync_deployment

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Settings, database, deployment and engine of one process."""

    settings: Settings
    db: Database
    deployment: Deployment
    engine: Engine

    @classmethod
    def build(cls, settings: Settings) -> "Services":
        """Load the deployment and connect the database (no I/O on the database yet).

        Raises:
            ContentError: a content file is wrong.
        """
        deployment = load_deployment(settings.content_dir)
        db = Database(
            settings.resolved_database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        return cls(settings, db, deployment, Engine(db, deployment))

    async def sync_content(self) -> dict[str, int]:
        """Store the deployment's communities and survey versions in the database."""
        async with self.db.session() as session:
            return await sync_deployment(session, self.deployment)

    async def close(self) -> None:
        """Release the database connections."""
        await self.db.dispose()
