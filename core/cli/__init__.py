"""The ``helpdesk`` command: database, content, CFAs, reports, bulletins, the terminal
chat and the service itself. Each group lives in its own module.
"""

import logging
from typing import Annotated

import typer

from core.cli import (
    api_tokens,
    broadcasts,
    bulletins,
    groups,
    intake,
    schedule,
    setup,
    staff,
    stations,
)
from core.cli.common import alembic_config

__all__ = ["alembic_config", "app"]

app = typer.Typer(help="Citizen Helpdesk: intake, follow-up and bulletins.", no_args_is_help=True)
app.add_typer(setup.db_app, name="db")
app.add_typer(setup.content_app, name="content")
app.add_typer(intake.cfa_app, name="cfa")
app.add_typer(intake.reports_app, name="reports")
app.add_typer(bulletins.bulletin_app, name="bulletin")
app.add_typer(bulletins.tts_app, name="tts")
app.add_typer(stations.station_app, name="station")
app.add_typer(groups.group_app, name="group")
app.add_typer(schedule.scheduler_app, name="scheduler")
app.add_typer(staff.staff_app, name="staff")
app.add_typer(api_tokens.api_token_app, name="api-token")
broadcasts.register(app)
app.command("chat")(intake.chat)
app.command("serve")(setup.serve)


@app.callback()
def _setup(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show debug logs.")] = False,
) -> None:
    # Commands print their own results; the log shows only problems unless asked.
    level = logging.DEBUG if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
