"""Commands about radio stations: their access tokens, feeds and download log."""

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import feeds
from core.cli.common import run
from core.config import Settings, get_settings
from core.errors import HelpdeskError
from core.models import Station, StationDownload
from core.services import Services

station_app = typer.Typer(help="Radio stations: tokens, feeds, downloads.", no_args_is_help=True)


class StationError(HelpdeskError):
    """A station command cannot do what was asked."""


@dataclass
class _Latest:
    """The newest approved bulletin of a station and, per language, when it was fetched."""

    bulletin_id: int
    air_date: str
    fetched: dict[str, datetime | None]


@station_app.command("list")
def list_stations() -> None:
    """List stations: code, name, languages, weekly slots, token, last download."""

    async def work(services: Services) -> list[tuple[Station, StationDownload | None]]:
        async with services.db.session() as session:
            stations = (await session.scalars(select(Station).order_by(Station.code))).all()
            return [(station, await _last_download(session, station.id)) for station in stations]

    rows = run(work)
    if not rows:
        typer.echo("no stations: add them to content/stations.yaml, then helpdesk content load")
        return
    typer.echo(
        f"{'code':<20} {'name':<28} {'langs':<6} {'weekly slots':<28} {'token':<9} last download"
    )
    for station, last in rows:
        slots = _slots(station) or "no slots"
        token = "token set" if station.token_hash else "no token"
        seen = f"{_when(last.requested_at)} ({last.status_code})" if last else "never"
        typer.echo(
            f"{station.code:<20} {station.name:<28} {','.join(station.languages):<6} "
            f"{slots:<28} {token:<9} {seen}"
        )


def _slots(station: Station) -> str:
    # The station's row keeps its stations.yaml entry as it was last loaded.
    airtime = station.settings.get("airtime") or []
    return ", ".join(f"{slot['day'][:3]} {slot['time']}" for slot in airtime)


async def _last_download(session: AsyncSession, station_id: int) -> StationDownload | None:
    return await session.scalar(
        select(StationDownload)
        .where(StationDownload.station_id == station_id)
        .order_by(StationDownload.requested_at.desc(), StationDownload.id.desc())
        .limit(1)
    )


@station_app.command("token")
def token(code: str) -> None:
    """Give a station a new access token (the old one stops working) and print its URLs.

    The token is printed once and only its hash is kept: note it now.
    """
    # Imported here: core.stations brings in FastAPI, which the other commands never need.
    from core.stations import token_hash

    fresh = secrets.token_urlsafe(24)

    async def work(services: Services) -> Station:
        async with services.db.session() as session:
            station = await _station(session, code)
            station.token_hash = token_hash(fresh)
            return station

    station = run(work)
    typer.echo(f"token for {station.code}: {fresh}")
    typer.echo("(shown once; run this command again to replace it)")
    for label, url in _urls(get_settings(), station, fresh):
        typer.echo(f"{label:<14} {url}")


def _urls(settings: Settings, station: Station, fresh: str) -> list[tuple[str, str]]:
    base = f"{settings.public_url.rstrip('/')}/stations/{station.code}"
    query = f"?token={fresh}"
    urls = [("feed (all)", f"{base}/feed.xml{query}")]
    for language in station.languages:
        urls.append((f"feed ({language})", f"{base}/{language}/feed.xml{query}"))
        urls.append((f"latest ({language})", f"{base}/{language}/latest.mp3{query}"))
    urls.append(("aired (POST)", f"{base}/bulletins/ID/aired{query}"))
    return urls


@station_app.command("downloads")
def downloads(
    code: str,
    limit: Annotated[int, typer.Option(min=1, help="How many requests to show")] = 20,
) -> None:
    """The station's download log, newest first, and whether it has the latest bulletin."""

    async def work(services: Services) -> tuple[list[StationDownload], _Latest | None]:
        async with services.db.session() as session:
            station = await _station(session, code)
            rows = await session.scalars(
                select(StationDownload)
                .where(StationDownload.station_id == station.id)
                .order_by(StationDownload.requested_at.desc(), StationDownload.id.desc())
                .limit(limit)
            )
            latest = await _latest(session, services, station)
            return list(rows), latest

    rows, latest = run(work)
    _print_log(rows)
    _print_latest(code, latest)


async def _latest(session: AsyncSession, services: Services, station: Station) -> _Latest | None:
    from core.stations import fetched_in_full  # brings in FastAPI, as in token()

    media_dir = services.settings.resolved_media_dir
    newest = await feeds.episodes(session, station.id, media_dir, limit=1)
    if not newest:
        return None
    bulletin_id = newest[0].bulletin_id
    items = await feeds.episodes(
        session, station.id, media_dir, air_date=newest[0].air_date, limit=len(station.languages)
    )
    fetched = {item.language: await fetched_in_full(session, item) for item in items}
    return _Latest(bulletin_id, newest[0].air_date.isoformat(), fetched)


def _print_log(rows: list[StationDownload]) -> None:
    if not rows:
        typer.echo("no downloads yet")
        return
    typer.echo(
        f"{'when (UTC)':<19} {'method':<6} {'status':<6} {'bulletin':>8} {'lang':<4} "
        f"{'range':<16} {'bytes':>9}  client, user agent"
    )
    for row in rows:
        bulletin = str(row.bulletin_id) if row.bulletin_id is not None else "-"
        typer.echo(
            f"{_when(row.requested_at):<19} {row.method:<6} {row.status_code:<6} "
            f"{bulletin:>8} {row.language:<4} {row.byte_range or '-':<16} {row.bytes_sent:>9}  "
            f"{row.client or '?'}, {row.user_agent or '?'}"
        )


def _print_latest(code: str, latest: _Latest | None) -> None:
    if latest is None:
        typer.echo(f"\n{code} has no approved bulletin yet")
        return
    typer.echo(f"\nlatest approved bulletin {latest.bulletin_id} ({latest.air_date}):")
    for language, when in sorted(latest.fetched.items()):
        state = f"fetched in full at {_when(when)}" if when else "not yet fetched in full"
        typer.echo(f"  {language}: {state}")


async def _station(session: AsyncSession, code: str) -> Station:
    station = await session.scalar(select(Station).where(Station.code == code))
    if station is None:
        known = ", ".join((await session.scalars(select(Station.code))).all()) or "none"
        raise StationError(f"no station '{code}' (known: {known}; run helpdesk content load)")
    return station


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")
