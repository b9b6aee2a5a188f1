"""One person on two channels: invites that link WhatsApp to a CFA registered on
Telegram, and the links ``helpdesk cfa invite`` prints."""

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import store
from core.cli import app
from core.config import get_settings
from core.models import Cfa, ChannelIdentity, Invite, Report
from core.services import Services
from tests.bot.channels.whatsapp.conftest import NUMBER, Service, WhatsAppUser
from tests.conftest import settings_for
from tests.fakes.graph_api import text_of
from tests.helpers import make_invite


async def registered_on_telegram(services: Services) -> int:
    invite = await make_invite(services, "TG7Q2KX9PR", name="Sita Tamang")
    async with services.db.session() as session:
        claimed = await store.claim_invite(session, invite.code)
        assert claimed is not None
        cfa = await store.register_cfa(session, claimed, "telegram", "700100200", "Sita")
        return cfa.id


async def test_a_cfa_on_telegram_links_whatsapp_and_stays_one_person(
    sita: WhatsAppUser, service: Service
) -> None:
    services = service.services
    cfa_id = await registered_on_telegram(services)
    async with services.db.session() as session:
        link = await store.create_link_invite(
            session, cfa_id=cfa_id, code="LINK2WA9PR", valid_for=timedelta(days=1)
        )

    welcome = await sita.say(f"/start {link.code}")
    await sita.tap("start:report")

    assert "Sita Tamang" in text_of(welcome[0])
    async with services.db.session() as session:
        cfas = list((await session.scalars(select(Cfa))).unique())
        identities = list(await session.scalars(select(ChannelIdentity)))
    assert [c.id for c in cfas] == [cfa_id]
    assert sorted((i.channel, i.address, i.cfa_id) for i in identities) == [
        ("telegram", "700100200", cfa_id),
        ("whatsapp", NUMBER, cfa_id),
    ]


async def test_a_link_invite_is_used_once_and_reports_go_to_the_same_cfa(
    sita: WhatsAppUser, service: Service
) -> None:
    services = service.services
    cfa_id = await registered_on_telegram(services)
    async with services.db.session() as session:
        link = await store.create_link_invite(
            session, cfa_id=cfa_id, code="LINK2WA9PQ", valid_for=timedelta(days=1)
        )
    await sita.say(f"/start {link.code}")
    other = WhatsAppUser(service, number="9779800000002")

    refused = await other.say(f"/start {link.code}")
    await sita.tap("start:report")
    await sita.tap("a:category:health")
    await sita.say("स्वास्थ्य चौकीमा औषधि छैन")
    await sita.say("गजुरी बजार")
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    await sita.tap("skip:voice_note")
    await sita.tap("review:send")

    assert "Sita" not in text_of(refused[0])
    async with services.db.session() as session:
        report = await session.scalar(select(Report))
        strangers = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.address == other.number)
        )
    assert report is not None and report.cfa_id == cfa_id and report.channel == "whatsapp"
    assert strangers is None


@pytest.fixture
def cli_env(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    services = Services.build(settings_for(sqlite_url, tmp_path))
    asyncio.run(_load(services))
    monkeypatch.setenv("HELPDESK_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("HELPDESK_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HELPDESK_WHATSAPP_BUSINESS_NUMBER", "+977 980-0000000")
    get_settings.cache_clear()
    yield sqlite_url
    get_settings.cache_clear()


async def _load(services: Services) -> None:
    await services.sync_content()
    await services.close()


def invite_of(url: str, code: str) -> Invite:
    async def find() -> Invite:
        services = Services.build(settings_for(url, Path("/nonexistent")))
        try:
            async with services.db.session() as session:
                found = await session.scalar(select(Invite).where(Invite.code == code))
                assert found is not None
                return found
        finally:
            await services.close()

    return asyncio.run(find())


def test_cfa_invite_prints_a_wa_me_link_whose_first_message_carries_the_code(
    cli_env: str,
) -> None:
    result = CliRunner().invoke(
        app, ["cfa", "invite", "--community", "dhading-gajuri-3", "--language", "ne"]
    )

    assert result.exit_code == 0, result.output
    code = re.search(r"invite code: (\w+)", result.output)
    link = re.search(r"WhatsApp:\s+(https://wa\.me/(\d+)\?text=(\S+))", result.output)
    assert code is not None and link is not None, result.output
    assert link.group(2) == "9779800000000"
    assert unquote(link.group(3)) == f"/start {code.group(1)}"


def test_cfa_invite_for_an_existing_cfa_makes_a_link_invite(cli_env: str) -> None:
    async def telegram_cfa() -> int:
        services = Services.build(settings_for(cli_env, Path("/nonexistent")))
        try:
            return await registered_on_telegram(services)
        finally:
            await services.close()

    cfa_id = asyncio.run(telegram_cfa())
    result = CliRunner().invoke(app, ["cfa", "invite", "--cfa", str(cfa_id)])
    mixed = CliRunner().invoke(app, ["cfa", "invite", "--cfa", str(cfa_id), "--language", "ne"])

    assert result.exit_code == 0, result.output
    code = re.search(r"invite code: (\w+)", result.output)
    assert code is not None
    invite = invite_of(cli_env, code.group(1))
    assert invite.cfa_id == cfa_id and invite.used_at is None and invite.language == "ne"
    assert mixed.exit_code == 1
