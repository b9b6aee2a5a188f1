"""What radio stations fetch: podcast feeds and the MP3 of each approved bulletin, and
the confirmation that a bulletin went on air.

Every request carries the station's token (``?token=`` so podcast automation can
subscribe by URL, or ``Authorization: Bearer``); only its SHA-256 is stored, and the
comparison takes the same time whatever the token. Files are found through the database
and must resolve inside the media store, so no URL can reach any other file. Every audio
request, answered or refused, GET or HEAD, is written to the download log.
"""

import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import Message, Receive, Scope, Send

from core import feeds
from core.bulletins import BulletinError, mark_aired
from core.deployment import StationConfig
from core.models import Bulletin, Station, StationDownload
from core.services import Services

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/stations", tags=["stations"])

STATION_CODE = re.compile(r"[a-z0-9-]{1,64}")
LANGUAGE_CODE = re.compile(r"[a-z]{2,3}")
AIR_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# One byte range of RFC 9110 (section 14.1.2): first-last, first- or -suffix, in ASCII
# digits only (\d would let other scripts' digits through).
BYTE_RANGE = re.compile(r"([0-9]+)-([0-9]*)|-[0-9]+")
RSS_TYPE = "application/rss+xml; charset=utf-8"
# Compared against when a station has no token yet, so refusing it takes as long as
# refusing a wrong token.
_NO_TOKEN = hashlib.sha256(b"no token set").hexdigest()


def token_hash(token: str) -> str:
    """What is stored of a station's token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class _Caller:
    """The station a request is for, once its token has been checked."""

    station: Station
    config: StationConfig
    token: str


class _Refused(Exception):
    """A request answered with an error: the response to send, and the station's id
    when the station is known (so the refusal can go into its download log)."""

    def __init__(self, response: Response, station_id: int | None = None) -> None:
        self.response = response
        self.station_id = station_id


# Feeds ------------------------------------------------------------------------------------


@router.get("/{code}/feed.xml")
async def station_feed(code: str, request: Request) -> Response:
    """The podcast feed of every language the station airs."""
    return await _feed(request, code, None)


@router.get("/{code}/{language}/feed.xml")
async def language_feed(code: str, language: str, request: Request) -> Response:
    """The podcast feed of one language."""
    return await _feed(request, code, language)


async def _feed(request: Request, code: str, language: str | None) -> Response:
    services = _services(request)
    try:
        caller = await _caller(request, code)
        if language is not None:
            _check_language(caller, language)
    except _Refused as refused:
        return refused.response

    async with services.db.session() as session:
        items = await feeds.episodes(
            session, caller.station.id, services.settings.resolved_media_dir, language=language
        )
    body = feeds.render_feed(
        caller.config,
        items,
        language=language,
        feed_url=_public(services, request.url.path),
        site_url=services.settings.public_url,
        audio_url=lambda item: _audio_url(services, caller, item),
    )
    logger.debug("station %s: feed %s with %d items", code, language or "(all)", len(items))
    return Response(body, media_type=RSS_TYPE)


def _audio_url(services: Services, caller: _Caller, item: feeds.Episode) -> str:
    path = f"/stations/{caller.config.code}/{item.language}/{item.air_date.isoformat()}.mp3"
    return f"{_public(services, path)}?token={quote(caller.token, safe='')}"


def _public(services: Services, path: str) -> str:
    return services.settings.public_url.rstrip("/") + path


# Audio ------------------------------------------------------------------------------------


# Declared before the dated route, whose {day} would otherwise take "latest". HEAD is
# the same handler, kept out of the OpenAPI schema, where it would repeat GET's id.
@router.get("/{code}/{language}/latest.mp3")
@router.head("/{code}/{language}/latest.mp3", include_in_schema=False)
async def latest_audio(code: str, language: str, request: Request) -> Response:
    """The MP3 of the newest approved (or aired) bulletin in ``language``."""
    return await _audio(request, code, language, None)


@router.get("/{code}/{language}/{day}.mp3")
@router.head("/{code}/{language}/{day}.mp3", include_in_schema=False)
async def dated_audio(code: str, language: str, day: str, request: Request) -> Response:
    """The MP3 of the bulletin of local air date ``day`` (YYYY-MM-DD) in ``language``."""
    return await _audio(request, code, language, day)


async def _audio(request: Request, code: str, language: str, day: str | None) -> Response:
    services = _services(request)
    try:
        caller = await _caller(request, code)
    except _Refused as refused:
        # Only a request for a known station can be logged: the log belongs to one.
        if refused.station_id is not None:
            download = _download(request, refused.station_id, language)
            await _log(services, download, refused.response)
        return refused.response

    download = _download(request, caller.station.id, language)
    try:
        _check_language(caller, language)
        air_date = _air_date(day)
        item = await _find(services, caller, language, air_date)
    except _Refused as refused:
        await _log(services, download, refused.response)
        return refused.response

    download["bulletin_id"] = item.bulletin_id
    return _LoggedFileResponse(
        item.path,
        media_type="audio/mpeg",
        headers={
            "Content-Disposition": content_disposition(caller.config, language, item.air_date),
            # The token is in the URL: no shared cache may keep the file for others.
            "Cache-Control": "private, no-cache",
        },
        on_sent=lambda status, sent: _record(services, download, status, sent),
        ignore_range=_ignores_range(request, code),
    )


def _ignores_range(request: Request, code: str) -> bool:
    """Whether the request's ``Range`` is to be ignored, and the whole file sent with 200.

    RFC 9110 (section 14.2) has a server ignore a Range it cannot parse or that is
    invalid; Starlette answers those 400, on which podcast clients stall, retrying the
    same header. A valid range still gets 206, and one past the end 416.
    """
    asked = request.headers.get("range")
    if asked is None or not _malformed_range(asked):
        return False
    client = request.client.host if request.client else "?"
    logger.warning(
        "station %s: malformed Range %r from %s ignored; the whole file is sent",
        code,
        asked[:100],
        client,
    )
    return True


def _malformed_range(header: str) -> bool:
    """Whether a ``Range`` header is one RFC 9110 has a server ignore: another unit than
    bytes, no range, a range that does not parse, or one that ends before it starts.

    A range past the end of the file is not malformed: it is unsatisfiable (416).
    """
    unit, equals, ranges = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return True
    # Empty list elements are allowed and skipped (RFC 9110 section 5.6.1).
    specs = [spec.strip() for spec in ranges.split(",") if spec.strip()]
    return not specs or not all(_valid_byte_range(spec) for spec in specs)


def _valid_byte_range(spec: str) -> bool:
    match = BYTE_RANGE.fullmatch(spec)
    if match is None:
        return False
    first, last = match.groups()
    return first is None or not last or int(last) >= int(first)


async def _find(
    services: Services, caller: _Caller, language: str, air_date: date | None
) -> feeds.Episode:
    async with services.db.session() as session:
        found = await feeds.episodes(
            session,
            caller.station.id,
            services.settings.resolved_media_dir,
            language=language,
            air_date=air_date,
            limit=1,
        )
    if not found:
        which = air_date.isoformat() if air_date else "approved yet"
        raise _Refused(_error(404, f"no {language} bulletin of {caller.config.code} {which}"))
    return found[0]


def content_disposition(station: StationConfig, language: str, air_date: date) -> str:
    """``attachment`` with the programme's name and date, in UTF-8 and an ASCII fallback.

    The UTF-8 form (RFC 6266 ``filename*``) keeps a name such as
    ``नागरिक-सहायता-कक्ष-2026-12-04.mp3``; clients that read only ``filename`` get the
    file's own ASCII name (``radio-dhading-2026-12-04-ne.mp3``).
    """
    words = re.split(r'[\s/\\:*?"<>|\x00-\x1f\x7f]+', station.programme_name(language))
    name = "-".join([*filter(None, words), air_date.isoformat()]) + ".mp3"
    plain = name if name.isascii() else f"{station.code}-{air_date.isoformat()}-{language}.mp3"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


class _LoggedFileResponse(FileResponse):
    """Starlette's file response (Range, HEAD, 416), which logs what it really sent,
    and can be told to ignore a malformed Range (see :func:`_ignores_range`).

    ``bytes_sent`` counts the body the server accepted before the client hung up; the
    server still held some of it in its buffers, so a cut download may have delivered a
    little less.
    """

    def __init__(
        self,
        path: Path,
        *,
        on_sent: Callable[[int, int], Awaitable[None]],
        ignore_range: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(path, **kwargs)
        self._on_sent = on_sent
        self._ignore_range = ignore_range

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, sent, gone = 0, 0, False

        async def watching() -> Message:
            nonlocal gone
            message = await receive()
            gone = gone or message["type"] == "http.disconnect"
            return message

        async def counting(message: Message) -> None:
            nonlocal status, sent
            await send(message)
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status in (200, 206) and not gone:
                # After a disconnect servers drop what they are given without a word.
                sent += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":
                sent += Path(message["path"]).stat().st_size

        if self._ignore_range:
            scope = _without_range(scope)
        try:
            await super().__call__(scope, watching, counting)
        finally:
            # Logged even when the client hangs up half-way: that is what the log is for.
            with anyio.CancelScope(shield=True):
                await self._on_sent(status or 500, sent)


def _without_range(scope: Scope) -> Scope:
    """The request as Starlette's file response is to see it: without its Range (and
    If-Range, which means nothing without one)."""
    dropped = (b"range", b"if-range")
    headers = [(name, value) for name, value in scope["headers"] if name.lower() not in dropped]
    return {**scope, "headers": headers}


def _download(request: Request, station_id: int, language: str) -> dict[str, Any]:
    user_agent = request.headers.get("user-agent")
    byte_range = request.headers.get("range")
    return {
        "station_id": station_id,
        "bulletin_id": None,
        "language": language[:16],
        "path": request.url.path[:300],
        "method": request.method,
        "byte_range": byte_range[:100] if byte_range else None,
        "client": request.client.host[:64] if request.client else None,
        "user_agent": user_agent[:300] if user_agent else None,
    }


async def _log(services: Services, download: dict[str, Any], response: Response) -> None:
    await _record(services, download, response.status_code, 0)


async def _record(services: Services, download: dict[str, Any], status: int, sent: int) -> None:
    try:
        async with services.db.session() as session:
            session.add(StationDownload(**download, status_code=status, bytes_sent=sent))
    except SQLAlchemyError:
        # The answer has gone out already; a lost log row must not turn it into an error.
        logger.exception(
            "station %s: download of %s could not be logged",
            download["station_id"],
            download["path"],
        )
        return
    logger.info(
        "station %s: %s %s (bulletin %s, range %s) -> %d, %d bytes to %s",
        download["station_id"],
        download["method"],
        download["path"],
        download["bulletin_id"],
        download["byte_range"] or "-",
        status,
        sent,
        download["client"],
    )


# Airing -----------------------------------------------------------------------------------


@router.post("/{code}/bulletins/{bulletin_id}/aired")
async def confirm_aired(code: str, bulletin_id: int, request: Request) -> Response:
    """The station says it aired the bulletin; answers its status, or 409 if not approved."""
    services = _services(request)
    try:
        caller = await _caller(request, code)
    except _Refused as refused:
        return refused.response

    try:
        async with services.db.session() as session:
            bulletin = await session.get(Bulletin, bulletin_id)
            if bulletin is None or bulletin.station_id != caller.station.id:
                return _error(404, f"{code} has no bulletin {bulletin_id}")
            bulletin = await mark_aired(session, bulletin_id, via="api")
            answer = {
                "bulletin": bulletin.id,
                "status": bulletin.status,
                "aired_at": bulletin.aired_at.isoformat() if bulletin.aired_at else None,
                "aired_via": bulletin.aired_via,
            }
    except BulletinError as error:
        logger.warning("station %s: aired refused for bulletin %s: %s", code, bulletin_id, error)
        return _error(409, str(error))
    return JSONResponse(answer)


# Access -----------------------------------------------------------------------------------


async def _caller(request: Request, code: str) -> _Caller:
    """The station of the URL, if the request carries its token.

    Raises:
        _Refused: 404 for an unknown station, 401 without a token, 403 with a wrong one.
            The 401 and 403 carry the station's id for the log.
    """
    services = _services(request)
    config = services.deployment.stations.get(code) if STATION_CODE.fullmatch(code) else None
    station = None
    if config is not None:
        async with services.db.session() as session:
            station = await session.scalar(select(Station).where(Station.code == code))
    if config is None or station is None:
        raise _Refused(_error(404, "no such station"))

    token = _presented_token(request)
    client = request.client.host if request.client else "?"
    if token is None:
        logger.warning("station %s: request from %s without a token", code, client)
        refusal = _error(401, "a token is needed", {"WWW-Authenticate": "Bearer"})
    elif not hmac.compare_digest(token_hash(token), station.token_hash or _NO_TOKEN):
        logger.warning("station %s: request from %s with a wrong token", code, client)
        refusal = _error(403, "wrong token for this station")
    else:
        return _Caller(station, config, token)
    raise _Refused(refusal, station.id)


def _presented_token(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("token") or None


def _check_language(caller: _Caller, language: str) -> None:
    if not LANGUAGE_CODE.fullmatch(language):
        raise _Refused(_error(400, "a language is a code such as ne or en"))
    if language not in caller.config.languages:
        aired = ", ".join(caller.config.languages)
        raise _Refused(_error(404, f"{caller.config.code} airs {aired}, not {language}"))


def _air_date(day: str | None) -> date | None:
    if day is None:
        return None
    try:
        if not AIR_DATE.fullmatch(day):
            raise ValueError(day)
        return date.fromisoformat(day)
    except ValueError:
        raise _Refused(_error(400, "a bulletin is named by its date, YYYY-MM-DD")) from None


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# The download log ---------------------------------------------------------------------------


async def fetched_in_full(session: AsyncSession, item: feeds.Episode) -> datetime | None:
    """When the station first had every byte of ``item``, from its logged GETs.

    A download counts in pieces too: automation that resumes with ``Range`` after a
    dropped connection has the whole file once its ranges together cover it.

    Returns:
        The time of the request that completed the file, or None if it never was.
    """
    rows = await session.execute(
        select(
            StationDownload.byte_range,
            StationDownload.status_code,
            StationDownload.bytes_sent,
            StationDownload.requested_at,
        )
        .where(
            StationDownload.bulletin_id == item.bulletin_id,
            StationDownload.language == item.language,
            StationDownload.method == "GET",
            StationDownload.status_code.in_((200, 206)),
        )
        .order_by(StationDownload.requested_at, StationDownload.id)
    )
    covered: list[tuple[int, int]] = []
    for byte_range, status, sent, requested_at in rows.all():
        start = 0 if status == 200 else _range_start(byte_range, item.size)
        if start is None or sent <= 0:
            continue
        covered = _merge([*covered, (start, start + sent)])
        if covered[0][0] == 0 and covered[0][1] >= item.size:
            return requested_at
    return None


def _range_start(byte_range: str | None, size: int) -> int | None:
    """Where a single ``bytes=`` range starts; None for several ranges or a bad header."""
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", byte_range or "")
    if match is None or not any(match.groups()):
        return None
    first, last = match.groups()
    return int(first) if first else max(size - int(last), 0)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
