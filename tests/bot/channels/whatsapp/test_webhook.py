"""The WhatsApp webhook itself: Meta's verification handshake, signatures over the raw
body, the ledger that lets each wamid through once, and the replay after a crash."""

import asyncio
import json
import logging

import pytest
from sqlalchemy import func, select

from bot import store
from core.models import ProcessedUpdate, Report
from tests.bot.channels.whatsapp.conftest import (
    VERIFY_TOKEN,
    Service,
    WhatsAppUser,
    meta_encoding,
)
from tests.bot.channels.whatsapp.test_intake import register
from tests.fakes.graph_api import text_of


async def ledger_rows(service: Service) -> list[ProcessedUpdate]:
    async with service.services.db.session() as session:
        return list(await session.scalars(select(ProcessedUpdate)))


def first_questions(user: WhatsAppUser) -> int:
    """How many times the report's first question was asked since last looked."""
    return sum("1/6" in text_of(request) for request in user.new())


async def test_verification_handshake_answers_the_challenge_only_for_our_token(
    service: Service,
) -> None:
    assert service.client is not None
    good = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "8731"}
    bad = {**good, "hub.verify_token": "guess"}

    answered = await service.client.get("/webhooks/whatsapp", params=good)
    refused = await service.client.get("/webhooks/whatsapp", params=bad)
    tokenless = await service.client.get("/webhooks/whatsapp", params={"hub.challenge": "8731"})

    assert (answered.status_code, answered.text) == (200, "8731")
    for response in (refused, tokenless):
        assert response.status_code == 403 and "8731" not in response.text


async def test_forged_or_missing_signature_is_refused_and_logged(
    sita: WhatsAppUser, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    body = sita.body("text", text={"body": "/start WA7Q2KX9PR"})

    with caplog.at_level(logging.WARNING, logger="core.web"):
        forged = await sita.post(body, sign="not-the-app-secret")
        missing = await sita.post(body, sign=None)
        await service.channel.drain()

    assert forged.status_code == 403 and missing.status_code == 401
    assert await ledger_rows(service) == []
    assert service.graph.requests == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 2 and "wrong" in refusals[0] and "missing" in refusals[1]


async def test_signature_is_checked_over_the_raw_body_with_at_sign_and_devanagari(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    text = "स्वास्थ्य चौकी बन्द छ; सम्पर्क: ward3@gajuri.np"
    raw = meta_encoding(sita.body("text_with_at", text={"body": text}))
    assert b"\\u0040" in raw and b"\\u0938" in raw, "the body is not encoded as Meta does"

    response = await sita.post(raw)
    await service.channel.drain()

    assert response.status_code == 200
    async with service.services.db.session() as session:
        conversation = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
    assert conversation == 4
    [reply] = sita.new()
    assert "3" in text_of(reply) or "३" in text_of(reply), "the text was not taken as answer"


async def test_malformed_body_with_a_valid_signature_is_refused_with_400(
    sita: WhatsAppUser,
) -> None:
    not_json = await sita.post(b"{not json")
    not_whatsapp = await sita.post(json.dumps({"object": "page", "entry": []}).encode())

    assert (not_json.status_code, not_whatsapp.status_code) == (400, 400)


async def test_a_redelivered_message_is_handled_once(
    any_db_service: Service,
) -> None:
    sita = WhatsAppUser(any_db_service)
    await register(sita)
    body = sita.body("text", text={"body": "/report"})

    first = await sita.post(body)
    await any_db_service.channel.drain()
    again = await sita.post(body)
    await any_db_service.channel.drain()

    assert (first.status_code, again.status_code) == (200, 200)
    assert first_questions(sita) == 1


async def test_two_identical_deliveries_at_the_same_moment_are_handled_once(
    any_db_service: Service,
) -> None:
    sita = WhatsAppUser(any_db_service)
    await register(sita)
    body = sita.body("text", text={"body": "/report"})

    responses = await asyncio.gather(*(sita.post(body) for _ in range(4)))
    await any_db_service.channel.drain()

    assert [r.status_code for r in responses] == [200] * 4
    assert first_questions(sita) == 1
    rows = await ledger_rows(any_db_service)
    assert len(rows) == 2 and all(r.processed_at is not None for r in rows)


async def test_a_message_recorded_before_a_crash_is_handled_at_the_next_start(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    body = sita.body("text", text={"body": "स्वास्थ्य चौकीमा औषधि छैन"})
    key = body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    # What accept() leaves behind when the process dies before the background step.
    async with service.services.db.session() as session:
        await store.record_update(session, "whatsapp", key, body)

    await service.stop()
    await service.start()

    [row] = [r for r in await ledger_rows(service) if r.update_key == key]
    assert row.processed_at is not None and row.payload is None
    assert "3" in text_of(service.graph.messages(sita.number)[-1])
    async with service.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Report)) == 0


async def test_the_webhook_answers_before_the_conversation_step_is_done(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    gate = asyncio.Event()
    handle = service.services.engine.handle

    async def slow_handle(*args: object, **kwargs: object) -> object:
        await gate.wait()
        return await handle(*args, **kwargs)  # type: ignore[arg-type]

    service.services.engine.handle = slow_handle  # type: ignore[method-assign,assignment]
    response = await asyncio.wait_for(sita.post(sita.body("text", text={"body": "/help"})), 2)
    assert response.status_code == 200 and sita.new() == []

    gate.set()
    await service.channel.drain()
    assert len(sita.new()) >= 1
