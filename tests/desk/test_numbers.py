"""The numbers page, its charts and exports on the real app, and the proof that nothing a
viewer can open there (or on the bulletin pages) names a CFA: known names, numbers, chat
ids and raw answers are planted, and every page, every CSV line and every XLSX cell is
scanned for them."""

import csv
import io
import re
from pathlib import Path

import openpyxl
import pytest
from matplotlib.image import imread
from playwright.async_api import async_playwright, expect

from core import bulletins, figures
from core.desk.auth import create_user
from tests.bot.channels.conftest import RunningService
from tests.desk.conftest import PASSWORD, Desk, desk_settings
from tests.desk.planted import Planted, plant_personal_report

CHROMIUM = Path("/usr/bin/chromium")


async def current_months(desk: Desk) -> list[str]:
    return figures.recent_months(desk.services.deployment, 6)


async def test_page_shows_the_programme_and_each_community_per_month(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    await plant_personal_report(desk.services)
    viewer = await desk.signed_in("viewer")

    page = await viewer.get("/desk/numbers")

    assert page.status_code == 200
    months = await current_months(desk)
    totals = page.text.split('id="totals"')[1].split("</table>")[0]
    last = totals.split(f"<td>{months[-1]}</td>")[1].split("</tr>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", last)
    # conversations, reports, validated, issues resolved, people reached, compliance
    assert cells[:5] == ["2", "2", "2", "1", "0"]
    assert "Gajuri Ward 3" in page.text and "गजुरी वडा नं. ३" in page.text
    for name in ("reports", "validated", "resolved", "reached", "compliance"):
        assert f"/desk/numbers/chart/{name}.png?from={months[0]}&amp;to={months[-1]}" in page.text


async def test_a_range_of_months_is_asked_for_and_checked(sqlite_desk: Desk) -> None:
    viewer = await sqlite_desk.signed_in("viewer")

    page = await viewer.get("/desk/numbers?from=2026-01&to=2026-03")
    wrong = await viewer.get("/desk/numbers?from=2026-05&to=2026-02")

    assert page.status_code == 200
    assert "<h3>2026-03</h3>" in page.text and "<h3>2026-04</h3>" not in page.text
    assert wrong.status_code == 422 and "before it starts" in wrong.text


async def test_charts_are_png_images_of_the_asked_months(sqlite_desk: Desk) -> None:
    await plant_personal_report(sqlite_desk.services)
    viewer = await sqlite_desk.signed_in("viewer")

    response = await viewer.get("/desk/numbers/chart/reports.png?from=2026-01&to=2026-12")
    missing = await viewer.get("/desk/numbers/chart/nothing.png")

    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    pixels = imread(io.BytesIO(response.content), format="png")
    assert pixels.shape[1] == 800 and pixels.shape[0] == 340
    # Bars in matplotlib's first colour, for the month that has reports.
    blue = (abs(pixels[..., 0] - 0.12) < 0.05) & (abs(pixels[..., 2] - 0.71) < 0.05)
    assert blue.sum() > 100
    assert missing.status_code == 404


async def test_exports_read_back_to_the_page_figures(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    await plant_personal_report(desk.services)
    viewer = await desk.signed_in("viewer")
    months = await current_months(desk)

    as_csv = await viewer.get("/desk/numbers/export.csv")
    as_xlsx = await viewer.get("/desk/numbers/export.xlsx")

    async with desk.services.db.session() as session:
        expected = figures.table(await figures.compute(session, desk.services.deployment, months))
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert tuple(rows[0]) == figures.COLUMNS
    assert rows[1:] == [["" if v is None else str(v) for v in row] for row in expected]
    assert "attachment" in as_csv.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx.content))["Figures"]
    assert [list(row) for row in sheet.iter_rows(min_row=2, values_only=True)] == expected
    assert as_xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")


async def test_numbers_need_a_session(sqlite_desk: Desk) -> None:
    async with sqlite_desk.client() as anonymous:
        for path in (
            "/desk/numbers",
            "/desk/numbers/export.csv",
            "/desk/numbers/chart/reports.png",
        ):
            response = await anonymous.get(path)
            assert response.status_code == 303, path
            assert response.headers["location"].startswith("/desk/login")


async def scan_viewer(desk: Desk, planted: Planted) -> list[str]:
    """Open every page, chart and export a viewer can reach from the numbers and
    bulletin pages, and the bulletin of the planted issue; fail on any planted detail."""
    viewer = await desk.signed_in("viewer")
    bulletin_id = await bulletin_with(desk, planted)
    queue = ["/desk/numbers", "/desk/bulletins", f"/desk/bulletins/{bulletin_id}"]
    queue.append(f"/desk/bulletins/{bulletin_id}/render-status")
    seen: list[str] = []
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        response = await viewer.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        kind = response.headers["content-type"]
        if kind.startswith("application/vnd.openxmlformats"):
            text = xlsx_text(response.content)
        elif kind.startswith("image/"):
            continue
        else:
            text = response.text
        assert planted.leaks(text) == [], f"{planted.leaks(text)} shown to a viewer on {path}"
        queue += [
            link for link in links(text) if link.startswith(("/desk/numbers", "/desk/bulletins"))
        ]
    return seen


def links(page: str) -> list[str]:
    return [href.replace("&amp;", "&") for href in re.findall(r'(?:href|src)="([^"]+)"', page)]


def xlsx_text(content: bytes) -> str:
    """Every cell of every sheet, one per line."""
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    return "\n".join(
        str(cell)
        for sheet in workbook.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell is not None
    )


async def bulletin_with(desk: Desk, planted: Planted) -> int:
    """A radio-dhading bulletin holding the planted issue, composed by the real code."""
    deployment = desk.services.deployment
    station = deployment.stations["radio-dhading"]
    async with desk.services.db.session() as session:
        composed = await bulletins.compose(
            session,
            deployment,
            "radio-dhading",
            bulletins.air_time(station, bulletins.next_air_date(station)),
            only=(),
        )
        await bulletins.include(
            session, deployment, composed.bulletin.id, issue_ids=[planted.issue_id]
        )
        return composed.bulletin.id


async def test_a_viewer_sees_no_name_number_chat_id_or_raw_answer_on_these_pages(
    sqlite_desk: Desk,
) -> None:
    desk = sqlite_desk
    planted = await plant_personal_report(desk.services)

    seen = await scan_viewer(desk, planted)

    assert {"/desk/numbers", "/desk/bulletins"} <= set(seen)
    assert any(path.startswith("/desk/numbers/export.csv") for path in seen)
    assert any(path.startswith("/desk/numbers/export.xlsx") for path in seen)
    assert any(path.startswith("/desk/numbers/chart/") for path in seen)
    editor = await desk.signed_in("editor")
    # The scan can fail: the same details are on an editor's page of the report.
    shown = (await editor.get(f"/desk/reports/{planted.reference}")).text
    assert planted.leaks(shown)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is missing")
async def test_numbers_page_in_a_browser_draws_its_charts(sqlite_url: str, tmp_path: Path) -> None:
    running = RunningService(desk_settings(sqlite_url, tmp_path))
    await running.start(wait_for_telegram=False)
    try:
        planted = await plant_personal_report(running.services)
        async with running.services.db.session() as session:
            await create_user(
                session, username="vani", name="Vani", role="viewer", password=PASSWORD
            )
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
            # The desk forbids scripts; Playwright's own waiting evaluates one.
            page = await browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
            await page.goto(f"{running.url}/desk/numbers")
            await page.fill("#username", "vani")
            await page.fill("#password", PASSWORD)
            await page.get_by_role("button", name="Sign in").click()

            await expect(page.get_by_role("heading", name="By the numbers")).to_be_visible()
            charts = page.locator("img[src^='/desk/numbers/chart/']")
            await expect(charts).to_have_count(5)
            # The server draws each chart when the browser asks for it: wait for all five.
            await page.wait_for_function(
                "[...document.images].every(image => image.complete)", timeout=30_000
            )
            widths = await charts.evaluate_all("images => images.map(i => i.naturalWidth)")
            text = await page.locator("main").inner_text()
            await page.screenshot(path=str(tmp_path / "numbers.png"), full_page=True)
            await browser.close()
    finally:
        await running.stop()

    assert widths == [800] * 5
    assert "Gajuri Ward 3" in text and "By community" in text
    assert planted.leaks(text) == []
