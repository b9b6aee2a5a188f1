"""The distribution issue's "done when", end to end on the sample deployment.

A CFA reports through Telegram and staff validate it; the running service's scheduler
builds the bulletin at its fire time (the stored job is brought forward to now, as if
the clock had reached Friday 17:00 in Kathmandu); an editor approves it; the station
reads its feed and downloads the MP3; the download is in the station's log; and at the
group time the community group receives the bulletin's text and voice message through
real aiogram against the fake Bot API.
"""

import asyncio
import hashlib
import secrets

import feedparser
import httpx
from sqlalchemy import select

from core import bulletins, groups
from core.db import utcnow
from core.models import Bulletin, JobRun, Station, StationDownload
from tests.bot.channels.conftest import RunningService, TelegramUser
from tests.bot.channels.test_groups import TelegramGroup
from tests.core.test_bulletin_render import validate
from tests.fakes.bot_api import FakeBotApi
from tests.helpers import make_invite

SUMMARY = "गजुरी बजारको धारामा तीन हप्तादेखि पानी आएको छैन।"


async def fire_now(service: RunningService, job_id: str, timeout: float = 60) -> JobRun:
    """Bring a stored job's next run to now and wait for its fire to finish."""
    scheduler = service.app.state.scheduler
    await asyncio.wait_for(scheduler.started.wait(), timeout=10)
    fire_time = utcnow()
    scheduler.scheduler.modify_job(job_id, next_run_time=fire_time)
    scheduler.scheduler.wakeup()
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with service.services.db.session() as session:
            run = await session.scalar(
                select(JobRun).where(JobRun.job_id == job_id, JobRun.finished_at.is_not(None))
            )
        if run is not None:
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish within {timeout} s")


async def report_and_validate(sita: TelegramUser, service: RunningService) -> None:
    await make_invite(service.services, "DIST-1", community="dhading-gajuri-3")
    await sita.say("/start DIST-1")
    await sita.tap("start:report")
    await sita.tap("a:category:service_delivery")
    await sita.say("धाराको पानी तीन हप्तादेखि आएको छैन।")
    await sita.say("गजुरी बजार")
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    await sita.tap("skip:voice_note")
    receipt = " ".join(await sita.tap("review:send"))
    reference = "NP-" + receipt.split("NP-")[1][:11]
    await validate(service.services, reference, {"ne": SUMMARY})


async def station_token(service: RunningService) -> str:
    token = secrets.token_urlsafe(24)
    async with service.services.db.session() as session:
        station = await session.scalar(select(Station).where(Station.code == "radio-dhading"))
        assert station is not None
        station.token_hash = hashlib.sha256(token.encode()).hexdigest()
    return token


async def logged_downloads(service: RunningService) -> list[StationDownload]:
    """The station's download log, once the server has written it (after the body)."""
    for _ in range(50):
        async with service.services.db.session() as session:
            downloads = list(await session.scalars(select(StationDownload)))
        if downloads:
            return downloads
        await asyncio.sleep(0.1)
    return []


async def test_bulletin_built_on_schedule_reaches_the_station_and_the_group(
    service: RunningService,
    sita: TelegramUser,
    fake_api: FakeBotApi,
    client: httpx.AsyncClient,
) -> None:
    await report_and_validate(sita, service)
    group = TelegramGroup(service, fake_api, client, chat_id=-1001555000111)
    await group.approve()
    token = await station_token(service)

    build = await fire_now(service, "build:radio-dhading:friday-1900")
    assert build.outcome == "done", build.detail
    async with service.services.db.session() as session:
        bulletin = await session.scalar(select(Bulletin))
        assert bulletin is not None and bulletin.status == "rendered"
        assert bulletin.air_at > build.fire_time  # built before its slot
        await bulletins.approve(
            session, bulletin.id, media_dir=service.settings.resolved_media_dir
        )

    feed_response = await client.get(
        f"{service.url}/stations/radio-dhading/ne/feed.xml", params={"token": token}
    )
    feed = feedparser.parse(feed_response.content)
    (entry,) = feed.entries
    enclosure = entry.enclosures[0]
    local_url = enclosure.href.replace(service.settings.public_url, service.url)
    mp3 = await client.get(local_url)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert len(mp3.content) == int(enclosure.length) > 10_000
    assert mp3.content[:3] == b"ID3"

    downloads = await logged_downloads(service)
    assert [(d.status_code, d.bytes_sent, d.method) for d in downloads] == [
        (200, len(mp3.content), "GET")
    ]

    sent = await fire_now(service, "groups:radio-dhading:friday-1900")
    assert sent.outcome == "done", sent.detail
    voice = await fake_api.wait_for("sendVoice", timeout=30)
    texts = [c for c in fake_api.calls_of("sendMessage") if c.params["chat_id"] == group.chat_id]
    assert voice[0].params["chat_id"] == group.chat_id
    assert any(SUMMARY in str(c.params["text"]) for c in texts)
    async with service.services.db.session() as session:
        recipient = await groups.find(session, "telegram", str(group.chat_id))
    assert recipient is not None and recipient.status == "approved"
