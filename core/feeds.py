"""Podcast feeds of a station's approved bulletins, one per language and one for all.

Station automation (LibreTime, Rivendell's podcast catcher, any podcast client)
subscribes by URL and downloads each new MP3 by itself. What such a client relies on:

- the enclosure URL ends in ``.mp3`` (some pick the decoder by extension) and is named by
  the bulletin's local air date;
- the guid is the same for a bulletin and language on every fetch (a changed guid would
  download and air the same bulletin twice);
- the enclosure length is the file's size in bytes and the type ``audio/mpeg``.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.deployment import StationConfig
from core.models import Bulletin, BulletinFile

logger = logging.getLogger(__name__)

# Bulletins in these states were cleared for air by an editor.
PUBLISHED = ("approved", "aired")

# How many files a feed lists, newest first: a few weeks of a weekly programme, and a
# feed a podcast client on a slow link still fetches quickly.
FEED_ITEMS = 30


@dataclass(frozen=True)
class Episode:
    """One approved bulletin's MP3 in one language, found on disk inside the media store.

    Attributes:
        path: the resolved file; ``size`` is measured on it, not taken from the record.
    """

    bulletin_id: int
    air_date: date
    air_at: datetime
    language: str
    path: Path
    size: int
    duration_s: float


async def episodes(
    session: AsyncSession,
    station_id: int,
    media_dir: Path,
    *,
    language: str | None = None,
    air_date: date | None = None,
    limit: int = FEED_ITEMS,
) -> list[Episode]:
    """A station's published MP3s, newest air date first.

    A file whose recorded path leads outside ``media_dir`` or that is missing is left
    out and logged: neither a tampered record nor a deleted file can be served.

    Args:
        language: only this language's files; all of them when None.
        air_date: only the bulletin of this local air date.
    """
    conditions = [
        Bulletin.station_id == station_id,
        Bulletin.status.in_(PUBLISHED),
        BulletinFile.format == "mp3",
    ]
    if language is not None:
        conditions.append(BulletinFile.language == language)
    if air_date is not None:
        conditions.append(Bulletin.air_date == air_date)
    query = (
        select(Bulletin, BulletinFile)
        .join(BulletinFile, BulletinFile.bulletin_id == Bulletin.id)
        .where(*conditions)
        .order_by(Bulletin.air_date.desc(), Bulletin.id.desc(), BulletinFile.language)
        .limit(limit)
    )

    found = []
    for bulletin, file in (await session.execute(query)).all():
        path = media_file(media_dir, file.path)
        if path is None:
            logger.error(
                "bulletin %s (%s): file %r is missing or outside the media store; not served",
                bulletin.id,
                file.language,
                file.path,
            )
            continue
        found.append(_episode(bulletin, file, path))
    return found


def _episode(bulletin: Bulletin, file: BulletinFile, path: Path) -> Episode:
    return Episode(
        bulletin_id=bulletin.id,
        air_date=bulletin.air_date,
        air_at=bulletin.air_at,
        language=file.language,
        path=path,
        size=path.stat().st_size,
        duration_s=file.duration_s,
    )


def media_file(media_dir: Path, stored: str) -> Path | None:
    """The regular file ``stored`` (relative to ``media_dir``) names, if it is inside.

    Symbolic links and ``..`` are resolved first, and an absolute ``stored`` replaces
    the base when joined, so every way out of the media store ends up refused here.
    """
    root = media_dir.resolve()
    candidate = (root / stored).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def render_feed(
    station: StationConfig,
    items: list[Episode],
    *,
    language: str | None,
    feed_url: str,
    site_url: str,
    audio_url: Callable[[Episode], str],
) -> bytes:
    """The RSS 2.0 document (with the iTunes podcast tags) of ``items``.

    Args:
        language: the feed's language, or None for a feed of every language, whose
            titles then say each item's language.
        feed_url: where this feed is fetched (its ``atom:link rel="self"``).
        site_url: the programme's public address (the channel's ``link``).
        audio_url: the enclosure URL of an item.
    """
    feed = _channel(station, language, feed_url, site_url)
    for item in items:
        _add_item(feed, station, item, audio_url(item), with_language=language is None)
    if items:
        # A stable build date, so a feed that did not change reads the same each fetch.
        feed.lastBuildDate(max(item.air_at for item in items))
    rss: bytes = feed.rss_str(pretty=True)
    return rss


def _channel(
    station: StationConfig, language: str | None, feed_url: str, site_url: str
) -> FeedGenerator:
    programme = station.programme_name(language or "en")
    languages = [language] if language else station.languages
    feed = FeedGenerator()
    feed.load_extension("podcast")
    feed.title(f"{programme} – {station.name}")
    feed.link(href=feed_url, rel="self")
    # feedgen gives RSS's one <link> the last link set: the programme's site, not the feed.
    feed.link(href=site_url, rel="alternate")
    feed.description(
        f"Bulletins of {programme} on {station.name} ({', '.join(languages)}), "
        "from the reports of the communities it serves."
    )
    if language:
        feed.language(language)
    feed.podcast.itunes_author(station.name)
    feed.podcast.itunes_explicit("no")
    feed.podcast.itunes_category("News")
    return feed


def _add_item(
    feed: FeedGenerator, station: StationConfig, item: Episode, url: str, *, with_language: bool
) -> None:
    title = f"{station.programme_name(item.language)} {item.air_date.isoformat()}"
    entry = feed.add_entry(order="append")
    entry.guid(guid(station, item), permalink=False)
    entry.title(f"{title} ({item.language})" if with_language else title)
    entry.enclosure(url, str(item.size), "audio/mpeg")
    # In the station's own zone, so the date a person reads in the feed is the air date.
    entry.pubDate(item.air_at.astimezone(ZoneInfo(station.timezone)))
    entry.podcast.itunes_duration(_duration(item.duration_s))


def guid(station: StationConfig, item: Episode) -> str:
    """The item's identity: the same bulletin and language give the same guid, always."""
    return (
        f"citizen-helpdesk:{station.code}:{item.air_date.isoformat()}:"
        f"{item.language}:{item.bulletin_id}"
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
