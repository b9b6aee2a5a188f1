"""Community groups and channels on Telegram, end to end: real aiogram in the real app
against the fake Bot API, with the recorded group updates re-addressed per test."""

import copy
import itertools
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import Result

from core import bulletins, groups
from core.db import utcnow
from core.models import Bulletin, ProcessedUpdate, Recipient
from tests.bot.channels.conftest import SECRET, RunningService, plain
from tests.fakes.bot_api import FakeBotApi, load_update
from tests.helpers import run_helpdesk

ADMIN, MEMBER = 700100301, 700100302


class TelegramGroup:
    """A group (or channel) the bot is in, sending real-shaped updates by webhook."""

    _ids = itertools.count(930000000)

    def __init__(
        self,
        service: RunningService,
        api: FakeBotApi,
        client: httpx.AsyncClient,
        chat_id: int = -1001987654321,
        kind: str = "supergroup",
    ) -> None:
        self.service, self.api, self.client = service, api, client
        self.chat: dict[str, Any] = {
            "id": chat_id,
            "title": f"Ward notices {chat_id}",
            "type": kind,
        }
        self.seen = 0

    @property
    def chat_id(self) -> int:
        return int(self.chat["id"])

    def _fresh(self, template: str) -> dict[str, Any]:
        update = copy.deepcopy(load_update(template))
        update["update_id"] = next(self._ids)
        return update

    def membership(self, status: str, was: str = "left") -> dict[str, Any]:
        update = self._fresh("bot_added_to_group")
        body = update["my_chat_member"]
        body["chat"] = dict(self.chat)
        body["old_chat_member"]["status"] = was
        body["new_chat_member"]["status"] = status
        if status == "kicked":
            body["new_chat_member"]["until_date"] = 0
        return update

    def message(self, text: str, user_id: int = MEMBER) -> dict[str, Any]:
        update = self._fresh("text_nepali_answer")
        body = update["message"]
        body["chat"], body["text"] = dict(self.chat), text
        body["from"]["id"] = user_id
        if text.startswith("/"):
            body["entities"] = [
                {"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}
            ]
        return update

    def channel_post(self, text: str) -> dict[str, Any]:
        update = self._fresh("channel_post")
        post = update["channel_post"]
        post["chat"] = post["sender_chat"] = dict(self.chat)
        post["text"] = text
        return update

    def button(self, data: str, user_id: int = MEMBER) -> dict[str, Any]:
        update = self._fresh("callback_choice")
        query = update["callback_query"]
        query["id"], query["data"] = str(update["update_id"]), data
        query["from"]["id"] = user_id
        query["message"]["chat"] = dict(self.chat)
        return update

    async def deliver(self, update: dict[str, Any]) -> list[str]:
        """Post an update, wait for its handling, return what the bot posted in the chat."""
        response = await self.client.post(
            f"{self.service.url}/webhooks/telegram",
            json=update,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
        )
        assert response.status_code == 200, response.text
        await self.service.settle()
        sent = [c for c in self.api.calls_of("sendMessage") if c.params["chat_id"] == self.chat_id]
        fresh, self.seen = sent[self.seen :], len(sent)
        return [plain(call) for call in fresh]

    async def recipient(self) -> Recipient | None:
        async with self.service.services.db.session() as session:
            return await groups.find(session, "telegram", str(self.chat_id))

    async def status(self) -> str | None:
        found = await self.recipient()
        return found.status if found else None

    async def approve(self, station: str | None = None) -> None:
        await self.deliver(self.membership("member"))
        found = await self.recipient()
        assert found is not None
        async with self.service.services.db.session() as session:
            await groups.approve(session, found.id, ["dhading-gajuri-3"], "ne", station)


@pytest.fixture
def group(
    service: RunningService, fake_api: FakeBotApi, client: httpx.AsyncClient
) -> TelegramGroup:
    return TelegramGroup(service, fake_api, client)


async def helpdesk(service: RunningService, *args: str) -> Result:
    """``helpdesk group ...`` on the running service's database, as staff run it."""
    return await run_helpdesk(service.settings, "group", *args)


async def test_a_group_that_adds_the_bot_waits_for_staff_and_goes_inactive_when_it_leaves(
    group: TelegramGroup,
) -> None:
    said = await group.deliver(group.membership("member"))
    pending = await group.recipient()
    said_at_removal = await group.deliver(group.membership("kicked", was="member"))
    removed = await group.recipient()

    assert pending is not None and (pending.status, pending.kind) == ("pending", "supergroup")
    assert pending.title == f"Ward notices {group.chat_id}" and pending.communities == []
    assert len(said) == 1 and "स्वीकृत" in said[0] and "/stop" in said[0]
    assert said_at_removal == [] and removed is not None
    assert (removed.status, removed.status_reason) == ("inactive", "bot kicked")


async def test_staff_approve_a_group_with_the_cli_and_see_it_listed(
    group: TelegramGroup, service: RunningService
) -> None:
    await group.deliver(group.membership("member"))
    found = await group.recipient()
    assert found is not None
    number = str(found.id)

    wrong = await helpdesk(
        service, "approve", number, "--community", "atlantis-1", "--language", "ne"
    )
    listed = await helpdesk(service, "list", "--status", "pending")
    done = await helpdesk(
        service, "approve", number, "--community", "dhading-gajuri-3", "--language", "ne"
    )

    assert wrong.exit_code == 1 and "error: no community atlantis-1" in wrong.stderr
    assert listed.exit_code == 0 and str(group.chat_id) in listed.stdout
    assert "pending" in listed.stdout
    assert done.exit_code == 0, done.stderr
    assert f"group {number}" in done.stdout and "dhading-gajuri-3 in ne" in done.stdout
    assert await group.status() == "approved"


async def test_a_group_upgraded_to_a_supergroup_keeps_its_subscription(
    service: RunningService, fake_api: FakeBotApi, client: httpx.AsyncClient
) -> None:
    migrated = load_update("group_migrated")["message"]
    old = TelegramGroup(service, fake_api, client, migrated["chat"]["id"], kind="group")
    await old.approve()

    update = old._fresh("group_migrated")
    await old.deliver(update)
    new = TelegramGroup(service, fake_api, client, migrated["migrate_to_chat_id"])
    echo = new.message("")
    echo["message"].pop("text")
    echo["message"]["migrate_from_chat_id"] = old.chat_id
    await new.deliver(echo)

    moved = await new.recipient()
    assert await old.recipient() is None and moved is not None
    assert (moved.status, moved.kind, moved.communities) == (
        "approved",
        "supergroup",
        ["dhading-gajuri-3"],
    )


async def test_only_an_admin_stops_the_bulletins_and_start_brings_them_back(
    group: TelegramGroup, fake_api: FakeBotApi
) -> None:
    await group.approve()
    fake_api.set_chat_member(group.chat_id, ADMIN, "administrator")

    chatter = await group.deliver(group.message("नमस्ते सबैलाई, भोलि बैठक छ", MEMBER))
    refused = await group.deliver(group.message("/stop", MEMBER))
    after_member = await group.status()
    other_bot = await group.deliver(group.message("/stop@someone_else_bot", ADMIN))
    stopped = await group.deliver(group.message(f"/stop@{fake_api.bot_username}", ADMIN))
    after_admin = await group.status()
    started = await group.deliver(group.message("/start", ADMIN))

    assert chatter == [] and after_member == "approved" and "एडमिन" in refused[0]
    assert other_bot == [] and after_admin == "opted_out"
    assert "/start" in stopped[0] and "/stop" in started[0]
    assert await group.status() == "approved"
    checked = [c.params["user_id"] for c in fake_api.calls_of("getChatMember")]
    assert checked == [MEMBER, ADMIN, ADMIN]
    async with group.service.services.db.session() as session:
        rows = list(await session.scalars(select(ProcessedUpdate)))
    assert len(rows) == 6 and all(r.payload is None and r.processed_at for r in rows), (
        "every group update is closed in the ledger and nothing about a member is kept"
    )


async def test_a_post_in_a_channel_counts_as_its_admins(
    service: RunningService, fake_api: FakeBotApi, client: httpx.AsyncClient
) -> None:
    posted = load_update("channel_post")["channel_post"]["chat"]
    channel = TelegramGroup(service, fake_api, client, posted["id"], kind="channel")
    greeting = await channel.deliver(channel.membership("member"))
    await channel.approve()

    ignored = await channel.deliver(channel.channel_post("test"))
    stopped = await channel.deliver(channel.channel_post("/stop"))

    assert greeting == [], "a bot that is no channel admin cannot post there"
    assert ignored == [] and len(stopped) == 1
    assert await channel.status() == "opted_out"
    assert fake_api.calls_of("getChatMember") == []


async def approved_bulletin(service: RunningService, station: str) -> Bulletin:
    async with service.services.db.session() as session:
        composed = await bulletins.compose(
            session,
            service.services.deployment,
            station,
            datetime(2026, 12, 4, 13, 15, tzinfo=UTC),
        )
        composed.bulletin.status, composed.bulletin.approved_at = "approved", utcnow()
    return composed.bulletin


async def test_aired_button_marks_the_bulletin_only_in_its_station_group(
    service: RunningService, fake_api: FakeBotApi, client: httpx.AsyncClient
) -> None:
    station = TelegramGroup(service, fake_api, client, -1002000000101)
    community = TelegramGroup(service, fake_api, client, -1002000000102)
    other_station = TelegramGroup(service, fake_api, client, -1002000000103)
    await station.approve(station="radio-dhading")
    await community.approve()
    await other_station.approve(station="radio-melamchi")
    bulletin = await approved_bulletin(service, "radio-dhading")

    for chat in (community, other_station, station):
        await chat.deliver(chat.button(f"aired:{bulletin.id}"))
    stray = await community.deliver(community.button("start:monthly"))

    answers = [c.params.get("text", "") for c in fake_api.calls_of("answerCallbackQuery")]
    assert "स्टेसनको आफ्नै समूहमा मात्र" in answers[0]
    assert "तपाईंको स्टेसनको होइन" in answers[1]
    assert "धन्यवाद" in answers[2] and str(bulletin.id) in answers[2]
    assert stray == [] and len(answers) == 4, "a group's other buttons never reach the engine"
    async with service.services.db.session() as session:
        aired = await session.get_one(Bulletin, bulletin.id)
    assert (aired.status, aired.aired_via) == ("aired", "telegram")
