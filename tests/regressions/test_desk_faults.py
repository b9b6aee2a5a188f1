"""Faults found by a new user trying the staff desk and the partner API, one test each,
on the real app and database."""

from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
from sqlalchemy import func, select

from core.desk.auth import hash_password
from core.models import BulletinFile, BulletinItem, Issue, Report, StaffUser
from tests.desk import conftest as desk_fixtures
from tests.desk.conftest import Desk, csrf_of
from tests.desk.planted import plant_personal_report
from tests.desk.test_api import bearer, token_for
from tests.desk.test_bulletins_page import STATION, bulletin_id_of, pick, post_form
from tests.helpers import make_report, run_helpdesk

HUGE = "99999999999999999999"

# The desk's fixtures, as tests/desk gets them from its conftest.
desk = desk_fixtures.desk
sqlite_desk = desk_fixtures.sqlite_desk
light_hashing = desk_fixtures.light_hashing


async def post_page_form(
    client: httpx.AsyncClient, page: str, action: str, **data: str | list[str]
) -> httpx.Response:
    """Post to ``action`` with ``page``'s CSRF token, whether or not the page shows it."""
    shown = await client.get(page)
    return await client.post(action, data={"csrf": csrf_of(shown.text), **data})


def is_page(response: httpx.Response) -> bool:
    return response.headers["content-type"].startswith("text/html")


def words(response: httpx.Response) -> str:
    """A page's text as a person reads it, with Jinja's escapes (``&#39;``) undone."""
    return unescape(response.text)


async def item_text(desk: Desk, bulletin_id: int, reference: str) -> str:
    """The script text of the report ``reference`` in the bulletin (in Nepali)."""
    async with desk.services.db.session() as session:
        text = await session.scalar(
            select(BulletinItem.text)
            .join(Report, Report.id == BulletinItem.report_id)
            .where(
                BulletinItem.bulletin_id == bulletin_id,
                BulletinItem.language == "ne",
                Report.reference == reference,
            )
        )
    assert text, f"{reference} is not in bulletin {bulletin_id}"
    return text


async def add_audio(desk: Desk, bulletin_id: int) -> int:
    """A rendered file of the bulletin, as the render would record it; returns its id."""
    audio = desk.services.settings.resolved_media_dir / "bulletin.mp3"
    audio.parent.mkdir(parents=True, exist_ok=True)
    audio.write_bytes(b"ID3 not really audio")
    async with desk.services.db.session() as session:
        file = BulletinFile(
            bulletin_id=bulletin_id, language="ne", format="mp3", path="bulletin.mp3",
            size=20, duration_s=1.0, lufs=-16.0, true_peak_dbtp=-1.0, sha256="0" * 64,
            engines=["espeak-ng"],
        )  # fmt: skip
        session.add(file)
        await session.flush()
        return file.id


# Partner API --------------------------------------------------------------------------


async def test_since_takes_a_date_or_a_time_without_a_zone_as_utc(desk: Desk) -> None:
    await make_report(desk.services)
    _, token = await token_for(desk)
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    asked = {
        "today": now.date().isoformat(),
        "tomorrow": (now.date() + timedelta(days=1)).isoformat(),
        "an hour ago": (now - timedelta(hours=1)).isoformat(),
        "in an hour": (now + timedelta(hours=1)).isoformat(),
    }

    async with desk.client() as client:
        answers = {
            when: await client.get(
                "/api/v1/reports", params={"since": since}, headers=bearer(token)
            )
            for when, since in asked.items()
        }

    assert {when: a.status_code for when, a in answers.items()} == dict.fromkeys(asked, 200)
    totals = {when: a.json()["total"] for when, a in answers.items()}
    assert totals == {"today": 1, "tomorrow": 0, "an hour ago": 1, "in an hour": 0}


async def test_an_offset_too_large_for_the_database_is_refused(sqlite_desk: Desk) -> None:
    _, token = await token_for(sqlite_desk)

    async with sqlite_desk.client() as client:
        reports = await client.get(f"/api/v1/reports?offset={HUGE}", headers=bearer(token))
        issues = await client.get(f"/api/v1/issues?offset={HUGE}", headers=bearer(token))
        limit = await client.get(f"/api/v1/issues?limit={HUGE}", headers=bearer(token))

    assert (reports.status_code, issues.status_code, limit.status_code) == (422, 422, 422)


async def test_an_id_too_large_for_the_database_in_a_desk_url_is_refused(
    sqlite_desk: Desk,
) -> None:
    editor = await sqlite_desk.signed_in("editor")
    paths = [
        f"/desk/bulletins/{HUGE}",
        f"/desk/bulletins/{HUGE}/render-status",
        f"/desk/bulletins/1/audio/{HUGE}",
        f"/desk/issues/{HUGE}",
        f"/desk/media/{HUGE}",
    ]

    answers = [await editor.get(path) for path in paths]

    assert [a.status_code for a in answers] == [422] * len(paths)


# Sensitive reports in bulletins -------------------------------------------------------


async def test_a_viewer_never_sees_or_hears_a_sensitive_report_in_a_bulletin(
    sqlite_desk: Desk,
) -> None:
    desk = sqlite_desk
    planted = await plant_personal_report(desk.services)
    async with desk.services.db.session() as session:
        hidden = await session.scalar(
            select(Report).where(Report.reference == planted.sensitive_reference)
        )
        assert hidden is not None and hidden.sensitive and hidden.summary
        hidden_id, summaries = hidden.id, list(hidden.summary.values())
    editor = await desk.signed_in("editor")
    page = await pick(editor, [hidden_id], [])
    spoken = await item_text(desk, bulletin_id_of(page), planted.sensitive_reference)
    file_id = await add_audio(desk, bulletin_id_of(page))
    viewer = await desk.signed_in("viewer")

    seen = await viewer.get(page)
    heard = await viewer.get(f"{page}/audio/{file_id}")
    edited = await editor.get(page)

    assert seen.status_code == 200
    assert spoken not in seen.text
    assert [text for text in summaries if text in seen.text] == []
    assert "only editors see it" in seen.text
    assert f"/audio/{file_id}" not in seen.text and heard.status_code == 403
    assert spoken in edited.text, "editors still read and edit it"


# Usernames ----------------------------------------------------------------------------


async def test_a_username_that_would_break_a_url_is_refused_on_the_desk_and_the_cli(
    sqlite_desk: Desk,
) -> None:
    desk = sqlite_desk
    admin = await desk.signed_in("admin")
    wrong = ["mina/rai", "who?", "a#b", "mina rai", "x"]

    answers = [
        await post_page_form(
            admin, "/desk/staff", "/desk/staff",
            username=name, name="Mina Rai", role="viewer", password="a long enough password",
        )
        for name in wrong
    ]  # fmt: skip
    command = await run_helpdesk(
        desk.services.settings,
        "staff", "add", "--username", "mina/rai", "--name", "Mina Rai", "--password-stdin",
        stdin="a long enough password\n",
    )  # fmt: skip

    assert [a.status_code for a in answers] == [400] * len(wrong)
    assert all(is_page(a) and "a username is 2 to 64 letters" in a.text for a in answers)
    assert command.exit_code == 1 and "a username is 2 to 64 letters" in command.output
    async with desk.services.db.session() as session:
        names = set(await session.scalars(select(StaffUser.username)))
    assert names == {"admin"}


async def test_an_old_account_with_a_slash_in_its_name_can_be_disabled(
    sqlite_desk: Desk,
) -> None:
    desk = sqlite_desk
    async with desk.services.db.session() as session:
        session.add(
            StaffUser(
                username="old/name?#x",
                name="Made before usernames were checked",
                role="viewer",
                password_hash=hash_password("a long enough password"),
            )
        )
    admin = await desk.signed_in("admin")
    action = "/desk/staff/old%2Fname%3F%23x/disable"

    disabled = await post_form(admin, "/desk/staff", action)

    assert disabled.status_code == 303, disabled.text
    async with desk.services.db.session() as session:
        old = await session.scalar(select(StaffUser).where(StaffUser.username == "old/name?#x"))
    assert old is not None and not old.active


# Form mistakes ------------------------------------------------------------------------


async def test_mistakes_in_a_bulletin_s_forms_show_the_page_with_a_message(
    sqlite_desk: Desk,
) -> None:
    desk = sqlite_desk
    await make_report(desk.services, summary={"ne": "गजुरीमा पानी आएन।", "en": "No water."})
    editor = await desk.signed_in("editor")
    page = await pick(editor, [], [])
    new = f"/desk/bulletins/new?station={STATION}"

    cleared = await post_form(editor, page, f"{page}/items/ne/1/edit", text="")
    empty = await post_form(editor, page, f"{page}/announcement", language="ne", text="")
    not_a_number = await post_page_form(editor, page, f"{page}/include", issue="abc")
    too_large = await post_page_form(editor, page, f"{page}/include", report=HUGE)
    bad_pick = await post_page_form(
        editor, new, "/desk/bulletins/new", station=STATION, air_date="2026-12-11", report="x"
    )
    bad_date = await post_page_form(
        editor, new, "/desk/bulletins/new", station=STATION, air_date="soon"
    )

    answers = [cleared, empty, not_a_number, too_large, bad_pick, bad_date]
    assert [a.status_code for a in answers] == [409, 400, 400, 400, 400, 400]
    assert all(is_page(a) and 'class="error"' in a.text for a in answers)
    assert "needs some text" in words(cleared)
    assert "an announcement needs some text" in words(empty)
    assert "'abc' is not the number of an issue" in words(not_a_number)
    assert f"'{HUGE}' is not the number of a report" in words(too_large)
    assert "'x' is not the number of a report" in words(bad_pick)
    assert "the air date is a date like" in words(bad_date)


async def test_attaching_to_an_unknown_issue_says_so_and_opens_none(sqlite_desk: Desk) -> None:
    desk = sqlite_desk
    report = await make_report(desk.services, summary={"ne": "गजुरीमा पानी आएन।"})
    editor = await desk.signed_in("editor")
    page = f"/desk/reports/{report.reference}"

    attached = await post_form(
        editor, page, f"{page}/attach", issue="IS-2026-999999", title="Gajuri water"
    )

    assert attached.status_code == 400 and is_page(attached)
    assert "there is no issue IS-2026-999999" in attached.text
    async with desk.services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Issue)) == 0
