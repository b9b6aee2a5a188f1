"""A radio station fetching its bulletins: the MP3 endpoints, Range and HEAD, the token,
the way out of the media store refused, the download log, and airing confirmed by API.

The real app (lifespan run) over ASGI, and once under uvicorn on 127.0.0.1; real
bulletins rendered with eSpeak NG once for the module (see ``station_audio``).
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import date
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from sqlalchemy import delete, select
from starlette.types import Message, Scope

from core import bulletins
from core.bulletins import BulletinError
from core.config import PROJECT_ROOT
from core.models import Bulletin, BulletinFile, StationDownload
from core.services import Services
from tests.bot.channels.conftest import RunningService
from tests.core.station_audio import (
    TOKEN,
    RenderedFile,
    app_of,
    client_of,
    give_token,
    publish,
    quiet_settings,
    render_once,
)

STATION = "radio-dhading"
FRIDAY = date(2026, 12, 4)
WEEK_BEFORE = date(2026, 11, 27)
BEARER = {"Authorization": f"Bearer {TOKEN}"}
LATEST = f"/stations/{STATION}/ne/latest.mp3"
UNICODE_NAME = "नागरिक-सहायता-कक्ष-2026-12-04.mp3"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[RenderedFile]:
    root = tmp_path_factory.mktemp("rendered")
    return render_once(root, PROJECT_ROOT / "content", STATION, FRIDAY)


@pytest.fixture
async def helpdesk(db_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    services = Services.build(quiet_settings(db_url, tmp_path, PROJECT_ROOT / "content"))
    await services.sync_content()
    await give_token(services, STATION)
    yield services
    await services.close()


@pytest.fixture
async def quick(sqlite_url: str, tmp_path: Path) -> AsyncIterator[Services]:
    """The same on SQLite only, for behaviour that does not depend on the database."""
    services = Services.build(quiet_settings(sqlite_url, tmp_path, PROJECT_ROOT / "content"))
    await services.sync_content()
    await give_token(services, STATION)
    yield services
    await services.close()


def mp3_of(rendered: list[RenderedFile]) -> bytes:
    return next(f for f in rendered if f.format == "mp3").source.read_bytes()


async def log_rows(services: Services) -> list[StationDownload]:
    async with services.db.session() as session:
        rows = await session.scalars(select(StationDownload).order_by(StationDownload.id))
        return list(rows)


async def test_latest_and_dated_mp3_are_the_approved_bulletins_and_each_fetch_is_logged(
    helpdesk: Services, rendered: list[RenderedFile]
) -> None:
    older = await publish(helpdesk, rendered, STATION, WEEK_BEFORE, status="aired")
    newest = await publish(helpdesk, rendered, STATION, FRIDAY)
    await publish(helpdesk, rendered, STATION, date(2026, 12, 11), status="rendered")
    audio = mp3_of(rendered)

    async with client_of(helpdesk) as client:
        latest = await client.get(f"{LATEST}?token={TOKEN}", headers={"User-Agent": "LibreTime"})
        dated = await client.get(f"/stations/{STATION}/ne/2026-11-27.mp3", headers=BEARER)
        unapproved = await client.get(f"/stations/{STATION}/ne/2026-12-11.mp3", headers=BEARER)

    assert latest.status_code == 200 and latest.content == audio
    assert latest.headers["content-type"] == "audio/mpeg"
    assert latest.headers["content-length"] == str(len(audio))
    assert latest.headers["accept-ranges"] == "bytes"
    assert 'filename="radio-dhading-2026-12-04-ne.mp3"' in latest.headers["content-disposition"]
    assert dated.status_code == 200 and "2026-11-27" in dated.headers["content-disposition"]
    assert unapproved.status_code == 404
    rows = await log_rows(helpdesk)
    assert [(r.method, r.status_code, r.bulletin_id) for r in rows] == [
        ("GET", 200, newest),
        ("GET", 200, older),
        ("GET", 404, None),
    ]
    assert rows[0].bytes_sent == len(audio) and rows[2].bytes_sent == 0
    assert rows[0].user_agent == "LibreTime" and rows[0].client == "127.0.0.1"
    assert rows[0].path == LATEST and rows[0].language == "ne"
    assert rows[0].station_id == rows[1].station_id


async def test_content_disposition_has_an_ascii_name_and_the_programme_in_utf8(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)

    async with client_of(quick) as client:
        response = await client.get(LATEST, headers=BEARER)

    disposition = response.headers["content-disposition"]
    kind, plain, extended = (part.strip() for part in disposition.split(";"))
    assert kind == "attachment"
    assert plain == 'filename="radio-dhading-2026-12-04-ne.mp3"'
    assert extended.startswith("filename*=UTF-8''")
    assert unquote(extended.removeprefix("filename*=UTF-8''")) == UNICODE_NAME
    assert extended.isascii() and quote(UNICODE_NAME, safe="") in extended


async def test_a_range_is_answered_with_206_and_exactly_those_bytes_past_the_end_416(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    audio = mp3_of(rendered)
    size = len(audio)
    cases = {
        "bytes=0-0": (0, 0),
        "bytes=100-": (100, size - 1),
        "bytes=-500": (size - 500, size - 1),
    }

    async with client_of(quick) as client:
        answers = {
            asked: await client.get(LATEST, headers={**BEARER, "Range": asked}) for asked in cases
        }
        beyond = await client.get(LATEST, headers={**BEARER, "Range": f"bytes={size}-"})

    for asked, (start, end) in cases.items():
        response = answers[asked]
        assert response.status_code == 206, asked
        assert response.headers["content-range"] == f"bytes {start}-{end}/{size}", asked
        assert response.content == audio[start : end + 1], asked
        assert response.headers["content-length"] == str(end + 1 - start), asked
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    rows = await log_rows(quick)
    assert [(r.status_code, r.byte_range, r.bytes_sent) for r in rows] == [
        (206, "bytes=0-0", 1),
        (206, "bytes=100-", size - 100),
        (206, "bytes=-500", 500),
        (416, f"bytes={size}-", 0),
    ]


async def test_head_gives_the_headers_of_the_file_and_no_body(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    size = len(mp3_of(rendered))

    async with client_of(quick) as client:
        whole = await client.head(LATEST, headers=BEARER)
        part = await client.head(LATEST, headers={**BEARER, "Range": "bytes=0-0"})

    assert whole.status_code == 200 and whole.content == b""
    assert whole.headers["content-length"] == str(size)
    assert whole.headers["content-type"] == "audio/mpeg"
    assert "filename*=UTF-8''" in whole.headers["content-disposition"]
    assert part.status_code == 206 and part.content == b""
    assert part.headers["content-range"] == f"bytes 0-0/{size}"
    rows = await log_rows(quick)
    assert [(r.method, r.status_code, r.bytes_sent) for r in rows] == [
        ("HEAD", 200, 0),
        ("HEAD", 206, 0),
    ]


async def test_range_and_head_through_uvicorn_on_a_real_socket(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    audio = mp3_of(rendered)
    service = RunningService(quick.settings)
    await service.start(wait_for_telegram=False)

    try:
        async with httpx.AsyncClient(base_url=service.url, trust_env=False) as client:
            head = await client.head(LATEST, headers=BEARER)
            tail = await client.get(LATEST, headers={**BEARER, "Range": "bytes=-500"})
            resumed = await client.get(f"{LATEST}?token={TOKEN}", headers={"Range": "bytes=100-"})
    finally:
        await service.stop()

    assert head.status_code == 200 and head.headers["content-length"] == str(len(audio))
    assert head.content == b""
    assert tail.status_code == 206 and tail.content == audio[-500:]
    assert (
        tail.headers["content-range"] == f"bytes {len(audio) - 500}-{len(audio) - 1}/{len(audio)}"
    )
    assert resumed.status_code == 206 and resumed.content == audio[100:]
    rows = await log_rows(quick)
    assert [(r.method, r.status_code, r.bytes_sent) for r in rows] == [
        ("HEAD", 200, 0),
        ("GET", 206, 500),
        ("GET", 206, len(audio) - 100),
    ]


async def test_without_the_token_it_is_401_with_a_wrong_one_403_and_the_token_is_never_logged(
    quick: Services, rendered: list[RenderedFile], caplog: pytest.LogCaptureFixture
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    wrong = "not-the-token-of-this-station"

    with caplog.at_level(logging.INFO):
        async with client_of(quick) as client:
            missing = await client.get(LATEST)
            empty = await client.get(f"{LATEST}?token=")
            bad = await client.get(f"{LATEST}?token={wrong}")
            bad_bearer = await client.get(LATEST, headers={"Authorization": f"Bearer {wrong}"})
            other_station = await client.get(
                f"/stations/radio-tikapur/ne/latest.mp3?token={TOKEN}"
            )
            feed = await client.get(f"/stations/{STATION}/feed.xml")
            good = await client.get(f"{LATEST}?token={TOKEN}")

    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert empty.status_code == 401
    assert bad.status_code == 403 and bad_bearer.status_code == 403
    assert other_station.status_code == 403, "radio-tikapur has no token at all"
    assert feed.status_code == 401
    assert good.status_code == 200
    refusals = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(STATION in m and "127.0.0.1" in m and "wrong token" in m for m in refusals)
    assert any(STATION in m and "without a token" in m for m in refusals)
    ours = [r for r in caplog.records if not r.name.startswith("httpx")]
    everything = "\n".join(r.getMessage() for r in ours)
    assert wrong not in everything and TOKEN not in everything
    rows = await log_rows(quick)
    assert [r.status_code for r in rows] == [401, 401, 403, 403, 403, 200]


OUT_OF_BOUNDS = [
    f"/stations/{STATION}/ne/..%2F..%2F..%2Fsecret.mp3",
    f"/stations/{STATION}/ne/..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    f"/stations/{STATION}/..%2F..%2F..%2F/latest.mp3",
    f"/stations/{STATION}/ne/%2Fetc%2Fpasswd.mp3",
    f"/stations/{STATION}/ne/%2E%2E/secret.mp3",
    f"/stations/..%2F{STATION}/ne/latest.mp3",
    f"/stations/{STATION}/NE/latest.mp3",
    f"/stations/{STATION}/ne/2026-13-01.mp3",
    f"/stations/{STATION}/ne/2026-12-4.mp3",
    f"/stations/{STATION}/ne/20261204.mp3",
    f"/stations/{STATION}/fr/latest.mp3",
]


async def test_no_url_leads_out_of_the_media_store_or_past_strict_checks(
    quick: Services, rendered: list[RenderedFile], tmp_path: Path
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    (tmp_path / "secret.mp3").write_bytes(b"SECRET-OUTSIDE-THE-MEDIA-STORE")

    async with client_of(quick) as client:
        answers = {path: await client.get(path, headers=BEARER) for path in OUT_OF_BOUNDS}
        allowed = await client.get(f"/stations/{STATION}/ne/2026-12-04.mp3", headers=BEARER)

    for path, response in answers.items():
        assert response.status_code in (400, 404), path
        assert b"SECRET" not in response.content and b"root:" not in response.content, path
    assert allowed.status_code == 200, "the checks must still let the real file through"


async def test_a_tampered_file_record_is_not_served(
    quick: Services, rendered: list[RenderedFile], tmp_path: Path
) -> None:
    bulletin_id = await publish(quick, rendered, STATION, FRIDAY)
    secret = tmp_path / "secret.mp3"
    secret.write_bytes(b"SECRET-OUTSIDE-THE-MEDIA-STORE")
    media = quick.settings.resolved_media_dir
    os.symlink(secret, media / "bulletins" / "link.mp3")
    tampered = [os.path.relpath(secret, media), str(secret), "bulletins/link.mp3"]

    for stored in tampered:
        await set_mp3_path(quick, bulletin_id, stored)
        async with client_of(quick) as client:
            latest = await client.get(LATEST, headers=BEARER)
            dated = await client.get(f"/stations/{STATION}/ne/2026-12-04.mp3", headers=BEARER)
            feed = await client.get(f"/stations/{STATION}/ne/feed.xml", headers=BEARER)

        assert latest.status_code == 404 and dated.status_code == 404, stored
        assert b"SECRET" not in latest.content + dated.content, stored
        assert feed.status_code == 200 and b"<enclosure" not in feed.content, stored


async def set_mp3_path(services: Services, bulletin_id: int, stored: str) -> None:
    async with services.db.session() as session:
        file = await session.scalar(
            select(BulletinFile).where(
                BulletinFile.bulletin_id == bulletin_id, BulletinFile.format == "mp3"
            )
        )
        assert file is not None
        file.path = stored


async def test_a_station_confirms_airing_by_api_once_and_only_when_approved(
    helpdesk: Services, rendered: list[RenderedFile]
) -> None:
    approved = await publish(helpdesk, rendered, STATION, FRIDAY)
    rendered_only = await publish(
        helpdesk, rendered, STATION, date(2026, 12, 11), status="rendered"
    )
    other = await publish(helpdesk, rendered, "radio-tikapur", date(2026, 12, 6))
    url = f"/stations/{STATION}/bulletins/{{}}/aired"

    async with client_of(helpdesk) as client:
        first = await client.post(url.format(approved), headers=BEARER)
        again = await client.post(url.format(approved), params={"token": TOKEN})
        refused = await client.post(url.format(rendered_only), headers=BEARER)
        foreign = await client.post(url.format(other), headers=BEARER)
        missing = await client.post(url.format(999_999), headers=BEARER)
        anonymous = await client.post(url.format(approved))

    assert first.status_code == 200
    assert first.json()["status"] == "aired" and first.json()["aired_via"] == "api"
    assert again.status_code == 200 and again.json() == first.json()
    assert refused.status_code == 409 and "not approved" in refused.json()["detail"]
    assert foreign.status_code == 404 and missing.status_code == 404
    assert anonymous.status_code == 401
    async with helpdesk.db.session() as session:
        aired = await session.get(Bulletin, approved)
        untouched = await session.get(Bulletin, other)
        assert aired is not None and untouched is not None
        assert (aired.status, aired.aired_via) == ("aired", "api") and aired.aired_at
        assert untouched.status == "approved" and untouched.aired_at is None


async def test_airing_keeps_the_first_confirmation(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    bulletin_id = await publish(quick, rendered, STATION, FRIDAY)
    async with quick.db.session() as session:
        first = await bulletins.mark_aired(session, bulletin_id, via="telegram")
        when = first.aired_at

    async with quick.db.session() as session:
        again = await bulletins.mark_aired(session, bulletin_id, via="api")

    assert (again.status, again.aired_via, again.aired_at) == ("aired", "telegram", when)
    async with quick.db.session() as session:
        with pytest.raises(BulletinError, match="unknown confirmation"):
            await bulletins.mark_aired(session, bulletin_id, via="carrier pigeon")


async def test_only_a_rendered_bulletin_with_its_files_can_be_approved(
    helpdesk: Services, rendered: list[RenderedFile]
) -> None:
    draft = await publish(helpdesk, rendered, STATION, WEEK_BEFORE, status="rendered")
    async with helpdesk.db.session() as session:
        await bulletins.edit_item(session, draft, "ne", 1, "नमस्कार।")
    lost = await publish(helpdesk, rendered, STATION, FRIDAY, status="rendered")
    media = helpdesk.settings.resolved_media_dir
    (media / f"bulletins/{STATION}/2026-12-04/{STATION}-2026-12-04-ne.mp3").unlink()

    async with helpdesk.db.session() as session:
        with pytest.raises(BulletinError, match="draft; render it first"):
            await bulletins.approve(session, draft, media_dir=media)
    async with helpdesk.db.session() as session:
        with pytest.raises(BulletinError, match="is missing"):
            await bulletins.approve(session, lost, media_dir=media)
    async with helpdesk.db.session() as session:
        with pytest.raises(BulletinError, match="not approved"):
            await bulletins.mark_aired(session, lost, via="api")

    async with helpdesk.db.session() as session:
        await session.execute(delete(BulletinFile).where(BulletinFile.bulletin_id == lost))
    async with helpdesk.db.session() as session:
        with pytest.raises(BulletinError, match="no MP3 in ne"):
            await bulletins.approve(session, lost)
    async with helpdesk.db.session() as session:
        assert (await session.get(Bulletin, lost)).status == "rendered"  # type: ignore[union-attr]


async def test_a_download_cut_short_is_logged_with_the_bytes_that_left(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    size = len(mp3_of(rendered))
    delivered: list[bytes] = []
    asked: Iterator[Message] = iter([{"type": "http.request", "body": b"", "more_body": False}])

    async def receive() -> Message:
        # The station's link drops a moment after the download starts.
        message = next(asked, None)
        if message is None:
            await asyncio.sleep(0.03)
            return {"type": "http.disconnect"}
        return message

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.01)  # a slow link: one chunk every 10 ms
            delivered.append(message["body"])

    async with app_of(quick) as app:
        await app(asgi_get(LATEST, BEARER), receive, send)

    [row] = await log_rows(quick)
    assert 0 < row.bytes_sent < size
    assert row.bytes_sent <= sum(map(len, delivered))


def asgi_get(path: str, headers: dict[str, str]) -> Scope:
    """An HTTP GET scope as uvicorn builds it (ASGI spec 2.3)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
