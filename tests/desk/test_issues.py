"""Issues followed with the authorities: attaching reports, each status change recorded
and told to the reports' CFAs in their language, and the airing of a resolved issue."""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from core import issues
from core.models import AuditEntry, Bulletin, BulletinItem, Issue, OutboxMessage, Report, Station
from tests.desk.conftest import Desk, csrf_of
from tests.helpers import make_report


async def _post(client: httpx.AsyncClient, page: str, action: str, **data: str) -> httpx.Response:
    token = csrf_of((await client.get(page)).text)
    return await client.post(action, data={**data, "csrf": token})


async def _open_issue_with(desk: Desk, client: httpx.AsyncClient, report: Report) -> int:
    url = f"/desk/reports/{report.reference}"
    response = await _post(
        client, url, f"{url}/attach", title="No water in ward 3", authority="Gajuri water office"
    )
    assert response.status_code == 303, response.text
    async with desk.services.db.session() as session:
        issue = await session.scalar(select(Issue))
    assert issue is not None
    return int(issue.id)


async def test_each_status_change_is_told_to_the_cfas_in_nepali_once(desk: Desk) -> None:
    first = await make_report(desk.services, summary={"ne": "पानी छैन"}, cfa_name="A")
    second = await make_report(desk.services, summary={"ne": "धारा बिग्रियो"}, cfa_name="B")
    editor = await desk.signed_in("editor")
    issue_id = await _open_issue_with(desk, editor, first)
    await _post(
        editor,
        f"/desk/reports/{second.reference}",
        f"/desk/reports/{second.reference}/attach",
        issue=f"IS-{date.today().year}-0001",
    )
    page = f"/desk/issues/{issue_id}"

    referred = await _post(editor, page, f"{page}/status", status="referred", note="by phone")
    resolved = await _post(
        editor, page, f"{page}/status", status="resolved", outcome_ne="नयाँ धारा जडान भयो"
    )
    backwards = await _post(editor, page, f"{page}/status", status="referred")

    assert referred.status_code == 303 and resolved.status_code == 303
    assert backwards.status_code == 400 and "it may move to: none" in backwards.text
    async with desk.services.db.session() as session:
        messages = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        reports = list((await session.scalars(select(Report).order_by(Report.id))).unique())
        entries = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    texts = [m.parts[0]["text"] for m in messages]
    assert [m.purpose for m in messages] == ["notification"] * 4
    assert len({m.dedupe_key for m in messages}) == 4
    assert "Gajuri water office" in texts[0] and "पुर्‍याइयो" in texts[0]
    assert "समाधान भयो" in texts[2] and "नयाँ धारा जडान भयो" in texts[2]
    assert [r.status for r in reports] == ["resolved", "resolved"]
    assert [e.action for e in entries] == ["created", "attached", "attached", "status", "status"]
    assert entries[3].note == "by phone"
    assert entries[3].detail["from"] == "open" and entries[3].detail["to"] == "referred"


async def test_a_report_must_be_validated_before_it_joins_an_issue(sqlite_desk: Desk) -> None:
    report = await make_report(sqlite_desk.services)
    editor = await sqlite_desk.signed_in("editor")
    url = f"/desk/reports/{report.reference}"

    response = await _post(editor, url, f"{url}/attach", title="Something")

    assert response.status_code == 400
    assert "validate" in response.text and "before attaching" in response.text


async def test_viewer_reads_issues_but_cannot_move_them(sqlite_desk: Desk) -> None:
    editor = await sqlite_desk.signed_in("editor")
    viewer = await sqlite_desk.signed_in("viewer")
    created = await _post(editor, "/desk/issues", "/desk/issues", title="Road blocked")
    page = created.headers["location"]

    seen = await viewer.get(page)
    moved = await viewer.post(f"{page}/status", data={"status": "referred"})

    assert "Road blocked" in seen.text and "Move on" not in seen.text
    assert moved.status_code == 403


async def test_tell_airing_names_the_station_and_local_time_once(desk: Desk) -> None:
    report = await make_report(
        desk.services, community="sindhupalchok-melamchi-4", summary={"ne": "बाटो"}
    )
    async with desk.services.db.session() as session:
        issue = await issues.create(session, title="Road", staff_user_id=None)
        stored = await session.get_one(Report, report.id)
        await issues.attach(session, issue, stored, None)
        await issues.change_status(session, issue, "resolved", None)
        station = await session.scalar(select(Station).where(Station.code == "radio-melamchi"))
        assert station is not None
        zone = ZoneInfo(station.timezone)
        air_day = date(2026, 12, 5)
        bulletin = Bulletin(
            station_id=station.id,
            air_date=air_day,
            air_at=datetime.combine(air_day, time(18), tzinfo=zone),
            status="approved",
        )
        session.add(bulletin)
        await session.flush()
        session.add(
            BulletinItem(
                bulletin_id=bulletin.id,
                language="ne",
                position=0,
                kind="report",
                text="बाटो खुल्यो",
                issue_id=issue.id,
            )
        )

    async with desk.services.db.session() as session:
        first = await issues.tell_airing(session, bulletin.id)
    async with desk.services.db.session() as session:
        again = await issues.tell_airing(session, bulletin.id)
        airing = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key.startswith("airing:"))
        )

    assert (first, again) == (1, 0)
    assert airing is not None
    text = airing.parts[0]["text"]
    assert station.name in text and report.reference in text and "प्रसारण" in text
    assert "डिसेम्बर" in text


async def test_a_report_joining_an_issue_under_way_tells_its_cfa_where_it_stands(
    sqlite_desk: Desk,
) -> None:
    first = await make_report(sqlite_desk.services, summary={"ne": "क"}, cfa_name="A")
    late = await make_report(sqlite_desk.services, summary={"ne": "ख"}, cfa_name="B")
    async with sqlite_desk.services.db.session() as session:
        issue = await issues.create(session, title="Bridge", staff_user_id=None)
        await issues.attach(session, issue, await session.get_one(Report, first.id), None)
        await issues.change_status(session, issue, "in_progress", None)
        await issues.attach(session, issue, await session.get_one(Report, late.id), None)

    async with sqlite_desk.services.db.session() as session:
        messages = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
    assert [m.cfa_id for m in messages] == [first.cfa_id, late.cfa_id]
    assert late.reference in messages[1].parts[0]["text"]
    assert "काम सुरु" in messages[1].parts[0]["text"]
