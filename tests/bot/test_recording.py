"""A registered journalist reads a bulletin's script into a voice note through the bot."""

from datetime import UTC, datetime

from sqlalchemy import select

from bot.messages import Incoming, Kind, MediaFile
from core import bulletins
from core.models import Recording
from core.services import Services
from tests.helpers import Person, make_invite, make_report

VOICE = MediaFile(
    path="incoming/2026/12/reading.ogg", mime_type="audio/ogg", size=9000, sha256="0" * 64
)


async def bulletin_id(services: Services) -> int:
    await make_report(services, summary={"ne": "गजुरीमा पानी आएन।"})
    async with services.db.session() as session:
        composed = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            datetime(2026, 12, 4, 13, 15, tzinfo=UTC),
        )
    return composed.bulletin.id


async def journalist(services: Services, role: str = "journalist") -> Person:
    await make_invite(services, f"JRN-{role}", language="en", role=role)
    person = Person(services, address=f"j-{role}")
    await person.say(f"/start JRN-{role}")
    return person


async def test_journalist_records_a_bulletin_with_a_voice_note(services: Services) -> None:
    number = await bulletin_id(services)
    person = await journalist(services)

    prompt = await person.say(f"/record {number} ne")
    assert "गजुरीमा पानी आएन।" in prompt[-1].text
    assert await services.engine.wants_media("terminal", person.address, Kind.VOICE)
    done = await person.send(Incoming(Kind.VOICE, media=VOICE))

    assert "saved" in done[0].text
    async with services.db.session() as session:
        recording = await session.scalar(select(Recording))
    assert recording is not None and recording.language == "ne" and recording.bulletin_id == number
    assert recording.path == VOICE.path and recording.source == "terminal"


async def test_a_reporter_cannot_record_and_a_wrong_language_is_explained(
    services: Services,
) -> None:
    number = await bulletin_id(services)
    reporter = await journalist(services, role="reporter")
    writer = await journalist(services)

    refused = await reporter.say(f"/record {number} ne")
    wrong = await writer.say(f"/record {number} bm")

    assert "do not know that command" in refused[0].text
    assert "does not broadcast in bm" in wrong[0].text
