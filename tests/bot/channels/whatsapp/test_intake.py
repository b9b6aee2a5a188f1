"""CFAs reporting through WhatsApp: the real app and pywa, webhook bodies in Meta's shape,
the Graph API faked at the HTTP layer."""

from datetime import timedelta

from sqlalchemy import func, select, update

from bot.channels.whatsapp_delivery import WhatsAppSender
from core.db import utcnow
from core.models import ChannelIdentity, Media, OutboxMessage, Report, SentMessage
from core.outbox import OutboxWorker, Part, enqueue
from tests.bot.channels.whatsapp.conftest import Service, WhatsAppUser
from tests.fakes.graph_api import text_of
from tests.helpers import make_invite


async def register(user: WhatsAppUser, code: str = "WA7Q2KX9PR") -> list[str]:
    await make_invite(user.service.services, code, language="ne", name="Sita Tamang")
    return [text_of(r) for r in await user.say(f"/start {code}")]


async def answer_monthly_survey(sita: WhatsAppUser) -> list[str]:
    await reach_monthly_review(sita)
    return [text_of(r) for r in await sita.tap("review:send")]


async def reach_monthly_review(sita: WhatsAppUser) -> None:
    await sita.tap("start:monthly")
    await sita.tap("a:water_supply:irregular")
    third = await sita.say("१२")
    assert "3" in text_of(third[-1]) or "३" in text_of(third[-1])
    await sita.tap("a:health_post_open:yes")
    await sita.tap("toggle:problems:migration")
    await sita.tap("done:problems")
    await sita.say("४०")
    await sita.tap("skip:last_public_meeting")
    await sita.deliver(sita.body("location"))
    review = await sita.say("धारा बन्द, contact: ward@gajuri.np")
    assert "ward@gajuri.np" in text_of(review[-1])


async def set_last_inbound(service: Service, number: str, hours_ago: float) -> None:
    async with service.services.db.session() as session:
        await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.channel == "whatsapp", ChannelIdentity.address == number)
            .values(last_inbound_at=utcnow() - timedelta(hours=hours_ago))
        )


async def deliver_outbox(service: Service) -> None:
    settings = service.settings
    sender = WhatsAppSender(service.channel.wa, service.services.db, settings)
    worker = OutboxWorker(
        service.services.db, settings, {"whatsapp": sender}, settings.resolved_media_dir
    )
    await worker.deliver_due()


async def test_invited_cfa_completes_survey_and_report_then_gets_status_as_template(
    sita: WhatsAppUser, service: Service
) -> None:
    welcome = await register(sita)
    assert "Sita Tamang" in welcome[0]

    receipt = await answer_monthly_survey(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    await sita.say("स्वास्थ्य चौकीमा औषधि छैन")
    await sita.say("गजुरी बजार")
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    await sita.tap("skip:voice_note")
    second = [text_of(r) for r in await sita.tap("review:send")]

    async with service.services.db.session() as session:
        reports = list(await session.scalars(select(Report).order_by(Report.id)))
        cfa_id = reports[0].cfa_id
    assert [r.kind for r in reports] == ["survey", "report"]
    assert reports[0].reference in receipt[0] and reports[1].reference in second[0]
    assert reports[0].channel == "whatsapp" and reports[0].answers["migrants_abroad"] == 40

    await set_last_inbound(service, sita.number, hours_ago=30)
    async with service.services.db.session() as session:
        await enqueue(
            session,
            dedupe_key=f"status:{reports[1].reference}",
            channel="whatsapp",
            address=sita.number,
            purpose="notification",
            parts=[Part("text", text=f"{reports[1].reference}:\nvalidated")],
            cfa_id=cfa_id,
        )
    await deliver_outbox(service)

    [notice] = sita.new()
    template = notice.body["template"]
    assert notice.type == "template" and template["name"] == "report_status_ne"
    assert template["language"] == {"code": "en"}
    parameter = template["components"][0]["parameters"][0]["text"]
    assert parameter == f"{reports[1].reference}: validated"
    async with service.services.db.session() as session:
        row = await session.scalar(select(OutboxMessage))
        sent = await session.scalar(select(SentMessage).where(SentMessage.kind == "template"))
    assert row is not None and row.state == "sent"
    assert sent is not None and sent.outbox_id == row.id


async def test_reminder_inside_the_window_goes_as_free_form_text(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await set_last_inbound(service, sita.number, hours_ago=23)
    async with service.services.db.session() as session:
        await enqueue(
            session,
            dedupe_key="reminder:1",
            channel="whatsapp",
            address=sita.number,
            purpose="reminder",
            parts=[Part("text", text="Please answer the monthly survey.")],
        )
    await deliver_outbox(service)

    [sent] = sita.new()
    assert sent.type == "text" and sent.body["text"]["body"] == "Please answer the monthly survey."


async def test_reminder_outside_the_window_goes_as_its_template(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await set_last_inbound(service, sita.number, hours_ago=24.5)
    async with service.services.db.session() as session:
        await enqueue(
            session,
            dedupe_key="reminder:2",
            channel="whatsapp",
            address=sita.number,
            purpose="reminder",
            parts=[Part("text", text="Please answer the monthly survey.")],
            cfa_id=1,
        )
    await deliver_outbox(service)

    [sent] = sita.new()
    assert sent.type == "template" and sent.body["template"]["name"] == "survey_reminder_ne"


async def test_voice_note_and_photo_are_downloaded_and_attached(
    sita: WhatsAppUser, service: Service
) -> None:
    service.graph.media["photo-1"] = (b"\xff\xd8jpeg", "image/jpeg")
    service.graph.media["voice-1"] = (b"OggS-opus", "audio/ogg; codecs=opus")
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    await sita.say("स्वास्थ्य चौकीमा औषधि छैन")
    await sita.deliver(sita.body("location"))
    await sita.tap("a:urgency:high")
    photo = {"id": "photo-1", "mime_type": "image/jpeg", "sha256": "x"}
    await sita.deliver(sita.body("voice", type="image", image=photo, audio=None))
    voice = {"id": "voice-1", "mime_type": "audio/ogg; codecs=opus", "sha256": "x", "voice": True}
    await sita.deliver(sita.body("voice", audio=voice))
    await sita.tap("review:send")

    async with service.services.db.session() as session:
        media = list(await session.scalars(select(Media).order_by(Media.id)))
    assert [(m.kind, m.mime_type, m.report_id is not None) for m in media] == [
        ("photo", "image/jpeg", True),
        ("voice", "audio/ogg", True),
    ]
    stored = service.settings.resolved_media_dir / media[1].path
    assert stored.read_bytes() == b"OggS-opus" and stored.suffix == ".ogg"
    downloads = [r.path for r in service.graph.requests if r.method == "GET"]
    assert downloads == ["/photo-1", "media:photo-1", "/voice-1", "media:voice-1"]


async def test_media_nobody_asked_for_is_not_downloaded(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    texts = [text_of(r) for r in await sita.deliver(sita.body("voice"))]

    assert texts, "the voice note got no answer"
    assert [r for r in service.graph.requests if r.method == "GET"] == []


async def test_unsupported_message_is_explained_and_the_question_kept(
    sita: WhatsAppUser,
) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")

    answer = [text_of(r) for r in await sita.deliver(sita.body("unsupported"))]
    sticker = {"id": "st-1", "mime_type": "image/webp", "sha256": "x", "animated": False}
    known = await sita.deliver(sita.body("text", type="sticker", sticker=sticker, text=None))
    # A type that neither pywa nor we know yet: pywa cannot build a message of it.
    future = await sita.deliver(sita.body("text", type="hologram", hologram={}, text=None))

    for texts in (answer, [text_of(r) for r in known], [text_of(r) for r in future]):
        assert len(texts) == 2, texts
        assert "2" in texts[-1] or "२" in texts[-1], texts


async def test_location_answers_a_location_question(sita: WhatsAppUser, service: Service) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    await sita.say("स्वास्थ्य चौकीमा औषधि छैन")
    await sita.deliver(sita.body("location"))
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    await sita.tap("skip:voice_note")
    await sita.tap("review:send")

    async with service.services.db.session() as session:
        report = await session.scalar(select(Report))
    assert report is not None
    assert (report.location_lat, report.location_lon) == (14.4917, -4.1958)


async def test_inbound_timestamp_is_the_platforms_and_never_moves_back(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await sita.deliver(sita.body("text", timestamp="1796025600", text={"body": "/help"}))

    async with service.services.db.session() as session:
        last = await session.scalar(select(ChannelIdentity.last_inbound_at))
        count = await session.scalar(select(func.count()).select_from(ChannelIdentity))
    assert count == 1 and last is not None
    assert last > utcnow() - timedelta(minutes=5), "an old redelivery moved the window back"
