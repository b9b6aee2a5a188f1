"""Broadcasts to Telegram groups: real aiogram against the fake Bot API over HTTP, with
Telegram's own error bodies, and a crash of ``helpdesk outbox deliver`` mid-broadcast."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.channels.telegram import create_bot
from bot.channels.telegram_delivery import TelegramSender
from core import broadcasts
from core.config import PROJECT_ROOT
from core.models import OutboxMessage, Recipient
from core.outbox import CAPTION_LIMIT, TEXT_LIMIT, DeliveryStats, OutboxWorker, Part, enqueue
from core.services import Services
from tests.core.test_broadcasts import add_group, approved_bulletin
from tests.fakes.bot_api import Call, FakeBotApi, load_error, too_many_requests

HELPDESK = str(Path(sys.executable).parent / "helpdesk")
UPGRADED_TO = -1004123456789  # migrate_to_chat_id in errors/group_upgraded.json
FAST = {
    "outbox_overall_per_second": 10_000.0,
    "outbox_group_per_minute": 600_000.0,
    "outbox_chat_per_second": 10_000.0,
    "outbox_poll_seconds": 0.05,
}


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        yield fake


@pytest.fixture
async def sender(api: FakeBotApi) -> AsyncIterator[TelegramSender]:
    telegram = TelegramSender(create_bot(api.token, api.base_url))
    yield telegram
    await telegram.close()


async def deliver(services: Services, sender: TelegramSender, **rates: float) -> DeliveryStats:
    settings = services.settings.model_copy(update={**FAST, **rates})
    worker = OutboxWorker(services.db, settings, {"telegram": sender}, settings.resolved_media_dir)
    try:
        return await worker.deliver_until_empty()
    finally:
        await worker.lease.release()


async def broadcast(services: Services, bulletin_id: int) -> int:
    async with services.db.session() as session:
        started = await broadcasts.start_broadcast(session, services.deployment, bulletin_id)
    return started.id


async def recipient(services: Services, recipient_id: int) -> Recipient:
    async with services.db.session() as session:
        found = await session.get(Recipient, recipient_id)
    assert found is not None
    return found


async def ledger(services: Services) -> list[OutboxMessage]:
    async with services.db.session() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def sends_to(api: FakeBotApi, chat_id: int) -> list[Call]:
    return [
        call
        for call in api.calls
        if call.method in ("sendMessage", "sendVoice") and call.params.get("chat_id") == chat_id
    ]


async def test_every_group_gets_the_long_script_cut_to_fit_then_one_upload_of_the_voice(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    items = [f"Report {n} from the ward & the school: " + "words " * 150 for n in range(6)]
    bulletin = await approved_bulletin(services, items={"en": items})
    chats = [-1001, -1002, 700100203]
    for chat in chats:
        await add_group(services, str(chat), language="en")
    await broadcast(services, bulletin.id)

    stats = await deliver(services, sender)

    texts = [len(call.params["text"]) for chat in chats for call in sends_to(api, chat)[:-1]]
    assert sum(texts) > 3 * 5000 and max(texts) <= TEXT_LIMIT
    voices = api.calls_of("sendVoice")
    assert len(voices) == 3 and sender.uploads == 1
    assert "voice" in voices[0].files
    assert {v.params["voice"] for v in voices[1:]} == {"fake-voice-1"}
    assert all(v.params["caption"].startswith("Listen to Citizen Helpdesk") for v in voices)
    for chat in chats:
        assert [c.method for c in sends_to(api, chat)][-1] == "sendVoice"
    assert stats.sent == 3
    assert {(r.state, r.parts_sent) for r in await ledger(services)} == {("sent", 3)}


async def test_a_caption_over_the_limit_follows_the_voice_message_as_text(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    await approved_bulletin(services)
    caption = "A very long caption. " * 80
    async with services.db.session() as session:
        await enqueue(
            session,
            dedupe_key="long-caption",
            channel="telegram",
            address="-1001",
            purpose="notification",
            parts=[Part("voice", path=_voice_path(), caption=caption)],
        )

    await deliver(services, sender)

    voice, text = sends_to(api, -1001)
    assert len(caption) > CAPTION_LIMIT
    assert voice.method == "sendVoice" and "caption" not in voice.params
    assert text.method == "sendMessage" and text.params["text"] == caption


@pytest.mark.parametrize("error", ["blocked_by_user", "kicked_from_supergroup"])
async def test_a_chat_that_refuses_the_bot_retires_its_recipient_and_is_not_retried(
    services: Services, api: FakeBotApi, sender: TelegramSender, error: str
) -> None:
    bulletin = await approved_bulletin(services)
    gone = await add_group(services, "-1001")
    fine = await add_group(services, "-1002")
    await broadcast(services, bulletin.id)
    await queue_reminder(services, "-1001")
    api.answer_chats({-1001: error})

    stats = await deliver(services, sender)
    again = await deliver(services, sender)

    assert len(sends_to(api, -1001)) == 1
    assert len(sends_to(api, -1002)) == 2
    retired = await recipient(services, gone.id)
    assert retired.status == "inactive"
    assert retired.status_reason == f"blocked: {load_error(error)['description']}"
    assert (await recipient(services, fine.id)).status == "approved"
    states = {(r.address, r.purpose): (r.state, r.error_code) for r in await ledger(services)}
    assert states[("-1001", "broadcast")] == ("blocked", 403)
    assert states[("-1001", "reminder")] == ("blocked", 403)
    assert states[("-1002", "broadcast")] == ("sent", None)
    assert (stats.blocked, again.parts) == (1, 0)


async def test_chat_not_found_is_recorded_and_not_retried(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    bulletin = await approved_bulletin(services)
    gone = await add_group(services, "-1001")
    await broadcast(services, bulletin.id)
    api.answer_chats({-1001: "chat_not_found"})

    stats = await deliver(services, sender)

    assert len(sends_to(api, -1001)) == 1
    row = (await ledger(services))[0]
    assert (row.state, row.error_code, row.last_error) == (
        "not_found",
        400,
        "not_found: Bad Request: chat not found",
    )
    assert (await recipient(services, gone.id)).status == "inactive"
    assert stats.not_found == 1


async def test_an_upgraded_group_is_followed_to_its_new_id_and_sent_once(
    services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    bulletin = await approved_bulletin(services)
    group = await add_group(services, "-555")
    await broadcast(services, bulletin.id)
    api.answer_chats({-555: "group_upgraded"})

    stats = await deliver(services, sender)

    assert len(sends_to(api, -555)) == 1
    assert [c.method for c in sends_to(api, UPGRADED_TO)] == ["sendMessage", "sendVoice"]
    assert all(c.status == 200 for c in sends_to(api, UPGRADED_TO))
    assert (await recipient(services, group.id)).address == str(UPGRADED_TO)
    row = (await ledger(services))[0]
    assert (row.address, row.state, row.parts_sent) == (str(UPGRADED_TO), "sent", 2)
    assert stats.migrated == 1


async def test_a_group_that_moves_again_after_its_move_is_given_up(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    bulletin = await approved_bulletin(services)
    await add_group(services, "-555")
    await broadcast(services, bulletin.id)
    api.answer_chats({-555: "group_upgraded", UPGRADED_TO: "group_upgraded"})

    await deliver(services, sender)

    assert len(sends_to(api, -555)) == 1 and len(sends_to(api, UPGRADED_TO)) == 1
    assert (await ledger(services))[0].state == "failed"


async def test_a_429_holds_the_chat_at_least_retry_after_and_then_sends(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    bulletin = await approved_bulletin(services)
    await add_group(services, "-1001")
    await add_group(services, "-1002")
    await broadcast(services, bulletin.id)
    api.fail_next("sendMessage", too_many_requests(1), chat_id=-1001)

    stats = await deliver(services, sender)

    limited, *accepted = sends_to(api, -1001)
    assert limited.status == 429 and [c.status for c in accepted] == [200, 200]
    assert accepted[0].at - limited.at >= 1.0
    other = sends_to(api, -1002)
    assert other[-1].at - limited.at < 1.0
    assert stats.rate_limited == 1 and stats.sent == 2


async def test_random_429s_delay_but_never_duplicate_or_lose(
    sqlite_services: Services, api: FakeBotApi, sender: TelegramSender
) -> None:
    services = sqlite_services
    bulletin = await approved_bulletin(services)
    chats = [str(700200000 + n) for n in range(12)]
    for chat in chats:
        await add_group(services, chat)
    await broadcast(services, bulletin.id)
    api.inject_429(0.2, seed=4)

    stats = await deliver(services, sender)

    counts = api.deliveries()
    assert counts["rate_limited"] == stats.rate_limited > 0
    assert all(counts["by_chat"][c] == {"sendMessage": 1, "sendVoice": 1} for c in chats)


async def queue_reminder(services: Services, address: str) -> None:
    async with services.db.session() as session:
        await enqueue(
            session,
            dedupe_key=f"reminder:{address}",
            channel="telegram",
            address=address,
            purpose="reminder",
            parts=[Part("text", text="Please answer the monthly survey")],
        )


def _voice_path() -> str:
    return "bulletins/radio-melamchi/2026-12-05/radio-melamchi-2026-12-05-ne.ogg"


# A crash mid-broadcast ----------------------------------------------------------------


def helpdesk(settings_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HELPDESK, *args],
        env={**os.environ, **settings_env},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_until(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_sender_killed_mid_broadcast_resumes_with_every_part_sent_exactly_once(
    sqlite_services: Services, sqlite_url: str, tmp_path: Path
) -> None:
    # On SQLite only: the ledger's storage is tested on both databases elsewhere, and each
    # start of the command costs seconds of aiogram's imports.
    services, db_url = sqlite_services, sqlite_url
    bulletin = await approved_bulletin(services)
    chats = [f"-{2000 + n}" for n in range(6)] + [str(700300000 + n) for n in range(6)]
    for chat in chats:
        await add_group(services, chat)
    await broadcast(services, bulletin.id)

    with FakeBotApi.spawn_process() as fake:
        env = {
            "HELPDESK_DATABASE_URL": db_url,
            "HELPDESK_DATA_DIR": str(tmp_path),
            "HELPDESK_TELEGRAM_TOKEN": fake.token,
            "HELPDESK_TELEGRAM_API_BASE": fake.base_url,
            "HELPDESK_LEASE_SECONDS": "1",
            "HELPDESK_OUTBOX_OVERALL_PER_SECOND": "50",
            "HELPDESK_OUTBOX_GROUP_PER_MINUTE": "6000",
            "HELPDESK_OUTBOX_CHAT_PER_SECOND": "100",
        }
        # From the 9th send on nothing is delivered: the requests stay open, unanswered.
        fake.hang_send(9, every_later=True)
        first = helpdesk(env, "outbox", "deliver", "--until-empty")
        await wait_until(lambda: fake.deliveries()["hung"] >= 1)
        # Time enough for every answered send to be committed, so only hung ones are open.
        await asyncio.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        hung = fake.deliveries()["hung"]
        delivered_before = sum(sum(m.values()) for m in fake.deliveries()["by_chat"].values())

        fake.stop_hanging()
        second = helpdesk(env, "outbox", "deliver", "--until-empty")
        out, err = second.communicate(timeout=120)
        counts = fake.deliveries()["by_chat"]

    assert second.returncode == 0, err
    assert delivered_before == 8 and hung >= 1
    assert {chat: counts.get(chat) for chat in chats} == {
        chat: {"sendMessage": 1, "sendVoice": 1} for chat in chats
    }
    # The restart sent exactly what the first run had not: 24 parts less the 8 delivered.
    assert "(16 parts)" in out, out
    rows = await ledger(services)
    assert {(r.state, r.parts_sent) for r in rows} == {("sent", 2)}
