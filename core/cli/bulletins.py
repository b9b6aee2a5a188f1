"""Commands of the editorial pipeline: compose a bulletin, edit its script, render it."""

import mimetypes
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.media import save_media
from core import bulletins
from core.cli.common import fail, run
from core.config import get_settings
from core.i18n import language_name
from core.models import Bulletin
from core.services import Services

bulletin_app = typer.Typer(help="Radio bulletins: compose, edit, render.", no_args_is_help=True)

Change = Callable[[AsyncSession, Services], Awaitable[object]]
Language = Annotated[str, typer.Option(help="Which language's script, e.g. ne")]
Number = Annotated[int, typer.Argument(help="The item's number, as `bulletin show` prints it")]


@bulletin_app.command("compose")
def compose(
    station: Annotated[str, typer.Option(help="The station's code, e.g. radio-dhading")],
    air_date: Annotated[str, typer.Option("--date", help="The local air date, YYYY-MM-DD")],
    replace: Annotated[bool, typer.Option(help="Discard an existing draft for that date")] = False,
) -> None:
    """Write a station's bulletin from the validated reports, and print its script."""
    day = _date(air_date)

    async def work(services: Services) -> tuple[Bulletin, list[str]]:
        config = services.deployment.stations.get(station)
        if config is None:
            known = ", ".join(sorted(services.deployment.stations))
            raise bulletins.BulletinError(f"no station '{station}' (known: {known})")
        async with services.db.session() as session:
            composed = await bulletins.compose(
                session,
                services.deployment,
                station,
                bulletins.air_time(config, day),
                replace=replace,
            )
            return composed.bulletin, composed.warnings

    bulletin, warnings = run(work)
    for warning in warnings:
        typer.secho(f"note: {warning}", fg=typer.colors.YELLOW, err=True)
    _print_script(bulletin)


@bulletin_app.command("list")
def list_bulletins(
    station: Annotated[str | None, typer.Option(help="Only this station's bulletins")] = None,
) -> None:
    """List bulletins, newest air date first: id, station, date, status, files."""

    async def work(services: Services) -> list[tuple[Bulletin, int]]:
        async with services.db.session() as session:
            return await bulletins.listing(session, station)

    rows = run(work)
    if not rows:
        typer.echo("no bulletins yet: helpdesk bulletin compose --station ... --date ...")
        return
    typer.echo(f"{'id':>4}  {'station':<20} {'air date':<10}  {'status':<9} files")
    for bulletin, files in rows:
        typer.echo(
            f"{bulletin.id:>4}  {bulletin.station.code:<20} {bulletin.air_date}  "
            f"{bulletin.status:<9} {files}"
        )


@bulletin_app.command("show")
def show(bulletin_id: int) -> None:
    """Print a bulletin's script, numbered per language."""
    _print_script(run(lambda services: _load(services, bulletin_id)))


@bulletin_app.command("edit")
def edit(
    bulletin_id: int,
    number: Number,
    language: Language,
    text: Annotated[str, typer.Option(help="The new text of the item")],
) -> None:
    """Replace the text of one item."""
    _change(bulletin_id, lambda s, _: bulletins.edit_item(s, bulletin_id, language, number, text))


@bulletin_app.command("drop")
def drop(bulletin_id: int, number: Number, language: Language) -> None:
    """Remove one item."""
    _change(bulletin_id, lambda s, _: bulletins.drop_item(s, bulletin_id, language, number))


@bulletin_app.command("move")
def move(
    bulletin_id: int,
    number: Number,
    language: Language,
    to: Annotated[int, typer.Option(help="The item's new number")],
) -> None:
    """Move one item to another place in the script."""
    _change(bulletin_id, lambda s, _: bulletins.move_item(s, bulletin_id, language, number, to))


@bulletin_app.command("add")
def add(
    bulletin_id: int,
    language: Language,
    text: Annotated[str | None, typer.Option(help="An announcement to read")] = None,
    report: Annotated[
        str | None,
        typer.Option(
            help="A validated report's reference, e.g. a sensitive one an editor includes"
        ),
    ] = None,
    at: Annotated[int | None, typer.Option(help="Its number (default: before the outro)")] = None,
) -> None:
    """Add an announcement, or a report by hand, to one language's script."""
    if (text is None) == (report is None):
        raise typer.BadParameter("give exactly one of --text or --report")

    async def change(session: AsyncSession, services: Services) -> object:
        if report is not None:
            return await bulletins.add_report(
                session, services.deployment, bulletin_id, report, language, at
            )
        return await bulletins.add_announcement(
            session, services.deployment, bulletin_id, language, text or "", at
        )

    _change(bulletin_id, change)


def _change(bulletin_id: int, change: Change) -> None:
    async def work(services: Services) -> Bulletin:
        async with services.db.session() as session:
            await change(session, services)
        return await _load(services, bulletin_id)

    _print_script(run(work))


async def _load(services: Services, bulletin_id: int) -> Bulletin:
    async with services.db.session() as session:
        return await bulletins.get_bulletin(session, bulletin_id)


def _print_script(bulletin: Bulletin) -> None:
    station = bulletin.station
    typer.echo(f"bulletin {bulletin.id}  {station.code}  {bulletin.air_date}  {bulletin.status}")
    for language in station.languages:
        typer.echo(f"\n[{language}]")
        for number, item in enumerate(bulletins.script(bulletin, language), start=1):
            typer.echo(f"{number:>3}. ({item.kind}) {item.text}")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not a date like 2026-12-04") from None


@bulletin_app.command("render")
def render(bulletin_id: int) -> None:
    """Render every language of a bulletin and print each file with what was measured."""

    from core import rendering

    async def work(services: Services) -> list[rendering.RenderedLanguage]:
        return await rendering.render(
            services.db, services.deployment, services.settings, bulletin_id
        )

    media = get_settings().resolved_media_dir
    for rendered in run(work):
        engines = ",".join(sorted(set(rendered.engines)))
        for file in rendered.files:
            measured = (
                f"{file.duration_s:7.1f} s {file.lufs:6.1f} LUFS "
                f"{file.true_peak_dbtp:5.1f} dBTP {file.size / 1024:8.0f} KiB"
            )
            typer.echo(
                f"{rendered.language:<3} {file.format:<4} {engines:<14} {measured} "
                f"{media / file.path}"
            )


@bulletin_app.command("record")
def record(
    bulletin_id: int,
    language: Language,
    file: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="A recording of the script: OGG, MP3, WAV..."
        ),
    ],
) -> None:
    """Use a person's reading of the script for one language instead of a voice."""
    settings = get_settings()
    mime = mimetypes.guess_type(file.name)[0] or ""
    if not mime.startswith("audio/") and file.suffix.lower() not in (".ogg", ".oga", ".opus"):
        raise typer.BadParameter(f"{file.name} does not look like an audio file ({mime or '?'})")

    from audio import AudioError, duration_by_decoding

    try:
        seconds = duration_by_decoding(file)
    except AudioError:
        fail(f"{file.name} is not audio that ffmpeg can read")
    if seconds < 1:
        fail(f"{file.name} plays {seconds:.1f} s; a reading of a script is longer")

    async def work(services: Services) -> None:
        stored = save_media(
            settings.resolved_media_dir,
            file.read_bytes(),
            mime or "audio/ogg",
            source_id=file.name,
        )
        async with services.db.session() as session:
            await bulletins.save_recording(
                session,
                bulletin_id,
                language.lower(),
                path=stored.path,
                mime_type=stored.mime_type,
                source="upload",
            )

    run(work)
    typer.echo(
        f"bulletin {bulletin_id}: {language} will be rendered from {file.name} ({seconds:.0f} s)"
    )


tts_app = typer.Typer(help="Text-to-speech on this machine.", no_args_is_help=True)


@tts_app.command("voices")
def voices(
    every: Annotated[bool, typer.Option("--all", help="Every language the engines know")] = False,
) -> None:
    """The deployment's languages (those its stations air and its CFAs speak) and the
    engines that speak each here, in the order tried."""
    from audio import Voices
    from core.deployment import load_deployment

    settings = get_settings()
    available = Voices(settings).available()
    deployment = load_deployment(settings.content_dir)
    wanted = (
        sorted({*deployment.languages, *deployment.templates}) if not every else sorted(available)
    )
    for language in wanted:
        engines = ", ".join(available.get(language, [])) or "none: needs a recording"
        typer.echo(f"{language:<8} {language_name(language):<16} {engines}")


@bulletin_app.command("approve")
def approve(bulletin_id: int) -> None:
    """Clear a rendered bulletin for air: it joins the station's feeds and broadcasts."""

    async def work(services: Services) -> Bulletin:
        async with services.db.session() as session:
            return await bulletins.approve(
                session, bulletin_id, media_dir=services.settings.resolved_media_dir
            )

    bulletin = run(work)
    typer.echo(
        f"bulletin {bulletin.id}  {bulletin.station.code}  {bulletin.air_date}  approved; "
        f"stations can fetch it (helpdesk station token {bulletin.station.code} prints the URLs)"
    )


@bulletin_app.command("aired")
def aired(bulletin_id: int) -> None:
    """Record that the station aired an approved bulletin (confirmed by staff)."""

    async def work(services: Services) -> Bulletin:
        async with services.db.session() as session:
            return await bulletins.mark_aired(session, bulletin_id, via="staff")

    bulletin = run(work)
    when = bulletin.aired_at.strftime("%Y-%m-%d %H:%M UTC") if bulletin.aired_at else "?"
    typer.echo(
        f"bulletin {bulletin.id}  {bulletin.station.code}  {bulletin.air_date}  aired "
        f"{when} (confirmed via {bulletin.aired_via})"
    )
