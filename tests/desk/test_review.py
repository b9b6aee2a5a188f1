"""The review queue on the real app: what editors see and do with a received report."""

from pathlib import Path

import httpx
from sqlalchemy import select

from bot.messages import Incoming, Kind
from core.models import AuditEntry, InfoRequest, Media, OutboxMessage, Report
from tests.desk.conftest import Desk, csrf_of
from tests.helpers import make_report


async def _post(
    client: httpx.AsyncClient, page_url: str, action: str, data: dict[str, str]
) -> httpx.Response:
    page = await client.get(page_url)
    return await client.post(action, data={**data, "csrf": csrf_of(page.text)})


async def test_queue_shows_received_reports_filtered_by_community_and_category(
    sqlite_desk: Desk,
) -> None:
    water = await make_report(sqlite_desk.services, category="service_delivery", cfa_name="A")
    health = await make_report(sqlite_desk.services, category="health", cfa_name="B")
    editor = await sqlite_desk.signed_in("editor")

    everything = await editor.get("/desk/")
    by_category = await editor.get("/desk/", params={"category": "health"})
    elsewhere = await editor.get("/desk/", params={"community": "no-such-place"})

    assert water.reference in everything.text and health.reference in everything.text
    assert health.reference in by_category.text and water.reference not in by_category.text
    assert "No reports match" in elsewhere.text


async def test_validate_on_the_desk_stores_summaries_who_and_an_audit_entry(desk: Desk) -> None:
    report = await make_report(desk.services)
    editor = await desk.signed_in("editor")
    url = f"/desk/reports/{report.reference}"

    response = await _post(
        editor,
        url,
        f"{url}/validate",
        {"summary_ne": "  गजुरीमा   पानी छैन ", "summary_en": "No water in Gajuri"},
    )

    assert response.status_code == 303
    async with desk.services.db.session() as session:
        stored = await session.get_one(Report, report.id)
        entries = list(await session.scalars(select(AuditEntry)))
    assert stored.status == "validated"
    assert stored.summary == {"ne": "गजुरीमा पानी छैन", "en": "No water in Gajuri"}
    assert stored.validated_by is not None and stored.validated_at is not None
    assert [(e.action, e.object_id, e.staff_user_id) for e in entries] == [
        ("validated", report.id, stored.validated_by)
    ]


async def test_an_empty_summary_is_refused_on_the_page(sqlite_desk: Desk) -> None:
    report = await make_report(sqlite_desk.services)
    editor = await sqlite_desk.signed_in("editor")
    url = f"/desk/reports/{report.reference}"

    response = await _post(editor, url, f"{url}/validate", {"summary_ne": "   "})

    assert response.status_code == 400
    assert "the summary is empty" in response.text


async def test_reject_needs_a_reason_and_duplicate_names_the_original(sqlite_desk: Desk) -> None:
    first = await make_report(sqlite_desk.services, cfa_name="A")
    second = await make_report(sqlite_desk.services, cfa_name="B")
    third = await make_report(sqlite_desk.services, cfa_name="C")
    editor = await sqlite_desk.signed_in("editor")
    two, three = f"/desk/reports/{second.reference}", f"/desk/reports/{third.reference}"

    no_reason = await _post(editor, two, f"{two}/reject", {"reason": ""})
    rejected = await _post(editor, two, f"{two}/reject", {"reason": "Outside our area"})
    duplicate = await _post(editor, three, f"{three}/duplicate", {"original": first.reference})

    assert no_reason.status_code == 400
    assert rejected.status_code == 303 and duplicate.status_code == 303
    async with sqlite_desk.services.db.session() as session:
        two_stored = await session.get_one(Report, second.id)
        three_stored = await session.get_one(Report, third.id)
    assert (two_stored.status, two_stored.rejected_reason) == ("rejected", "Outside our area")
    assert (three_stored.status, three_stored.duplicate_of_id) == ("duplicate", first.id)


async def test_flag_sensitive_and_back(sqlite_desk: Desk) -> None:
    report = await make_report(sqlite_desk.services)
    editor = await sqlite_desk.signed_in("editor")
    url = f"/desk/reports/{report.reference}"

    await _post(editor, url, f"{url}/sensitive", {"flag": "on"})
    async with sqlite_desk.services.db.session() as session:
        flagged = (await session.get_one(Report, report.id)).sensitive
    await _post(editor, url, f"{url}/sensitive", {"flag": "off"})
    async with sqlite_desk.services.db.session() as session:
        unflagged = (await session.get_one(Report, report.id)).sensitive

    assert (flagged, unflagged) == (True, False)


async def test_question_reaches_the_cfa_in_nepali_and_their_reply_is_the_answer(
    desk: Desk,
) -> None:
    report = await make_report(desk.services)
    editor = await desk.signed_in("editor")
    url = f"/desk/reports/{report.reference}"

    asked = await _post(editor, url, f"{url}/ask", {"question": "कहिलेदेखि पानी छैन?"})
    async with desk.services.db.session() as session:
        message = await session.scalar(select(OutboxMessage))
        identity_address = message.address if message else ""
    replies = await desk.services.engine.handle(
        "telegram", identity_address, Incoming(Kind.TEXT, text="तीन हप्तादेखि")
    )

    assert asked.status_code == 303
    assert message is not None and message.purpose == "notification"
    assert "कहिलेदेखि पानी छैन?" in message.parts[0]["text"]
    assert report.reference in message.parts[0]["text"]
    assert "रिपोर्ट" in message.parts[0]["text"]
    async with desk.services.db.session() as session:
        request = await session.scalar(select(InfoRequest))
    assert request is not None and request.answer == "तीन हप्तादेखि"
    assert report.reference in replies[0].text and "धन्यवाद" in replies[0].text
    page = await editor.get(url)
    assert "तीन हप्तादेखि" in page.text


async def test_without_an_open_question_an_idle_message_gets_the_menu(sqlite_desk: Desk) -> None:
    report = await make_report(sqlite_desk.services)
    async with sqlite_desk.services.db.session() as session:
        session.add(InfoRequest(report_id=report.id, question="?", answer="done before"))

    address = str(700100200)
    replies = await sqlite_desk.services.engine.handle(
        "telegram", address, Incoming(Kind.TEXT, text="hello")
    )

    assert replies[0].buttons, "the menu, not a thank-you"


async def test_media_is_served_to_editors_from_the_media_folder_only(
    sqlite_desk: Desk, tmp_path: Path
) -> None:
    report = await make_report(sqlite_desk.services)
    media_dir = sqlite_desk.services.settings.resolved_media_dir
    (media_dir / "voice").mkdir(parents=True, exist_ok=True)
    (media_dir / "voice" / "note.ogg").write_bytes(b"OggS voice")
    (tmp_path / "secret.txt").write_text("not media")
    async with sqlite_desk.services.db.session() as session:
        for path in ("voice/note.ogg", "../secret.txt"):
            session.add(
                Media(
                    cfa_id=report.cfa_id,
                    report_id=report.id,
                    question_id="voice_note",
                    kind="voice",
                    path=path,
                    mime_type="audio/ogg",
                    size=10,
                    sha256="0" * 64,
                )
            )
    editor = await sqlite_desk.signed_in("editor")
    viewer = await sqlite_desk.signed_in("viewer")

    served = await editor.get("/desk/media/1")
    escaped = await editor.get("/desk/media/2")
    refused = await viewer.get("/desk/media/1")

    assert served.status_code == 200 and served.content == b"OggS voice"
    assert served.headers["content-type"] == "audio/ogg"
    assert escaped.status_code == 404
    assert refused.status_code == 403
