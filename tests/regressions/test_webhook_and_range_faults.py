"""Faults found by a new user trying the WhatsApp webhook and the station downloads, one
test each: bodies of the wrong shape, unusable timestamps, background work that failed
without a word, and malformed ``Range`` headers."""

# The fixtures of the WhatsApp and station tests are imported (their conftest is not this
# folder's), and each test's parameter of the same name is that fixture, not a redefinition.
# ruff: noqa: F401, F811

import logging
from collections.abc import Callable
from typing import Any

import pytest
from pywa_async.client import WhatsApp
from sqlalchemy import select

from bot import store
from bot.channels.whatsapp_delivery import record_sent
from core.models import ProcessedUpdate, SentMessage, StationDownload
from core.services import Services
from tests.bot.channels.whatsapp.conftest import (
    Service,
    WhatsAppUser,
    graph,
    load,
    service,
    sita,
)
from tests.bot.channels.whatsapp.test_intake import register
from tests.core.station_audio import RenderedFile, client_of, publish
from tests.core.test_stations import (
    BEARER,
    FRIDAY,
    LATEST,
    STATION,
    mp3_of,
    quick,
    rendered,
)
from tests.fakes.graph_api import text_of

# WhatsApp ---------------------------------------------------------------------------------


def value_of(body: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = body["entry"][0]["changes"][0]["value"]
    return value


def wamid_of(body: dict[str, Any]) -> str:
    return str(value_of(body)["messages"][0]["id"])


async def ledger(service: Service) -> list[ProcessedUpdate]:
    async with service.services.db.session() as session:
        return list(await session.scalars(select(ProcessedUpdate)))


def entry_not_a_list(body: dict[str, Any]) -> None:
    body["entry"] = "notalist"


def entry_item_not_an_object(body: dict[str, Any]) -> None:
    body["entry"] = ["entry"]


def changes_not_a_list(body: dict[str, Any]) -> None:
    body["entry"][0]["changes"] = {"value": {}}


def value_not_an_object(body: dict[str, Any]) -> None:
    body["entry"][0]["changes"][0]["value"] = ["value"]


def messages_not_a_list(body: dict[str, Any]) -> None:
    value_of(body)["messages"] = {"id": "wamid.X"}


def message_not_an_object(body: dict[str, Any]) -> None:
    value_of(body)["messages"] = ["hello"]


def message_without_id(body: dict[str, Any]) -> None:
    del value_of(body)["messages"][0]["id"]


def contacts_not_a_list(body: dict[str, Any]) -> None:
    value_of(body)["contacts"] = "Sita"


def contact_not_an_object(body: dict[str, Any]) -> None:
    value_of(body)["contacts"] = [7]


def metadata_not_an_object(body: dict[str, Any]) -> None:
    value_of(body)["metadata"] = "100000000000001"


def statuses_not_a_list(body: dict[str, Any]) -> None:
    value_of(body)["statuses"] = "read"


def status_errors_not_a_list(body: dict[str, Any]) -> None:
    value_of(body)["statuses"] = [{"id": "wamid.Y", "status": "failed", "errors": "x"}]


def second_change_broken(body: dict[str, Any]) -> None:
    # The first change's message is good: it must not be recorded when its body is refused.
    body["entry"][0]["changes"].append({"value": "broken", "field": "messages"})


@pytest.mark.parametrize(
    ("break_body", "named"),
    [
        (entry_not_a_list, "entry"),
        (entry_item_not_an_object, "entry[0]"),
        (changes_not_a_list, "entry[0].changes"),
        (value_not_an_object, "entry[0].changes[0].value"),
        (messages_not_a_list, "entry[0].changes[0].value.messages"),
        (message_not_an_object, "entry[0].changes[0].value.messages[0]"),
        (message_without_id, "entry[0].changes[0].value.messages[0].id"),
        (contacts_not_a_list, "entry[0].changes[0].value.contacts"),
        (contact_not_an_object, "entry[0].changes[0].value.contacts[0]"),
        (metadata_not_an_object, "entry[0].changes[0].value.metadata"),
        (statuses_not_a_list, "entry[0].changes[0].value.statuses"),
        (status_errors_not_a_list, "entry[0].changes[0].value.statuses[0].errors"),
        (second_change_broken, "entry[0].changes[1].value"),
    ],
)
async def test_a_signed_body_of_the_wrong_shape_is_refused_with_400_naming_what_was_wrong(
    sita: WhatsAppUser,
    service: Service,
    caplog: pytest.LogCaptureFixture,
    break_body: Callable[[dict[str, Any]], None],
    named: str,
) -> None:
    body = sita.body("text", text={"body": "/start WA7Q2KX9PR"})
    break_body(body)

    with caplog.at_level(logging.WARNING):
        response = await sita.post(body)
        await service.channel.drain()

    assert response.status_code == 400, response.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(named in w and "malformed" in w for w in warnings), warnings
    assert await ledger(service) == []
    assert service.graph.requests == []


@pytest.mark.parametrize("timestamp", ["notanumber", "", None, "1.5", "99999999999999999999"])
async def test_a_message_with_an_unusable_timestamp_is_answered_with_the_time_of_receipt(
    sita: WhatsAppUser,
    service: Service,
    caplog: pytest.LogCaptureFixture,
    timestamp: str | None,
) -> None:
    await register(sita)
    body = sita.body("text", text={"body": "/report"}, timestamp=timestamp)
    batched = sita.body("text", text={"body": "/help"})
    value_of(body)["messages"].append(value_of(batched)["messages"][0])

    with caplog.at_level(logging.WARNING, logger="bot.channels.whatsapp"):
        replies = await sita.deliver(body)

    assert any("1/6" in text_of(r) for r in replies), [text_of(r) for r in replies]
    rows = {r.update_key: r for r in await ledger(service)}
    assert rows[wamid_of(body)].processed_at is not None
    assert rows[wamid_of(batched)].processed_at is not None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(wamid_of(body) in w and "timestamp" in w for w in warnings), warnings


async def test_a_status_with_an_unusable_timestamp_is_applied_at_the_time_of_receipt(
    sita: WhatsAppUser, service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    body = load("status_read")
    status = value_of(body)["statuses"][0]
    status["timestamp"] = "notanumber"
    async with service.services.db.session() as session:
        await record_sent(session, str(status["id"]), sita.number, "reply")

    with caplog.at_level(logging.WARNING, logger="bot.channels.whatsapp"):
        response = await sita.post(body)

    assert response.status_code == 200, response.text
    async with service.services.db.session() as session:
        row = await session.scalar(
            select(SentMessage).where(SentMessage.external_id == status["id"])
        )
    assert row is not None and row.status == "read" and row.status_at is not None
    assert row.status_at.year >= 2026
    assert any("notanumber" in r.getMessage() for r in caplog.records)


def failing_for(monkeypatch: pytest.MonkeyPatch, doomed: set[str]) -> None:
    """pywa fails on the messages whose wamid is in ``doomed``, as a bug in it would."""
    handle = WhatsApp.webhook_update_handler

    async def failing(self: WhatsApp, update: bytes, *args: Any, **kwargs: Any) -> Any:
        if any(wamid.encode() in update for wamid in doomed):
            raise RuntimeError("pywa broke")
        return await handle(self, update, *args, **kwargs)

    monkeypatch.setattr(WhatsApp, "webhook_update_handler", failing)


async def test_background_work_that_fails_is_logged_with_its_wamid_and_kept_for_replay(
    sita: WhatsAppUser,
    service: Service,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(sita)
    body = sita.body("text", text={"body": "/report"})
    failing_for(monkeypatch, {wamid_of(body)})

    with caplog.at_level(logging.ERROR, logger="bot.channels.whatsapp"):
        response = await sita.post(body)
        await service.channel.drain()

    assert response.status_code == 200
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any(wamid_of(body) in r.getMessage() and r.exc_info for r in failures), failures
    [row] = [r for r in await ledger(service) if r.update_key == wamid_of(body)]
    assert row.processed_at is None and row.payload is not None


async def test_a_replayed_message_that_fails_does_not_stop_the_replay_of_the_next(
    sita: WhatsAppUser,
    service: Service,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(sita)
    doomed = sita.body("text", text={"body": "/help"})
    fine = sita.body("text", text={"body": "/report"})
    # What accept() leaves behind when the process dies before the background step.
    async with service.services.db.session() as session:
        await store.record_update(session, "whatsapp", wamid_of(doomed), doomed)
    async with service.services.db.session() as session:
        await store.record_update(session, "whatsapp", wamid_of(fine), fine)
    failing_for(monkeypatch, {wamid_of(doomed)})
    sita.new()

    with caplog.at_level(logging.ERROR, logger="bot.channels.whatsapp"):
        await service.stop()
        await service.start()

    rows = {r.update_key: r for r in await ledger(service)}
    assert rows[wamid_of(fine)].processed_at is not None
    assert any("1/6" in text_of(r) for r in sita.new())
    assert any(wamid_of(doomed) in r.getMessage() for r in caplog.records)


# Station downloads ------------------------------------------------------------------------


async def log_rows(services: Services) -> list[StationDownload]:
    async with services.db.session() as session:
        rows = await session.scalars(select(StationDownload).order_by(StationDownload.id))
        return list(rows)


@pytest.mark.parametrize(
    "asked",
    [
        "bytes=5-2",
        "items=0-5",
        "bytes=abc",
        "bytes=",
        "bytes=0-1,x",
        "0-5",
        "bytes=1-2-3",
        "bytes=999999999-2",
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_malformed_range_is_ignored_and_the_whole_file_sent_and_logged(
    quick: Services,
    rendered: list[RenderedFile],
    caplog: pytest.LogCaptureFixture,
    asked: str,
    method: str,
) -> None:
    bulletin = await publish(quick, rendered, STATION, FRIDAY)
    audio = mp3_of(rendered)

    with caplog.at_level(logging.WARNING, logger="core.stations"):
        async with client_of(quick) as client:
            response = await client.request(method, LATEST, headers={**BEARER, "Range": asked})

    assert response.status_code == 200, response.text
    assert "content-range" not in response.headers
    assert response.headers["content-length"] == str(len(audio))
    assert response.content == (audio if method == "GET" else b"")
    [row] = await log_rows(quick)
    sent = len(audio) if method == "GET" else 0
    assert (row.method, row.status_code, row.byte_range, row.bytes_sent) == (
        method,
        200,
        asked,
        sent,
    )
    assert row.bulletin_id == bulletin
    assert any(asked in r.getMessage() and STATION in r.getMessage() for r in caplog.records)


async def test_valid_ranges_keep_206_and_unsatisfiable_ones_416(
    quick: Services,
    rendered: list[RenderedFile],
) -> None:
    await publish(quick, rendered, STATION, FRIDAY)
    audio = mp3_of(rendered)
    cases = ["Bytes=0-0", "bytes = 10-19", "bytes=0-0, 5-5", "bytes=999999999-"]

    async with client_of(quick) as client:
        responses = [
            await client.get(LATEST, headers={**BEARER, "Range": asked}) for asked in cases
        ]

    assert [r.status_code for r in responses] == [206, 206, 206, 416]
    assert responses[1].content == audio[10:20]
    assert responses[3].headers["content-range"] == f"bytes */{len(audio)}"
    rows = await log_rows(quick)
    assert [(r.status_code, r.byte_range) for r in rows] == [
        (206, "Bytes=0-0"),
        (206, "bytes = 10-19"),
        (206, "bytes=0-0, 5-5"),
        (416, "bytes=999999999-"),
    ]
