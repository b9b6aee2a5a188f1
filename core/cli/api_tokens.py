"""Commands about partners' tokens for the read API (``/api/v1``).

The API module is imported inside each command: it brings FastAPI and the figures'
exports, which every other ``helpdesk`` command would otherwise load for nothing.
"""

from datetime import datetime

import typer

from core.cli.common import run
from core.models import ApiToken
from core.services import Services

api_token_app = typer.Typer(help="Partners' tokens for the read API.", no_args_is_help=True)


@api_token_app.command("create")
def create(name: str) -> None:
    """Create a token for the partner NAME and print it: it is shown this once."""
    from core.desk.api import create_token

    async def work(services: Services) -> tuple[int, str]:
        async with services.db.session() as session:
            row, token = await create_token(session, name)
            return row.id, token

    token_id, token = run(work)
    typer.echo(f"token {token_id} for {name}: {token}")
    typer.echo("Only its hash is kept: give it to the partner now. It goes in each request as")
    typer.echo("  Authorization: Bearer <token>")


@api_token_app.command("list")
def list_all() -> None:
    """List tokens: id, name, created, last used, revoked (never the token itself)."""
    from core.desk.api import list_tokens

    async def work(services: Services) -> list[ApiToken]:
        async with services.db.session() as session:
            return await list_tokens(session)

    rows = run(work)
    if not rows:
        typer.echo("no api tokens (helpdesk api-token create NAME)")
        return
    typer.echo(f"{'id':>4}  {'name':<30} {'created':<17} {'last used':<17} revoked")
    for row in rows:
        typer.echo(
            f"{row.id:>4}  {row.name[:30]:<30} {_when(row.created_at):<17} "
            f"{_when(row.last_used_at):<17} {_when(row.revoked_at, 'no')}"
        )


@api_token_app.command("revoke")
def revoke(token_id: int) -> None:
    """Stop token ID from working (its partner gets 403 from now on)."""
    from core.desk.api import revoke_token

    async def work(services: Services) -> str:
        async with services.db.session() as session:
            row = await revoke_token(session, token_id)
            return row.name

    name = run(work)
    typer.echo(f"token {token_id} ({name}) revoked")


def _when(moment: datetime | None, never: str = "never") -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else never
