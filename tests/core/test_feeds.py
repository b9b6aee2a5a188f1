"""The podcast feeds, read back with feedparser as a station's automation reads them.

A two-language station whose English programme name has an ampersand and whose Nepali
one is in Devanagari; its bulletins rendered once for the module with eSpeak NG.
"""

import calendar
import shutil
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import pytest
import yaml
from sqlalchemy import select

from core.config import PROJECT_ROOT
from core.models import Bulletin, BulletinFile
from core.services import Services
from tests.core.station_audio import (
    TOKEN,
    RenderedFile,
    client_of,
    give_token,
    publish,
    quiet_settings,
    render_once,
)

STATION = "radio-melamchi"
PUBLIC_URL = "https://helpdesk.example.org"
ENGLISH = "Voices & Views of Melamchi"
NEPALI = "नागरिक सहायता कक्ष"
SATURDAY = date(2026, 12, 5)
WEDNESDAY = date(2026, 12, 2)
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample content, with an ampersand in the English programme name and no WAV
    (which the feeds never carry and which would only slow the render)."""
    folder = tmp_path_factory.mktemp("content") / "content"
    shutil.copytree(PROJECT_ROOT / "content", folder)
    stations_file = folder / "stations.yaml"
    stations = yaml.safe_load(stations_file.read_text(encoding="utf-8"))
    melamchi = next(s for s in stations["stations"] if s["code"] == STATION)
    melamchi["programme"]["en"] = ENGLISH
    melamchi["audio"]["wav"] = False
    stations_file.write_text(yaml.safe_dump(stations, allow_unicode=True), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory, content: Path) -> list[RenderedFile]:
    return render_once(tmp_path_factory.mktemp("rendered"), content, STATION, SATURDAY)


async def start(url: str, data_dir: Path, content: Path) -> Services:
    services = Services.build(quiet_settings(url, data_dir, content, public_url=PUBLIC_URL))
    await services.sync_content()
    await give_token(services, STATION)
    return services


@pytest.fixture
async def helpdesk(db_url: str, tmp_path: Path, content: Path) -> AsyncIterator[Services]:
    services = await start(db_url, tmp_path, content)
    yield services
    await services.close()


@pytest.fixture
async def quick(sqlite_url: str, tmp_path: Path, content: Path) -> AsyncIterator[Services]:
    services = await start(sqlite_url, tmp_path, content)
    yield services
    await services.close()


def parsed(body: bytes) -> Any:
    feed = feedparser.parse(body)
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


async def mp3_sizes(services: Services) -> dict[tuple[int, str], int]:
    """The size on disk of every MP3, by bulletin and language."""
    media = services.settings.resolved_media_dir
    async with services.db.session() as session:
        files = await session.scalars(select(BulletinFile).where(BulletinFile.format == "mp3"))
        return {(f.bulletin_id, f.language): (media / f.path).stat().st_size for f in files}


async def test_a_language_feed_lists_the_approved_mp3s_as_a_podcast_client_reads_them(
    helpdesk: Services, rendered: list[RenderedFile]
) -> None:
    older = await publish(helpdesk, rendered, STATION, WEDNESDAY, status="aired")
    newest = await publish(helpdesk, rendered, STATION, SATURDAY)
    await publish(helpdesk, rendered, STATION, date(2026, 12, 9), status="rendered")
    sizes = await mp3_sizes(helpdesk)

    async with client_of(helpdesk) as client:
        response = await client.get(f"/stations/{STATION}/en/feed.xml?token={TOKEN}")
        again = await client.get(f"/stations/{STATION}/en/feed.xml", headers=BEARER)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/rss+xml")
    feed = parsed(response.content)
    assert feed.version == "rss20" and feed.feed.language == "en"
    assert feed.feed.title == f"{ENGLISH} – Radio Melamchi 95.4 MHz"
    assert feed.feed.link == PUBLIC_URL
    self_link = next(link for link in feed.feed.links if link.rel == "self")
    assert self_link.href == f"{PUBLIC_URL}/stations/{STATION}/en/feed.xml"
    assert [e.title for e in feed.entries] == [f"{ENGLISH} 2026-12-05", f"{ENGLISH} 2026-12-02"]
    for entry, bulletin_id, day in zip(
        feed.entries, (newest, older), ("2026-12-05", "2026-12-02"), strict=True
    ):
        [enclosure] = entry.enclosures
        url = urlsplit(enclosure.href)
        assert enclosure.href.startswith(f"{PUBLIC_URL}/stations/{STATION}/en/")
        assert url.path.endswith(f"/{day}.mp3")
        assert parse_qs(url.query) == {"token": [TOKEN]}
        assert int(enclosure.length) == sizes[(bulletin_id, "en")]
        assert enclosure.type == "audio/mpeg"
        assert entry.guidislink is False
    assert [e.id for e in feed.entries] == [e.id for e in parsed(again.content).entries]
    assert len({e.id for e in feed.entries}) == 2


async def test_pub_date_and_duration_are_the_bulletins_own(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    bulletin_id = await publish(quick, rendered, STATION, SATURDAY)
    async with quick.db.session() as session:
        bulletin = await session.get(Bulletin, bulletin_id)
        assert bulletin is not None
        air_at = bulletin.air_at
    english = next(f for f in rendered if f.language == "en" and f.format == "mp3")

    async with client_of(quick) as client:
        feed = parsed(
            (await client.get(f"/stations/{STATION}/en/feed.xml", headers=BEARER)).content
        )

    [entry] = feed.entries
    published = datetime.fromtimestamp(calendar.timegm(entry.published_parsed), UTC)
    assert published == air_at
    assert entry.published.endswith("+0545"), "pubDate in Kathmandu's time"
    seconds = round(english.duration_s)
    assert entry.itunes_duration == f"0:{seconds // 60:02d}:{seconds % 60:02d}"
    assert seconds > 5


async def test_titles_with_an_ampersand_and_devanagari_stay_well_formed(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, SATURDAY)

    async with client_of(quick) as client:
        nepali = await client.get(f"/stations/{STATION}/ne/feed.xml", headers=BEARER)
        every = await client.get(f"/stations/{STATION}/feed.xml", headers=BEARER)

    for body in (nepali.content, every.content):
        ElementTree.fromstring(body)  # raises on anything not well-formed
    assert b"Voices &amp; Views" in every.content
    assert parsed(nepali.content).entries[0].title == f"{NEPALI} 2026-12-05"
    titles = sorted(e.title for e in parsed(every.content).entries)
    assert titles == [f"{ENGLISH} 2026-12-05 (en)", f"{NEPALI} 2026-12-05 (ne)"]


async def test_the_feed_of_every_language_follows_to_the_same_bytes(
    quick: Services, rendered: list[RenderedFile]
) -> None:
    await publish(quick, rendered, STATION, SATURDAY)
    by_language = {f.language: f.source.read_bytes() for f in rendered if f.format == "mp3"}

    async with client_of(quick) as client:
        feed = parsed((await client.get(f"/stations/{STATION}/feed.xml?token={TOKEN}")).content)
        fetched = {}
        for entry in feed.entries:
            url = urlsplit(entry.enclosures[0].href)
            answer = await client.get(f"{url.path}?{url.query}")
            assert answer.status_code == 200, url.path
            fetched[url.path.split("/")[3]] = answer.content

    assert fetched == by_language
    guids = {e.id for e in feed.entries}
    assert len(guids) == 2 and all(STATION in g for g in guids)


async def test_a_feed_needs_the_token_and_a_language_the_station_airs(quick: Services) -> None:
    async with client_of(quick) as client:
        anonymous = await client.get(f"/stations/{STATION}/en/feed.xml")
        wrong = await client.get(f"/stations/{STATION}/en/feed.xml?token=guess")
        french = await client.get(f"/stations/{STATION}/fr/feed.xml", headers=BEARER)
        unknown = await client.get("/stations/radio-nowhere/feed.xml", headers=BEARER)
        empty = await client.get(f"/stations/{STATION}/feed.xml", headers=BEARER)

    assert anonymous.status_code == 401 and wrong.status_code == 403
    assert french.status_code == 404 and unknown.status_code == 404
    assert empty.status_code == 200 and parsed(empty.content).entries == []
