"""The issue's 'done when', in a real browser: an editor validates a report that came in
through Telegram, attaches it to an issue, resolves the issue, and the CFA receives the
outcome in Nepali through the (fake) Bot API.

Playwright drives Debian's Chromium (``scripts/install --test`` installs it): Playwright
cannot download its own browser build on our machines.
"""

import asyncio
import os
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select

from core.desk.auth import create_user
from core.models import Report
from tests.bot.channels.conftest import RunningService, TelegramUser
from tests.desk.conftest import PASSWORD
from tests.fakes.bot_api import FakeBotApi
from tests.helpers import make_invite

CHROMIUM = Path("/usr/bin/chromium")

# Skipped on a developer's machine without it; in CI (``CI`` set) it must run.
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),
    reason="Debian's chromium is missing: run scripts/install --test",
)


async def _report_through_telegram(sita: TelegramUser, fake_api: FakeBotApi) -> str:
    await make_invite(sita.service.services, "DESK-1", language="ne")
    await sita.say("/start DESK-1")
    await sita.tap("start:report")
    await sita.tap("a:category:service_delivery")
    await sita.say("गजुरी ३ मा तीन हप्तादेखि खानेपानी आएको छैन।")
    await sita.say("गजुरी बजार")
    await sita.tap("a:urgency:high")
    await sita.tap("skip:photo")
    voice = sita.update("voice_note")
    fake_api.add_file(
        voice["message"]["voice"]["file_id"], b"OggS-fake-opus-bytes", file_path="voice/f.oga"
    )
    await sita.deliver(voice)
    await sita.tap("review:send")
    async with sita.service.services.db.session() as session:
        reference = await session.scalar(select(Report.reference))
    assert reference is not None
    return str(reference)


async def _sign_in(page: Page, service: RunningService) -> None:
    await page.goto(f"{service.url}/desk/")
    await expect(page.get_by_role("heading", name="Sign in to the desk")).to_be_visible()
    await page.fill("#username", "asha")
    await page.fill("#password", PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Reports")).to_be_visible()


async def _texts_until(sita: TelegramUser, wanted: str, timeout: float = 10.0) -> list[str]:
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while not any(wanted in text for text in seen):
            seen += sita.new_texts()
            await asyncio.sleep(0.1)
    return seen


async def test_editor_validates_attaches_resolves_and_the_cfa_hears_it_in_nepali(
    service: RunningService, sita: TelegramUser, fake_api: FakeBotApi
) -> None:
    reference = await _report_through_telegram(sita, fake_api)
    sita.new_texts()
    async with service.services.db.session() as session:
        await create_user(session, username="asha", name="Asha", role="editor", password=PASSWORD)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        await _sign_in(page, service)

        await page.get_by_role("link", name=reference).click()
        await expect(page.get_by_text("गजुरी ३ मा तीन हप्तादेखि")).to_be_visible()
        voice_src = await page.locator("audio").get_attribute("src")
        voice = await page.request.get(f"{service.url}{voice_src}")
        assert voice.ok and await voice.body() == b"OggS-fake-opus-bytes"

        await page.fill("#summary_ne", "गजुरी ३ मा तीन हप्तादेखि खानेपानी छैन।")
        await page.get_by_role("button", name="Validate").click()
        await expect(page.locator(".notice")).to_contain_text("validated")

        await page.fill("#title", "Gajuri 3 without drinking water")
        await page.fill("#authority", "खानेपानी कार्यालय, धादिङ")
        await page.get_by_role("button", name="Attach").click()
        await expect(page.locator(".notice")).to_contain_text("attached")

        await page.get_by_role("link", name="IS-").first.click()
        await page.select_option("#status", "resolved")
        await page.fill("#outcome_ne", "नयाँ पाइप जोडियो, पानी आउन थाल्यो।")
        await page.get_by_role("button", name="Save and tell the CFAs").click()
        await expect(page.locator(".notice")).to_contain_text("now resolved; 1 CFA(s) told")
        await page.screenshot(path=str(service.settings.data_dir / "issue-resolved.png"))
        await browser.close()

    told = await _texts_until(sita, "नयाँ पाइप जोडियो")
    assert any(reference in text and "समाधान भयो" in text for text in told), told
