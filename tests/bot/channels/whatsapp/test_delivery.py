"""What becomes of messages sent through WhatsApp: statuses that only move forward with
Meta's timestamps, failures after acceptance, errors at send time, and bulletins to
opted-in numbers."""

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.channels.whatsapp_delivery import CHANNEL, WhatsAppSender
from core import broadcasts
from core.config import WhatsAppTemplate
from core.models import Cfa, ChannelIdentity, OutboxMessage, Recipient, SentMessage
from core.outbox import OutboxWorker, Part, enqueue
from tests.bot.channels.whatsapp.conftest import Service, WhatsAppUser, load
from tests.bot.channels.whatsapp.test_intake import deliver_outbox, register, set_last_inbound
from tests.core.test_broadcasts import approved_bulletin

STATUS_WAMID = "wamid.HBgLMjIzNzAwMDAwMDAVAgASGBQzQTAwMDAwMDAwMDAwMDAw0950AA=="
FAILED_WAMID = "wamid.HBgLMjIzNzAwMDAwMDAVAgASGBQzQTAwMDAwMDAwMDAwMDAw0951AA=="


async def queue_text(service: Service, key: str, address: str, purpose: str = "reminder") -> None:
    async with service.services.db.session() as session:
        await enqueue(
            session,
            dedupe_key=key,
            channel="whatsapp",
            address=address,
            purpose=purpose,
            parts=[Part("text", text="Please answer the monthly survey.")],
            cfa_id=1,
        )


async def sent_as(service: Service, wamid: str, address: str) -> None:
    """Give the last sent message the wamid the status fixtures name."""
    async with service.services.db.session() as session:
        row = await session.scalar(
            select(SentMessage)
            .where(SentMessage.address == address)
            .order_by(SentMessage.id.desc())
        )
        assert row is not None
        row.external_id = wamid


async def sent_message(service: Service, wamid: str) -> SentMessage:
    async with service.services.db.session() as session:
        row = await session.scalar(select(SentMessage).where(SentMessage.external_id == wamid))
    assert row is not None
    return row


async def test_delivered_after_read_stays_read_with_metas_time(any_db_service: Service) -> None:
    service = any_db_service
    sita = WhatsAppUser(service, number="22370000000")
    await register(sita)
    await queue_text(service, "reminder:1", sita.number)
    await deliver_outbox(service)
    await sent_as(service, STATUS_WAMID, sita.number)

    for name in ("status_sent", "status_read", "status_delivered_late"):
        assert (await sita.post(load(name))).status_code == 200

    row = await sent_message(service, STATUS_WAMID)
    assert row.status == "read"
    assert row.status_at == datetime.fromtimestamp(1796025760, UTC)


async def test_failed_131047_is_recorded_failed_with_the_platform_time_and_fails_the_row(
    any_db_service: Service,
) -> None:
    service = any_db_service
    sita = WhatsAppUser(service, number="22370000000")
    await register(sita)
    await queue_text(service, "reminder:2", sita.number)
    await deliver_outbox(service)
    await sent_as(service, FAILED_WAMID, sita.number)

    await sita.post(load("status_failed_window"))
    late = load("status_delivered_late")
    late["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = FAILED_WAMID
    await sita.post(late)

    row = await sent_message(service, FAILED_WAMID)
    assert (row.status, row.error_code) == ("failed", 131047)
    assert row.status_at == datetime.fromtimestamp(1796112000, UTC)
    assert row.error_detail is not None and "24 hours" in row.error_detail
    async with service.services.db.session() as session:
        outbox = await session.scalar(select(OutboxMessage))
    assert outbox is not None and (outbox.state, outbox.error_code) == ("failed", 131047)


async def test_errors_at_send_time_are_classified_for_the_outbox(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    service.graph.fail_next(131026, "Message undeliverable")
    await queue_text(service, "reminder:3", sita.number)
    service.graph.fail_next(130429, "Rate limit hit")
    await queue_text(service, "reminder:4", "9779800000099")

    await deliver_outbox(service)

    async with service.services.db.session() as session:
        rows = {r.address: r for r in await session.scalars(select(OutboxMessage))}
    assert rows[sita.number].state == "not_found"
    assert (rows["9779800000099"].state, rows["9779800000099"].error_code) == ("queued", 429)


async def test_outside_the_window_without_a_template_the_part_fails_without_a_send(
    service: Service,
) -> None:
    french = "22370000077"
    cfa_id = await _window(service, french, hours_ago=48, language="fr")
    async with service.services.db.session() as session:
        # Only Nepali templates are configured.
        await enqueue(
            session,
            dedupe_key="reminder:fr",
            channel="whatsapp",
            address=french,
            purpose="reminder",
            parts=[Part("text", text="Merci de répondre.")],
            cfa_id=cfa_id,
        )

    await deliver_outbox(service)

    async with service.services.db.session() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.state == "failed" and "template" in (row.last_error or "")
    assert service.graph.requests == []


async def add_number(service: Service, address: str, language: str) -> Recipient:
    async with service.services.db.session() as session:
        recipient = Recipient(
            channel="whatsapp",
            address=address,
            kind="group",
            title=f"opted-in {address}",
            language=language,
            communities=["sindhupalchok-melamchi-4"],
            status="approved",
        )
        session.add(recipient)
        await session.flush()
        return recipient


async def test_a_bulletin_reaches_opted_in_numbers_with_one_upload_of_its_opus_voice(
    service: Service, tmp_path: Path
) -> None:
    services = service.services
    bulletin = await approved_bulletin(services, items={"en": ["The school reopens on Monday."]})
    inside, outside = "9779800000011", "9779800000012"
    for number in (inside, outside):
        await add_number(service, number, "en")
    async with services.db.session() as session:
        await broadcasts.start_broadcast(session, services.deployment, bulletin.id)
    await _window(service, inside, hours_ago=1)

    await deliver_outbox(service)

    inside_sends = service.graph.messages(inside)
    assert [r.type for r in inside_sends] == ["text", "audio", "text"]
    assert inside_sends[1].body["audio"]["voice"] is True
    uploads = [r for r in service.graph.requests if r.path.endswith("/media")]
    assert len(uploads) == 1
    # No English broadcast template is configured, so outside the window nothing goes.
    assert service.graph.messages(outside) == []
    async with services.db.session() as session:
        states = {r.address: r.state for r in await session.scalars(select(OutboxMessage))}
    assert states == {inside: "sent", outside: "failed"}


async def _window(service: Service, address: str, hours_ago: float, language: str = "en") -> int:
    """Make ``address`` someone who wrote ``hours_ago`` (the window is kept per identity)."""
    async with service.services.db.session() as session:
        cfa = Cfa(name="listener", community_id=1, language=language, status="active")
        session.add(cfa)
        await session.flush()
        session.add(ChannelIdentity(cfa_id=cfa.id, channel=CHANNEL, address=address))
    await set_last_inbound(service, address, hours_ago)
    return cfa.id


async def test_a_template_language_meta_does_not_know_fails_the_part_unsent(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await set_last_inbound(service, sita.number, hours_ago=30)
    await queue_text(service, "reminder:ne", sita.number)
    templates = {"reminder": {"ne": WhatsAppTemplate(name="survey_reminder_ne", language="ne")}}
    settings = service.settings.model_copy(update={"whatsapp_templates": templates})
    sender = WhatsAppSender(service.channel.wa, service.services.db, settings)
    before = len(service.graph.requests)

    worker = OutboxWorker(
        service.services.db, settings, {"whatsapp": sender}, settings.resolved_media_dir
    )
    await worker.deliver_due()

    async with service.services.db.session() as session:
        row = await session.scalar(select(OutboxMessage))
    assert row is not None and row.state == "failed" and "'ne'" in (row.last_error or "")
    assert len(service.graph.requests) == before
