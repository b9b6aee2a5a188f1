"""Broadcasts: an approved bulletin sent to the station's community groups as a text of
its script and the voice message, through the outbox.

Lifecycle of one broadcast::

    bulletin approved ──start_broadcast──> one outbox row per group ──worker──> sent
                         (again: the same broadcast, nothing queued twice)

A group gets the bulletin in its own language if the station airs it, else in the
station's first language. Starting is idempotent: the broadcast is unique per bulletin
and each row's key is ``broadcast:{broadcast}:recipient:{recipient}``.
"""

import logging
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.prompts import N_
from core import outbox
from core.bulletins import BulletinError, get_bulletin, script
from core.db import conflict_insert, utcnow
from core.deployment import Deployment
from core.i18n import translator
from core.models import Broadcast, Bulletin, BulletinFile, Recipient, Station
from core.outbox import Part

logger = logging.getLogger(__name__)

SENDABLE = ("approved", "aired")
# Rendering names the OGG Opus voice message "opus"; "ogg" is accepted as the same.
VOICE_FORMATS = ("opus", "ogg")

TITLE = N_("{programme}, {date}")
CAPTION = N_("Listen to {programme} of {date}")
AIRED_PROMPT = N_("When this bulletin has gone on air, please tap the button below.")
AIRED_BUTTON = N_("We aired it")


async def start_broadcast(
    session: AsyncSession, deployment: Deployment, bulletin_id: int
) -> Broadcast:
    """Queue an approved bulletin for every approved group of its station's communities.

    Groups are :class:`Recipient` rows with status ``approved`` whose communities meet
    the station's, or that belong to the station itself. Commits nothing itself.

    Returns:
        The broadcast; the existing one, untouched, if the bulletin was sent before.

    Raises:
        BulletinError: no such bulletin, it is not approved (or aired), or a language
            some group needs has no rendered voice message.
    """
    bulletin = await get_bulletin(session, bulletin_id)
    existing = await session.scalar(select(Broadcast).where(Broadcast.bulletin_id == bulletin_id))
    if existing is not None:
        logger.info("bulletin %s: broadcast %s exists; not queued again", bulletin_id, existing.id)
        return existing
    if bulletin.status not in SENDABLE:
        raise BulletinError(
            f"bulletin {bulletin_id} is {bulletin.status}; only an approved or aired "
            "bulletin is sent to groups"
        )

    recipients = await _recipients(session, bulletin.station)
    languages = {_language(bulletin.station, r) for r in recipients}
    parts = {
        language: await _parts(session, deployment, bulletin, language) for language in languages
    }

    broadcast = await _insert_broadcast(session, bulletin_id, len(recipients))
    if broadcast is None:
        # Another process started it between the look-up and the insert.
        return await _existing(session, bulletin_id)
    for recipient in recipients:
        await outbox.enqueue(
            session,
            dedupe_key=f"broadcast:{broadcast.id}:recipient:{recipient.id}",
            channel=recipient.channel,
            address=recipient.address,
            purpose="broadcast",
            parts=_for_recipient(parts, bulletin, recipient),
            recipient_id=recipient.id,
            broadcast_id=broadcast.id,
        )
    logger.info(
        "bulletin %s (%s): broadcast %s queued for %d groups in %s",
        bulletin_id,
        bulletin.station.code,
        broadcast.id,
        len(recipients),
        ", ".join(sorted(languages)) or "no language",
    )
    return broadcast


async def queue_due_broadcasts(
    session: AsyncSession, deployment: Deployment, station_code: str, on: date | None = None
) -> list[Broadcast]:
    """Start the broadcast of a station's approved bulletins for one local date.

    For a scheduler job ("send today's bulletin of radio-dhading to its groups"):
    ``on`` defaults to today in the station's time zone; bulletins already broadcast
    are left as they are, so the job may run twice.

    Raises:
        BulletinError: unknown station, or as :func:`start_broadcast`.
    """
    station = await session.scalar(select(Station).where(Station.code == station_code))
    if station is None:
        raise BulletinError(f"no station '{station_code}' (run helpdesk content load)")
    day = on or datetime.now(ZoneInfo(station.timezone)).date()

    bulletins = await session.scalars(
        select(Bulletin).where(
            Bulletin.station_id == station.id,
            Bulletin.air_date == day,
            Bulletin.status.in_(SENDABLE),
        )
    )
    started = [await start_broadcast(session, deployment, b.id) for b in bulletins]
    if not started:
        logger.warning("station %s: no approved bulletin for %s; nothing sent", station_code, day)
    return started


async def _insert_broadcast(
    session: AsyncSession, bulletin_id: int, recipients: int
) -> Broadcast | None:
    statement = (
        conflict_insert(session, Broadcast)
        .values(bulletin_id=bulletin_id, created_at=utcnow(), recipients=recipients)
        .on_conflict_do_nothing(index_elements=["bulletin_id"])
        .returning(Broadcast.id)
    )
    new_id = await session.scalar(statement)
    return None if new_id is None else await session.get(Broadcast, new_id)


async def _existing(session: AsyncSession, bulletin_id: int) -> Broadcast:
    broadcast = await session.scalar(select(Broadcast).where(Broadcast.bulletin_id == bulletin_id))
    assert broadcast is not None, f"bulletin {bulletin_id}: broadcast vanished"
    return broadcast


async def _recipients(session: AsyncSession, station: Station) -> list[Recipient]:
    # Communities are a JSON list: filtered here, as JSON queries differ per database.
    served = set(station.communities)
    rows = await session.scalars(
        select(Recipient).where(Recipient.status == "approved").order_by(Recipient.id)
    )
    return [
        r for r in rows if r.station_id == station.id or served.intersection(r.communities or [])
    ]


def _for_recipient(
    parts: dict[str, list[Part]], bulletin: Bulletin, recipient: Recipient
) -> list[Part]:
    """The parts in the recipient's language; a station's own Telegram chat also gets
    the button with which the station confirms that the bulletin went on air."""
    language = _language(bulletin.station, recipient)
    if recipient.station_id != bulletin.station_id or recipient.channel != "telegram":
        return parts[language]
    t = translator(language)
    button = ((t.gettext(AIRED_BUTTON), f"aired:{bulletin.id}"),)
    return [*parts[language], Part("text", text=t.gettext(AIRED_PROMPT), buttons=(button,))]


def _language(station: Station, recipient: Recipient) -> str:
    languages = [str(language) for language in station.languages]
    if recipient.language in languages:
        return recipient.language
    return languages[0]


async def _parts(
    session: AsyncSession, deployment: Deployment, bulletin: Bulletin, language: str
) -> list[Part]:
    """The text of the script, then the voice message, in one language."""
    voice = await _voice_file(session, bulletin, language)
    title = _title(deployment, bulletin, language, TITLE)
    items = [item.text for item in script(bulletin, language)]
    parts = outbox.text_parts("\n\n".join([title, *items]))

    caption = _title(deployment, bulletin, language, CAPTION)
    if outbox.caption_fits(caption):
        return [*parts, Part("voice", path=voice.path, caption=caption)]
    # Kept apart rather than left to the channel, so each part is one message.
    return [*parts, Part("voice", path=voice.path), *outbox.text_parts(caption)]


async def _voice_file(session: AsyncSession, bulletin: Bulletin, language: str) -> BulletinFile:
    voice = await session.scalar(
        select(BulletinFile)
        .where(
            BulletinFile.bulletin_id == bulletin.id,
            BulletinFile.language == language,
            BulletinFile.format.in_(VOICE_FORMATS),
        )
        .order_by(BulletinFile.id.desc())
    )
    if voice is None:
        raise BulletinError(
            f"bulletin {bulletin.id} has no {language} voice message; groups in {language} "
            f"need one (helpdesk bulletin render {bulletin.id})"
        )
    return voice


def _title(deployment: Deployment, bulletin: Bulletin, language: str, pattern: str) -> str:
    t = translator(language)
    config = deployment.stations.get(bulletin.station.code)
    programme = config.programme_name(language) if config else bulletin.station.name
    day = format_date(bulletin.air_date, "long", locale=t.locale)
    return t.gettext(pattern).format(programme=programme, date=day)
