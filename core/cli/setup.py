"""Commands that set a deployment up and run it: database, content, the service."""

import logging
import re

import typer
from alembic import command as alembic_command

from core.cli.common import alembic_config, fail, run
from core.config import get_settings
from core.errors import HelpdeskError

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
content_app = typer.Typer(
    help="Surveys, stations and templates under content/.", no_args_is_help=True
)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the migrations up to REVISION (default: the newest)."""
    settings = get_settings()
    alembic_command.upgrade(alembic_config(settings), revision)
    typer.echo(f"database at {revision}: {settings.resolved_database_url}")


@db_app.command("downgrade")
def db_downgrade(revision: str = "-1") -> None:
    """Undo migrations down to REVISION (default: one step)."""
    alembic_command.downgrade(alembic_config(get_settings()), revision)
    typer.echo(f"database downgraded to {revision}")


@content_app.command("check")
def content_check() -> None:
    """Validate the deployment file and every survey under content/."""
    from core.deployment import load_deployment

    settings = get_settings()
    try:
        deployment = load_deployment(settings.content_dir)
    except HelpdeskError as error:
        fail(str(error))
    for survey in deployment.surveys.values():
        typer.echo(
            f"ok  surveys/{survey.id}: v{survey.version}, {len(survey.questions)} questions"
        )
    for station in deployment.stations.values():
        typer.echo(
            f"ok  stations/{station.code}: {', '.join(station.languages)}, "
            f"{len(station.airtime)} weekly slots"
        )
    for language in deployment.templates:
        typer.echo(f"ok  bulletins/{language}.yaml")
    typer.echo(
        f"ok  deployment: {len(deployment.config.communities)} communities, "
        f"languages {', '.join(deployment.languages)}"
    )


@content_app.command("load")
def content_load() -> None:
    """Store the communities and the current survey versions in the database."""
    added = run(lambda services: services.sync_content())
    typer.echo(
        f"loaded: {added['communities']} new communities, {added['stations']} new stations, "
        f"{added['survey_versions']} new survey versions"
    )


class RedactTokens(logging.Filter):
    """Masks ``token=`` in logged request paths: stations pass their token in feed URLs,
    and the access log would otherwise keep every station's credential."""

    PATTERN = re.compile(r"([?&]token=)[^&\s]+")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                self.PATTERN.sub(r"\1<redacted>", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def serve() -> None:
    """Run the web app (webhooks, /healthz) and, with a token and no webhook URL, polling."""
    import uvicorn

    from core.web import create_app

    settings = get_settings()
    logging.getLogger().setLevel(settings.log_level.upper())
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    uvicorn.run(
        create_app(settings),
        host=settings.web_host,
        port=settings.web_port,
        log_level=settings.log_level.lower(),
        # X-Forwarded-For is believed only from the proxies named: uvicorn's default
        # trusts any local client, which could then dodge the sign-in throttle.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
