"""The Telegram channel end to end: real aiogram in the real app, over HTTP, against the
fake Bot API server, with real-shaped updates."""

import asyncio
import html

import httpx
import pytest
from sqlalchemy import func, select

from bot import store
from bot.channels.telegram import TEXT_LIMIT, render
from bot.messages import Button, Reply
from core.config import Settings
from core.models import Cfa, Media, ProcessedUpdate, Report
from tests.bot.channels.conftest import RunningService, TelegramUser
from tests.fakes.bot_api import FakeBotApi, load_update
from tests.helpers import make_invite


async def register(user: TelegramUser, code: str = "inv-7Q2KX9") -> list[str]:
    await make_invite(user.service.services, code, language="ne")
    return await user.say(f"/start {code}")


async def walk_monthly_survey_to_question_three(user: TelegramUser) -> None:
    await user.tap("start:monthly")
    await user.tap("a:water_supply:irregular")
    texts = await user.say("१२")
    assert "३" in texts[-1] or "3" in texts[-1]


async def test_monthly_survey_in_nepali_from_invite_link_to_receipt(sita: TelegramUser) -> None:
    welcome = await register(sita)
    assert "सीता" in welcome[0] or "Sita" in welcome[0]

    await walk_monthly_survey_to_question_three(sita)
    await sita.tap("a:health_post_open:yes")
    await sita.tap("toggle:problems:migration")
    await sita.tap("done:problems")
    await sita.say("४०")
    await sita.tap("skip:last_public_meeting")
    await sita.deliver(sita.update("location"))
    review = await sita.say("धारा बन्द <३ हप्ता> & *पानी* छैन")
    assert "धारा बन्द <३ हप्ता> & *पानी* छैन" in review[-1]
    receipt = await sita.tap("review:send")

    async with sita.service.services.db.session() as session:
        report = await session.scalar(select(Report))
    assert report is not None and report.reference in receipt[0]
    assert report.answers["migrants_abroad"] == 40 and report.location_lat is not None
    assert report.channel == "telegram" and report.language == "ne"


async def test_restart_mid_survey_continues_at_question_three(
    sita: TelegramUser, service: RunningService
) -> None:
    await register(sita)
    await walk_monthly_survey_to_question_three(sita)

    await service.stop()
    await service.start()
    texts = await sita.say("/start")

    assert "३" in texts[-1] or "3" in texts[-1]
    assert "स्वास्थ्य चौकी" in texts[-1]


async def test_redelivered_update_is_handled_once(sita: TelegramUser) -> None:
    await register(sita)
    update = sita.update("callback_choice", data="start:monthly")
    update["callback_query"]["data"] = "start:monthly"

    responses = await asyncio.gather(sita.post(update), sita.post(update))
    await sita.service.settle()
    again = await sita.post(update)
    await sita.service.settle()

    assert [r.status_code for r in [*responses, again]] == [200, 200, 200]
    questions = [t for t in sita.new_texts() if "१" in t or "1" in t]
    assert len(questions) == 1, questions


async def test_forged_or_missing_secret_token_is_refused(
    sita: TelegramUser, fake_api: FakeBotApi
) -> None:
    update = sita.update("text_start")

    forged = await sita.post(update, secret="not-the-secret")
    missing = await sita.post(update, secret=None)
    await sita.service.settle()

    assert (forged.status_code, missing.status_code) == (403, 403)
    assert sita.messages() == []
    async with sita.service.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ProcessedUpdate)) == 0


async def test_malformed_webhook_body_is_refused_with_400(
    sita: TelegramUser, client: httpx.AsyncClient
) -> None:
    url = f"{sita.service.url}/webhooks/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": "webhook-secret-for-tests"}

    not_json = await client.post(url, content=b"{not json", headers=headers)
    not_update = await client.post(url, json={"hello": 1}, headers=headers)
    bad_shape = await client.post(url, json={"update_id": "x", "message": 5}, headers=headers)

    assert [not_json.status_code, not_update.status_code, bad_shape.status_code] == [400] * 3


async def test_awkward_messages_are_answered_and_the_question_is_kept(
    sita: TelegramUser,
) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:health")

    for template in [
        "photo_without_caption",
        "sticker",
        "edited_message",
        "contact_share",
        "unknown_future_field",
    ]:
        texts = await sita.deliver(sita.update(template))
        assert texts, f"{template} got no answer"
        assert "२" in texts[-1] or "2" in texts[-1], f"{template} lost the question: {texts}"

    async with sita.service.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == 0


async def test_voice_note_is_downloaded_and_linked_to_the_report(
    sita: TelegramUser, fake_api: FakeBotApi
) -> None:
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:natural_resources")
    await sita.say("नदीमा अवैध बालुवा उत्खनन भइरहेको छ।")
    await sita.say("गजुरी बजार")
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    voice = sita.update("voice_note")
    fake_api.add_file(
        voice["message"]["voice"]["file_id"], b"OggS-fake-opus-bytes", file_path="voice/file_7.oga"
    )
    await sita.deliver(voice)
    await sita.tap("review:send")

    async with sita.service.services.db.session() as session:
        media = await session.scalar(select(Media))
        report = await session.scalar(select(Report))
    assert media is not None and report is not None and media.report_id == report.id
    stored = sita.service.settings.resolved_media_dir / media.path
    assert stored.read_bytes() == b"OggS-fake-opus-bytes" and media.kind == "voice"


async def test_unknown_person_is_answered_in_their_language_and_not_stored(
    sita: TelegramUser,
) -> None:
    sita.language = "fr"
    texts = await sita.say("Bonjour")

    assert "coordinat" in texts[0]
    async with sita.service.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Cfa)) == 0
        row = await session.scalar(select(ProcessedUpdate))
    assert row is not None and row.payload is None, "the update's personal details stay"


async def test_command_menus_are_set_per_language(
    service: RunningService, fake_api: FakeBotApi
) -> None:
    calls = fake_api.calls_of("setMyCommands")

    by_language = {c.params.get("language_code"): c.params["commands"] for c in calls}
    assert set(by_language) == {"ne", "en", "fr", None}
    assert [c["command"] for c in by_language["ne"]][:2] == ["survey", "report"]
    assert by_language["ne"][0]["description"] != by_language["en"][0]["description"]


def test_long_texts_are_split_below_the_limit_without_breaking_markup() -> None:
    body = ("धारा <b>बन्द</b> & " * 40 + "\n\n") * 30

    pieces = render(Reply(text=body, title="Title & <more>", buttons=[[Button("OK", "x")]]))

    assert len(pieces) > 1
    assert all(len(text.encode("utf-16-le")) // 2 <= 4096 for text, _ in pieces)
    assert all(markup is None for _, markup in pieces[:-1]) and pieces[-1][1] is not None
    rejoined = "".join(html.unescape(text) for text, _ in pieces).replace(
        "<b>Title & <more></b>\n", ""
    )
    assert rejoined.replace("\n", "").replace(" ", "") == body.replace("\n", "").replace(" ", "")
    assert TEXT_LIMIT < 4096


async def test_long_polling_serves_the_same_conversation(
    telegram_settings: Settings, fake_api: FakeBotApi
) -> None:
    polling = telegram_settings.model_copy(update={"telegram_webhook_url": None})
    running = RunningService(polling)
    await running.start()
    try:
        await make_invite(running.services, "POLL-1", language="en")
        update = load_update("text_start_deeplink")
        update["message"]["text"] = "/start POLL-1"
        fake_api.push_update(update)
        fake_api.push_update(update)  # redelivered: answered once

        calls = await fake_api.wait_for("sendMessage", count=2, timeout=10)
        await asyncio.sleep(0.3)
    finally:
        await running.stop()

    texts = [c.params["text"] for c in fake_api.calls_of("sendMessage")]
    assert "Welcome, Sita!" in calls[0].params["text"]
    assert len(texts) == 2, texts
    assert fake_api.calls_of("deleteWebhook") and not fake_api.calls_of("setWebhook")


async def test_update_accepted_before_a_crash_is_handled_at_the_next_start(
    sita: TelegramUser, service: RunningService
) -> None:
    await register(sita)
    await service.stop()
    update = sita.update(
        "text_nepali_answer",
        text="/survey",
        entities=[{"offset": 0, "length": 7, "type": "bot_command"}],
    )
    async with service.services.db.session() as session:
        await store.record_update(session, "telegram", str(update["update_id"]), update)

    await service.start()
    await service.settle()

    assert any("1/8" in text or "१/८" in text for text in sita.new_texts())
    async with service.services.db.session() as session:
        row = await session.get(ProcessedUpdate, ("telegram", str(update["update_id"])))
    assert row is not None and row.processed_at is not None and row.payload is None


async def test_markup_specials_arrive_literally_and_a_long_review_is_split(
    sita: TelegramUser, fake_api: FakeBotApi
) -> None:
    specials = load_update("text_markdown_specials")["message"]["text"]
    long_place = load_update("long_text_5000")["message"]["text"]
    await register(sita)
    await sita.tap("start:report")
    await sita.tap("a:category:service_delivery")
    await sita.deliver(sita.update("text_markdown_specials"))
    await sita.say(long_place)
    await sita.tap("a:urgency:low")
    await sita.tap("skip:photo")
    review = await sita.tap("skip:voice_note")

    sent = [c.params["text"] for c in sita.messages()[-len(review) :]]
    assert len(review) >= 2, "a review over 4096 characters goes in several messages"
    assert all(len(text) <= 4096 for text in sent)
    assert specials in "".join(review)
    assert "&lt;how&gt; &amp; more" in "".join(sent)
    assert [c for c in fake_api.calls if c.status != 200] == []


async def test_a_failing_step_is_rolled_back_and_the_cfa_is_told(
    sita: TelegramUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    await register(sita)
    await walk_monthly_survey_to_question_three(sita)

    async def broken(self: object, incoming: object) -> list[Reply]:
        raise RuntimeError("simulated fault in a step")

    with monkeypatch.context() as patch:
        patch.setattr("bot.engine.Turn.step", broken)
        apology = await sita.tap("a:health_post_open:yes")
    resumed = await sita.say("/start")

    assert "माफ" in apology[-1] or "Sorry" in apology[-1]
    assert "स्वास्थ्य चौकी" in resumed[-1], "the failed answer was not saved, the question stays"


async def test_a_journalist_voice_note_becomes_the_bulletin_recording(
    sita: TelegramUser, fake_api: FakeBotApi
) -> None:
    from datetime import UTC, datetime

    from core import bulletins
    from core.models import Recording

    services = sita.service.services
    async with services.db.session() as session:
        composed = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            datetime(2026, 12, 4, 13, 15, tzinfo=UTC),
        )
    await make_invite(services, "JOURNO-1", language="ne", role="journalist")
    await sita.say("/start JOURNO-1")

    script = await sita.say(f"/record {composed.bulletin.id} ne")
    voice = sita.update("voice_note")
    fake_api.add_file(
        voice["message"]["voice"]["file_id"], b"OggS-reading", file_path="voice/reading.oga"
    )
    await sita.deliver(voice)

    assert "नागरिक सहायता कक्ष" in script[-1]
    async with services.db.session() as session:
        recording = await session.scalar(select(Recording))
    assert recording is not None and recording.source == "telegram"
    saved = sita.service.settings.resolved_media_dir / recording.path
    assert saved.read_bytes() == b"OggS-reading"
