"""Starting a broadcast: which groups, in which language, with which parts, once."""

import shutil
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from core import broadcasts
from core.bulletins import BulletinError
from core.config import PROJECT_ROOT
from core.db import utcnow
from core.models import (
    Broadcast,
    Bulletin,
    BulletinFile,
    BulletinItem,
    OutboxMessage,
    Recipient,
    Station,
)
from core.outbox import TEXT_LIMIT, Part
from core.services import Services

MELAMCHI = "radio-melamchi"  # airs ne and en, serves sindhupalchok-melamchi-4
AIR_DATE = date(2026, 12, 5)


async def approved_bulletin(
    services: Services,
    station_code: str = MELAMCHI,
    *,
    items: dict[str, list[str]] | None = None,
    status: str = "approved",
) -> Bulletin:
    """A bulletin with a script and an OGG Opus voice message per language of the station."""
    media = services.settings.resolved_media_dir
    async with services.db.session() as session:
        station = await session.scalar(select(Station).where(Station.code == station_code))
        assert station is not None
        zone = ZoneInfo(station.timezone)
        bulletin = Bulletin(
            station_id=station.id,
            air_date=AIR_DATE,
            air_at=datetime.combine(AIR_DATE, time(18), tzinfo=zone),
            status=status,
        )
        session.add(bulletin)
        await session.flush()
        for language in station.languages:
            texts = (items or {}).get(language) or [f"{language} intro", f"{language} outro"]
            session.add_all(
                BulletinItem(
                    bulletin_id=bulletin.id, language=language, position=n, kind="report", text=t
                )
                for n, t in enumerate(texts)
            )
            path = f"bulletins/{station_code}/{AIR_DATE}/{station_code}-{AIR_DATE}-{language}.ogg"
            (media / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(PROJECT_ROOT / "content" / "jingles" / "intro.ogg", media / path)
            session.add(
                BulletinFile(
                    bulletin_id=bulletin.id,
                    language=language,
                    format="opus",
                    path=path,
                    size=(media / path).stat().st_size,
                    duration_s=2.0,
                    lufs=-16.0,
                    true_peak_dbtp=-1.5,
                    sha256="0" * 64,
                    engines=["espeak"],
                )
            )
    return bulletin


async def add_group(
    services: Services,
    address: str,
    *,
    communities: tuple[str, ...] = ("sindhupalchok-melamchi-4",),
    language: str | None = "ne",
    status: str = "approved",
    station_code: str | None = None,
    channel: str = "telegram",
) -> Recipient:
    """A community group as staff would have approved it."""
    async with services.db.session() as session:
        station_id = None
        if station_code:
            station_id = await session.scalar(
                select(Station.id).where(Station.code == station_code)
            )
        recipient = Recipient(
            channel=channel,
            address=address,
            kind="group" if address.startswith("-") else "private",
            title=f"Group {address}",
            language=language,
            communities=list(communities),
            station_id=station_id,
            status=status,
        )
        session.add(recipient)
    return recipient


async def start(services: Services, bulletin_id: int) -> Broadcast:
    async with services.db.session() as session:
        return await broadcasts.start_broadcast(session, services.deployment, bulletin_id)


async def rows(services: Services) -> list[OutboxMessage]:
    async with services.db.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_only_approved_groups_of_the_station_are_queued(services: Services) -> None:
    bulletin = await approved_bulletin(services)
    wanted = await add_group(services, "-1001")
    own = await add_group(services, "-1002", communities=(), station_code=MELAMCHI)
    await add_group(services, "-1003", status="pending")
    await add_group(services, "-1004", status="inactive")
    await add_group(services, "-1005", communities=("dhading-gajuri-3",))

    broadcast = await start(services, bulletin.id)

    queued = await rows(services)
    assert broadcast.recipients == 2
    assert [row.recipient_id for row in queued] == [wanted.id, own.id]
    assert [row.dedupe_key for row in queued] == [
        f"broadcast:{broadcast.id}:recipient:{wanted.id}",
        f"broadcast:{broadcast.id}:recipient:{own.id}",
    ]
    assert {row.purpose for row in queued} == {"broadcast"}
    assert {row.broadcast_id for row in queued} == {broadcast.id}


async def test_starting_twice_returns_the_same_broadcast_and_queues_nothing_more(
    services: Services,
) -> None:
    bulletin = await approved_bulletin(services)
    await add_group(services, "-1001")
    first = await start(services, bulletin.id)
    await add_group(services, "-1002")

    again = await start(services, bulletin.id)

    assert again.id == first.id
    assert len(await rows(services)) == 1
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 1


@pytest.mark.parametrize("status", ["draft", "rendered"])
async def test_a_bulletin_not_yet_approved_is_not_sent(services: Services, status: str) -> None:
    bulletin = await approved_bulletin(services, status=status)
    await add_group(services, "-1001")

    with pytest.raises(BulletinError, match=f"is {status}; only an approved"):
        await start(services, bulletin.id)

    assert await rows(services) == []


async def test_an_aired_bulletin_can_still_be_sent(services: Services) -> None:
    bulletin = await approved_bulletin(services, status="aired")
    await add_group(services, "-1001")

    assert (await start(services, bulletin.id)).recipients == 1


async def test_each_group_gets_its_language_or_the_station_first(services: Services) -> None:
    bulletin = await approved_bulletin(
        services, items={"ne": ["नमस्ते", "धन्यवाद"], "en": ["Hello", "Thank you"]}
    )
    await add_group(services, "-1001", language="en")
    await add_group(services, "-1002", language="fr")
    await add_group(services, "-1003", language=None)

    await start(services, bulletin.id)

    english, french, unknown = [[Part.from_json(p) for p in r.parts] for r in await rows(services)]
    assert english[0].text.endswith("Hello\n\nThank you")
    assert english[-1].path is not None and english[-1].path.endswith("-en.ogg")
    assert french[0].text.endswith("नमस्ते\n\nधन्यवाद")
    assert french[-1].path is not None and french[-1].path.endswith("-ne.ogg")
    assert unknown == french


async def test_parts_are_the_titled_script_then_the_voice_message(services: Services) -> None:
    bulletin = await approved_bulletin(services, items={"en": ["First item", "Second item"]})
    await add_group(services, "-1001", language="en")

    await start(services, bulletin.id)

    text, voice = [Part.from_json(p) for p in (await rows(services))[0].parts]
    assert text.kind == "text"
    assert text.text == "Citizen Helpdesk, December 5, 2026\n\nFirst item\n\nSecond item"
    assert voice.kind == "voice"
    assert voice.caption == "Listen to Citizen Helpdesk of December 5, 2026"


async def test_a_long_script_is_cut_below_the_text_limit_between_items(
    services: Services,
) -> None:
    long_items = [f"Item {n} & more: " + "word " * 180 for n in range(10)]
    bulletin = await approved_bulletin(services, items={"en": long_items})
    await add_group(services, "-1001", language="en")

    await start(services, bulletin.id)

    parts = [Part.from_json(p) for p in (await rows(services))[0].parts]
    texts = [part.text for part in parts if part.kind == "text"]
    assert len(texts) >= 3
    assert all(len(t.replace("&", "&amp;")) <= TEXT_LIMIT for t in texts)
    assert all(t.startswith(("Citizen Helpdesk", "Item")) for t in texts)
    assert " ".join(" ".join(texts).split()).count("Item") == 10


async def test_a_language_without_a_voice_message_stops_the_broadcast(
    services: Services,
) -> None:
    bulletin = await approved_bulletin(services)
    async with services.db.session() as session:
        await session.execute(
            BulletinFile.__table__.delete().where(BulletinFile.language == "en")  # type: ignore[attr-defined]
        )
    await add_group(services, "-1001", language="en")

    with pytest.raises(BulletinError, match=r"no en voice message.*bulletin render"):
        await start(services, bulletin.id)

    assert await rows(services) == []


async def test_queue_due_broadcasts_sends_the_day_s_approved_bulletin_once(
    services: Services,
) -> None:
    bulletin = await approved_bulletin(services)
    await add_group(services, "-1001")

    async with services.db.session() as session:
        first = await broadcasts.queue_due_broadcasts(
            session, services.deployment, MELAMCHI, on=AIR_DATE
        )
    async with services.db.session() as session:
        again = await broadcasts.queue_due_broadcasts(
            session, services.deployment, MELAMCHI, on=AIR_DATE
        )
        other_day = await broadcasts.queue_due_broadcasts(
            session, services.deployment, MELAMCHI, on=date(2026, 12, 6)
        )

    assert [b.bulletin_id for b in first] == [bulletin.id]
    assert [b.id for b in again] == [first[0].id]
    assert other_day == []
    assert len(await rows(services)) == 1
    assert first[0].created_at <= utcnow()


async def test_the_stations_own_chat_also_gets_the_aired_button(services: Services) -> None:
    bulletin = await approved_bulletin(services)
    await add_group(services, "-1001")
    await add_group(services, "-1002", communities=(), station_code=MELAMCHI)

    await start(services, bulletin.id)

    community, station_chat = await rows(services)
    assert not any(part.get("buttons") for part in community.parts)
    last = station_chat.parts[-1]
    assert station_chat.parts[:-1] == community.parts
    assert last["kind"] == "text"
    assert [list(button) for button in last["buttons"][0]] == [
        ["हामीले प्रसारण गर्यौं", f"aired:{bulletin.id}"]
    ]
