"""A viewer sees reports anonymised on every page open to them: known values of a CFA
(name, phone number, chat id, raw words) are planted and every page is scanned."""

import re

from sqlalchemy import select

from core import issues, review
from core.models import ChannelIdentity, InfoRequest, Report
from tests.desk.conftest import Desk
from tests.desk.test_routes import _needed_role, _protected
from tests.helpers import make_report

NAME = "Plantedname Zqxw"
PHONE = "9779841555123"
RAW_WORDS = "Ramesh Kkqq stole the pump"
ANSWER = "Hari Wwvv knows more"


async def test_a_viewer_sees_no_cfa_name_number_chat_id_or_raw_answer_anywhere(
    desk: Desk,
) -> None:
    report = await make_report(
        desk.services, cfa_name=NAME, answers={"description": RAW_WORDS}, summary=None
    )
    async with desk.services.db.session() as session:
        stored = await session.get_one(Report, report.id)
        session.add(ChannelIdentity(cfa_id=stored.cfa_id, channel="whatsapp", address=PHONE))
        chat_id = (
            await session.scalar(
                select(ChannelIdentity.address).where(
                    ChannelIdentity.cfa_id == stored.cfa_id, ChannelIdentity.channel == "telegram"
                )
            )
        ) or ""
        await review.validate(session, desk.services.deployment, stored, {"en": "No water"}, None)
        issue = await issues.create(session, title="Water", staff_user_id=None)
        await issues.attach(session, issue, stored, None)
        await issues.change_status(session, issue, "referred", None, authority="Ward office")
        session.add(InfoRequest(report_id=stored.id, question="Who?", answer=ANSWER))
    planted = [NAME, PHONE, chat_id, RAW_WORDS, ANSWER]
    viewer = await desk.signed_in("viewer")
    values = {"reference": report.reference, "issue_id": str(issue.id)}

    scanned = []
    for method, _filled, route in _protected(desk):
        if method != "GET" or _needed_role(route.dependant) != "viewer":
            continue
        wanted = set(re.findall(r"\{([^}]+)\}", route.path))
        if not wanted <= values.keys():
            continue  # a page about objects this test does not make (bulletins...)
        path = re.sub(r"\{([^}]+)\}", lambda m: values[m.group(1)], route.path)
        for query in ("", "?status=all"):
            response = await viewer.get(path + query, follow_redirects=True)
            assert response.status_code == 200, f"{path}{query}: {response.status_code}"
            for value in planted:
                assert value not in response.text, f"{value!r} shown to a viewer on {path}"
            scanned.append(path + query)

    assert {"/desk/", f"/desk/reports/{report.reference}", f"/desk/issues/{issue.id}"} <= set(
        scanned
    )
    editor = await desk.signed_in("editor")
    seen_by_editor = (await editor.get(f"/desk/reports/{report.reference}")).text
    assert NAME in seen_by_editor and RAW_WORDS in seen_by_editor


async def test_a_viewer_does_not_see_the_summary_of_a_sensitive_report(
    sqlite_desk: Desk,
) -> None:
    report = await make_report(
        sqlite_desk.services, category="trafficking", summary={"en": "Girls taken at night"}
    )
    viewer = await sqlite_desk.signed_in("viewer")
    editor = await sqlite_desk.signed_in("editor")

    queue = await viewer.get("/desk/", params={"status": "validated"})
    page = await viewer.get(f"/desk/reports/{report.reference}")
    seen_by_editor = await editor.get(f"/desk/reports/{report.reference}")

    assert report.reference in queue.text
    assert "Girls taken at night" not in queue.text + page.text
    assert "Girls taken at night" in seen_by_editor.text
