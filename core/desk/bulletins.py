"""Bulletins in the desk: pick what goes in, read and edit the script per language,
render it in the background, listen to it, approve it.

Editors change bulletins; viewers read them and listen (a script holds editors'
summaries only, never a CFA's words or name). A sensitive report's summary is for
editors alone, as on its report page: viewers see a placeholder for its item, and get no
audio of a bulletin that reads one out, since the audio speaks it.

Every change is a form with the session's CSRF token, checked by
:func:`core.desk.auth.require_user`; a form filled in wrongly shows the page again with
what was wrong. What happened to a bulletin (composed, with what was left out; rendered
or why not; approved) is kept in the audit trail, so the page still says it after a
restart.

Rendering takes seconds to minutes, so it runs as a task of the web process; the page
shows "rendering…" and reloads itself until the task is done. Approval calls
:func:`core.bulletins.approve` and then tells the CFAs of each resolved issue in the
bulletin when it airs (:func:`core.issues.tell_airing`), in one transaction.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import audit, bulletins, issues, rendering
from core.bulletins import BulletinError
from core.desk.auth import Editor, Forbidden, Viewer, has_role
from core.desk.params import MAX_ID, RowId
from core.desk.templating import render
from core.errors import HelpdeskError
from core.models import AuditEntry, Bulletin, BulletinFile, BulletinItem, Report, StaffUser
from core.services import Services

logger = logging.getLogger(__name__)

# Pages, not an API: kept out of the OpenAPI document, which describes /api/v1.
router = APIRouter(prefix="/desk/bulletins", include_in_schema=False)

AUDIO_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "ogg": "audio/ogg", "wav": "audio/wav"}
# How often the page reloads itself while a render runs.
REFRESH_SECONDS = 3


class FormError(HelpdeskError):
    """A bulletin form was filled in wrongly (not a number, not a date, left empty)."""


@dataclass
class RenderJob:
    """A render running in this process, and when it started."""

    task: asyncio.Task[None]
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def renders(request: Request) -> dict[int, RenderJob]:
    """The renders this app is running, by bulletin id."""
    state = request.app.state
    if not hasattr(state, "bulletin_renders"):
        state.bulletin_renders = {}
    jobs: dict[int, RenderJob] = state.bulletin_renders
    return jobs


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# Reading ------------------------------------------------------------------------------


@router.get("")
async def listing(request: Request, user: Viewer) -> Response:
    """Bulletins, newest air date first, and (for editors) where to start the next one."""
    services = _services(request)
    async with services.db.session() as session:
        rows = await bulletins.listing(session)
    stations = [
        (code, station.name, bulletins.next_air_date(station))
        for code, station in sorted(services.deployment.stations.items())
    ]
    return render(request, "bulletins/list.html", {"rows": rows, "stations": stations})


@router.get("/new")
async def new_form(request: Request, user: Editor, station: str) -> Response:
    """Pick the validated reports and resolved issues of a station's next bulletin."""
    services = _services(request)
    config = services.deployment.stations.get(station)
    if config is None:
        raise HTTPException(404, f"no station {station}")
    async with services.db.session() as session:
        found = await bulletins.candidates(session, station)
    context = {
        "station": config,
        "air_date": bulletins.next_air_date(config),
        "candidates": found,
    }
    return render(request, "bulletins/new.html", context)


@router.get("/{bulletin_id}")
async def page(request: Request, user: Viewer, bulletin_id: RowId) -> Response:
    """A bulletin: its script per language, its audio, what can be done with it."""
    return await _page(request, bulletin_id)


async def _page(
    request: Request, bulletin_id: int, *, error: str | None = None, status: int = 200
) -> Response:
    services = _services(request)
    async with services.db.session() as session:
        try:
            bulletin = await bulletins.get_bulletin(session, bulletin_id)
        except BulletinError as missing:
            raise HTTPException(404, str(missing)) from missing
        context = await _page_context(request, session, bulletin)
    return render(request, "bulletins/bulletin.html", {**context, "error": error}, status=status)


async def _page_context(
    request: Request, session: AsyncSession, bulletin: Bulletin
) -> dict[str, Any]:
    station = bulletin.station
    files = list(
        await session.scalars(
            select(BulletinFile)
            .where(BulletinFile.bulletin_id == bulletin.id)
            .order_by(BulletinFile.language, BulletinFile.format)
        )
    )
    history = await audit.history(session, "bulletin", bulletin.id)
    editable = bulletin.status in ("draft", "rendered")
    job = renders(request).get(bulletin.id)
    user: StaffUser | None = getattr(request.state, "user", None)
    is_editor = user is not None and has_role(user, "editor")
    may_pick = editable and is_editor
    found = await bulletins.candidates(session, station.code) if may_pick else None
    withheld = set() if is_editor else await _sensitive_items(session, bulletin.items)
    return {
        "bulletin": bulletin,
        "station": station,
        "scripts": [(lang, bulletins.script(bulletin, lang)) for lang in station.languages],
        "files": files,
        "history": history,
        "last_render": _last_render(history),
        "rendering": job.seconds if job and not job.task.done() else None,
        "refresh": REFRESH_SECONDS,
        "editable": editable,
        "candidates": found,
        "withheld": withheld,
    }


async def _sensitive_items(session: AsyncSession, items: Iterable[BulletinItem]) -> set[int]:
    """The ids of the items that read out a sensitive report's summary.

    Asked of the report each time rather than kept on the item: an editor may flag a
    report sensitive after it went into a bulletin.
    """
    of_reports = [item for item in items if item.report_id is not None]
    if not of_reports:
        return set()
    sensitive = set(
        await session.scalars(
            select(Report.id).where(
                Report.id.in_({item.report_id for item in of_reports}),
                Report.sensitive.is_(True),
            )
        )
    )
    return {item.id for item in of_reports if item.report_id in sensitive}


def _last_render(history: list[AuditEntry]) -> AuditEntry | None:
    """The latest render outcome, unless the script changed after it."""
    for entry in reversed(history):
        if entry.action in ("rendered", "render_failed"):
            return entry
        if entry.action in ("edited", "composed", "included"):
            return None
    return None


@router.get("/{bulletin_id}/render-status")
async def render_status(request: Request, user: Viewer, bulletin_id: RowId) -> JSONResponse:
    """Whether a render runs, and the bulletin's status (for scripts and tests)."""
    services = _services(request)
    async with services.db.session() as session:
        bulletin = await session.get(Bulletin, bulletin_id)
        if bulletin is None:
            raise HTTPException(404, f"no bulletin {bulletin_id}")
        history = await audit.history(session, "bulletin", bulletin_id)
    job = renders(request).get(bulletin_id)
    last = _last_render(history)
    return JSONResponse(
        {
            "bulletin": bulletin_id,
            "status": bulletin.status,
            "rendering": bool(job and not job.task.done()),
            "seconds": round(job.seconds, 1) if job else None,
            "error": last.detail.get("error") if last and last.action == "render_failed" else None,
        }
    )


@router.get("/{bulletin_id}/audio/{file_id}")
async def audio(request: Request, user: Viewer, bulletin_id: RowId, file_id: RowId) -> Response:
    """One rendered file of the bulletin, for the page's player.

    Files are found by their record, never by a path from the request, and a recorded
    path that would lead outside the media folder is refused.
    """
    services = _services(request)
    async with services.db.session() as session:
        file = await session.scalar(
            select(BulletinFile).where(
                BulletinFile.id == file_id, BulletinFile.bulletin_id == bulletin_id
            )
        )
        if file is None:
            raise HTTPException(404, f"bulletin {bulletin_id} has no file {file_id}")
        await _refuse_sensitive_audio(session, user, bulletin_id)

    media = services.settings.resolved_media_dir.resolve()
    path = (media / file.path).resolve()
    if not path.is_relative_to(media) or not path.is_file():
        logger.warning(
            "bulletin %s file %s refused: %s is missing or outside the media folder",
            bulletin_id,
            file_id,
            file.path,
        )
        raise HTTPException(404, f"the audio of bulletin {bulletin_id} is not on disk")
    return FileResponse(path, media_type=AUDIO_TYPES.get(file.format, "application/octet-stream"))


async def _refuse_sensitive_audio(
    session: AsyncSession, user: StaffUser, bulletin_id: int
) -> None:
    """Raise Forbidden when a viewer asks for audio that reads out a sensitive report.

    The page hides the player from them already; this is for a link copied by hand.
    """
    if has_role(user, "editor"):
        return
    items = await session.scalars(
        select(BulletinItem).where(BulletinItem.bulletin_id == bulletin_id)
    )
    if await _sensitive_items(session, items):
        logger.warning(
            "bulletin %s audio refused to viewer %s: it reads out a sensitive report",
            bulletin_id,
            user.username,
        )
        raise Forbidden(user, "editor")


# Composing ----------------------------------------------------------------------------


@router.post("/new")
async def create(
    request: Request,
    user: Editor,
    station: Annotated[str, Form()] = "",
    air_date: Annotated[str, Form()] = "",
    report: Annotated[list[str] | None, Form()] = None,
    issue: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Compose a station's bulletin of the picked reports and issues."""
    services = _services(request)
    config = services.deployment.stations.get(station)
    if config is None:
        raise HTTPException(404, f"no station {station}")
    try:
        day = _air_date(air_date)
        report_ids, issue_ids = _ids(report, "a report"), _ids(issue, "an issue")
    except FormError as mistake:
        logger.info("bulletin for %s by %s refused: %s", station, user.username, mistake)
        return await _new_form_again(request, station, air_date, str(mistake), 400)

    async with services.db.session() as session:
        try:
            composed = await bulletins.compose(
                session,
                services.deployment,
                station,
                bulletins.air_time(config, day),
                only=(),
            )
            bulletin_id = composed.bulletin.id
            left_out = await bulletins.include(
                session,
                services.deployment,
                bulletin_id,
                report_ids=report_ids,
                issue_ids=issue_ids,
            )
        except BulletinError as refused:
            await session.rollback()
            return await _new_form_again(request, station, day, str(refused), 409)
        await _record(
            session,
            user,
            "composed",
            bulletin_id,
            {"reports": len(report_ids), "issues": len(issue_ids)},
            composed.warnings + left_out,
        )
    logger.info("bulletin %s composed in the desk by %s", bulletin_id, user.username)
    return _back(bulletin_id)


async def _new_form_again(
    request: Request, station: str, air_date: date | str, error: str, status: int
) -> Response:
    """The picking form with what was wrong; a date that did not parse shows the next slot."""
    services = _services(request)
    config = services.deployment.stations[station]
    shown = air_date if isinstance(air_date, date) else bulletins.next_air_date(config)
    async with services.db.session() as session:
        found = await bulletins.candidates(session, station)
    context = {"station": config, "air_date": shown, "candidates": found, "error": error}
    return render(request, "bulletins/new.html", context, status)


def _air_date(value: str) -> date:
    """The form's air date. Raises FormError when it is not YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise FormError(f"the air date is a date like 2026-12-11, not '{value}'") from None


def _ids(values: list[str] | None, what: str) -> list[int]:
    """The ticked ids of a form; raises FormError naming a value that is not one.

    Browsers send only the ticked boxes' values, so a wrong value comes from a hand-made
    request or an old page; it is refused whole rather than guessed at.
    """
    ids = []
    for value in values or []:
        value = value.strip()
        if not value.isdecimal() or not 0 < int(value) <= MAX_ID:
            raise FormError(f"'{value}' is not the number of {what}; reload the page")
        ids.append(int(value))
    return ids


@router.post("/{bulletin_id}/include")
async def include(
    request: Request,
    user: Editor,
    bulletin_id: RowId,
    report: Annotated[list[str] | None, Form()] = None,
    issue: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """Add more validated reports or resolved issues to every language of the script."""
    services = _services(request)
    try:
        report_ids, issue_ids = _ids(report, "a report"), _ids(issue, "an issue")
    except FormError as mistake:
        return await _refused(request, user, bulletin_id, "include", mistake)
    if not report_ids and not issue_ids:
        nothing = FormError("tick at least one report or issue to add")
        return await _refused(request, user, bulletin_id, "include", nothing)

    async def change(session: AsyncSession) -> list[str]:
        return await bulletins.include(
            session, services.deployment, bulletin_id, report_ids=report_ids, issue_ids=issue_ids
        )

    detail = {"reports": len(report_ids), "issues": len(issue_ids)}
    return await _change(request, user, bulletin_id, "included", detail, change)


# Editing ------------------------------------------------------------------------------


@router.post("/{bulletin_id}/items/{language}/{number}/edit")
async def edit(
    request: Request,
    user: Editor,
    bulletin_id: RowId,
    language: str,
    number: int,
    # Optional so that a cleared textarea reaches edit_item, which says what to do
    # instead; required, FastAPI answered it with a JSON 422.
    text: Annotated[str, Form()] = "",
) -> Response:
    """Replace the text of one item."""

    async def change(session: AsyncSession) -> list[str]:
        await bulletins.edit_item(session, bulletin_id, language, number, text)
        return []

    detail = {"item": number, "language": language, "how": "text"}
    return await _change(request, user, bulletin_id, "edited", detail, change)


@router.post("/{bulletin_id}/items/{language}/{number}/drop")
async def drop(
    request: Request, user: Editor, bulletin_id: RowId, language: str, number: int
) -> Response:
    """Remove one item from a language's script."""

    async def change(session: AsyncSession) -> list[str]:
        await bulletins.drop_item(session, bulletin_id, language, number)
        return []

    detail = {"item": number, "language": language, "how": "dropped"}
    return await _change(request, user, bulletin_id, "edited", detail, change)


@router.post("/{bulletin_id}/items/{language}/{number}/move")
async def move(
    request: Request,
    user: Editor,
    bulletin_id: RowId,
    language: str,
    number: int,
    to: Annotated[int, Form()],
) -> Response:
    """Move one item to another place in its script."""

    async def change(session: AsyncSession) -> list[str]:
        await bulletins.move_item(session, bulletin_id, language, number, to)
        return []

    detail = {"item": number, "language": language, "how": f"moved to {to}"}
    return await _change(request, user, bulletin_id, "edited", detail, change)


@router.post("/{bulletin_id}/announcement")
async def announce(
    request: Request,
    user: Editor,
    bulletin_id: RowId,
    language: Annotated[str, Form()] = "",
    text: Annotated[str, Form()] = "",
) -> Response:
    """Add an announcement before the outro of one language's script."""
    services = _services(request)
    if not text.strip():
        empty = FormError("an announcement needs some text")
        return await _refused(request, user, bulletin_id, "announcement", empty)

    async def change(session: AsyncSession) -> list[str]:
        await bulletins.add_announcement(session, services.deployment, bulletin_id, language, text)
        return []

    detail = {"language": language, "how": "announcement"}
    return await _change(request, user, bulletin_id, "edited", detail, change)


async def _change(
    request: Request,
    user: StaffUser,
    bulletin_id: int,
    action: str,
    detail: dict[str, Any],
    change: Callable[[AsyncSession], Awaitable[list[str]]],
) -> Response:
    """Apply one edit in its own transaction; a refusal shows the page with the reason."""
    if _is_rendering(request, bulletin_id):
        return await _page(request, bulletin_id, error=_BUSY, status=409)
    services = _services(request)
    try:
        async with services.db.session() as session:
            left_out = await change(session)
            await _record(session, user, action, bulletin_id, detail, left_out)
    except BulletinError as refused:
        logger.info(
            "bulletin %s: %s by %s refused: %s", bulletin_id, action, user.username, refused
        )
        return await _page(request, bulletin_id, error=str(refused), status=409)
    return _back(bulletin_id)


_BUSY = "The bulletin is rendering; wait for it to finish before changing it."


async def _refused(
    request: Request, user: StaffUser, bulletin_id: int, action: str, mistake: FormError
) -> Response:
    """The bulletin's page again, saying what was wrong with the form."""
    logger.info("bulletin %s: %s by %s refused: %s", bulletin_id, action, user.username, mistake)
    return await _page(request, bulletin_id, error=str(mistake), status=400)


def _is_rendering(request: Request, bulletin_id: int) -> bool:
    job = renders(request).get(bulletin_id)
    return job is not None and not job.task.done()


async def _record(
    session: AsyncSession,
    user: StaffUser,
    action: str,
    bulletin_id: int,
    detail: dict[str, Any],
    warnings: list[str] | None = None,
) -> None:
    if warnings:
        detail = {**detail, "warnings": warnings}
    await audit.record(
        session,
        action=action,
        object_type="bulletin",
        object_id=bulletin_id,
        staff_user_id=user.id,
        detail=detail,
    )


def _back(bulletin_id: int) -> RedirectResponse:
    return RedirectResponse(f"/desk/bulletins/{bulletin_id}", status_code=303)


# Rendering and approval ---------------------------------------------------------------


@router.post("/{bulletin_id}/render")
async def start_render(request: Request, user: Editor, bulletin_id: RowId) -> Response:
    """Start rendering every language in the background; the page shows its progress."""
    if _is_rendering(request, bulletin_id):
        return _back(bulletin_id)
    services = _services(request)
    async with services.db.session() as session:
        try:
            await bulletins.editable(session, bulletin_id)
        except BulletinError as refused:
            await session.rollback()
            return await _page(request, bulletin_id, error=str(refused), status=409)
        await _record(session, user, "render_started", bulletin_id, {})

    jobs = renders(request)
    task = asyncio.create_task(_render(services, bulletin_id, user))
    # The registry holds the task while it runs (asyncio keeps only a weak reference);
    # once done, its outcome is in the audit trail and the entry can go.
    jobs[bulletin_id] = RenderJob(task)
    task.add_done_callback(lambda _: jobs.pop(bulletin_id, None))
    logger.info("bulletin %s: render started by %s", bulletin_id, user.username)
    return _back(bulletin_id)


async def _render(services: Services, bulletin_id: int, user: StaffUser) -> None:
    """Render and record the outcome; any failure is kept for the page, never raised."""
    started = time.monotonic()
    try:
        rendered = await rendering.render(
            services.db, services.deployment, services.settings, bulletin_id
        )
    except HelpdeskError as error:
        outcome, detail = "render_failed", {"error": str(error)}
        logger.warning("bulletin %s render failed: %s", bulletin_id, error)
    except Exception as error:
        # The top of a background task: nobody else would see this, so log it whole.
        outcome, detail = "render_failed", {"error": f"unexpected error: {error}"}
        logger.exception("bulletin %s render crashed", bulletin_id)
    else:
        outcome = "rendered"
        detail = {"languages": ", ".join(lang.language for lang in rendered)}
    seconds = round(time.monotonic() - started, 1)

    async with services.db.session() as session:
        await _record(session, user, outcome, bulletin_id, {**detail, "seconds": seconds})
    logger.info("bulletin %s: %s in %.1f s", bulletin_id, outcome, seconds)


@router.post("/{bulletin_id}/approve")
async def approve(request: Request, user: Editor, bulletin_id: RowId) -> Response:
    """Approve a rendered bulletin, and tell the CFAs of its resolved issues when it airs."""
    services = _services(request)
    try:
        async with services.db.session() as session:
            await bulletins.approve(
                session, bulletin_id, media_dir=services.settings.resolved_media_dir
            )
            told = await issues.tell_airing(session, bulletin_id)
            await _record(session, user, "approved", bulletin_id, {"cfas_told": told})
    except BulletinError as refused:
        return await _page(request, bulletin_id, error=str(refused), status=409)
    logger.info("bulletin %s approved by %s; %d cfas told", bulletin_id, user.username, told)
    return _back(bulletin_id)
