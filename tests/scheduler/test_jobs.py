"""The scheduled jobs on real databases, fired through the same path as the scheduler:
a bulletin built before its slot with real eSpeak NG, unapproved bulletins kept from
groups, and reminders only for the CFAs who have not answered this month."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from core.db import utcnow
from core.models import Bulletin, BulletinFile, Cfa, JobRun, OutboxMessage, Recipient
from core.services import Services
from scheduler import runtime
from scheduler.jobs import build_bulletin, remind_cfas, send_to_groups
from tests.helpers import Person, make_invite, make_report

KATHMANDU = ZoneInfo("Asia/Kathmandu")
# Thursday 3 December 2026, 10:00 in Kathmandu.
THURSDAY = datetime(2026, 12, 3, 10, 0, tzinfo=KATHMANDU)
# The Dhading build fires on Friday 4 December at 17:00 Kathmandu, two hours before 19:00.
DHADING_BUILD = datetime(2026, 12, 4, 17, 0, tzinfo=KATHMANDU).astimezone(UTC)


async def fire(services: Services, job: object, job_id: str, at: datetime, *args: str) -> str:
    """Fire a job body as the scheduler's executor does, for fire time ``at``."""
    runtime.install(runtime.Runtime(services, "test"))
    try:
        with runtime.firing(job_id, at):
            return await job(*args)  # type: ignore[operator, no-any-return]
    finally:
        runtime.install(None)


async def job_run(services: Services, job_id: str) -> JobRun:
    async with services.db.session() as session:
        run = await session.scalar(select(JobRun).where(JobRun.job_id == job_id))
    assert run is not None
    return run


async def test_build_composes_and_renders_the_bulletin_of_the_coming_slot(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    await make_report(
        services,
        summary={"ne": "गजुरीमा धाराको पानी फेरि आयो।"},
        validated_at=DHADING_BUILD - timedelta(days=1),
    )
    job_id = "build:radio-dhading:friday-1900"

    detail = await fire(
        services, build_bulletin, job_id, DHADING_BUILD, "radio-dhading", "friday", "19:00"
    )
    again = await fire(
        services, build_bulletin, job_id, DHADING_BUILD, "radio-dhading", "friday", "19:00"
    )

    async with services.db.session() as session:
        bulletin = await session.scalar(select(Bulletin))
        assert bulletin is not None
        files = list(await session.scalars(select(BulletinFile)))
    assert bulletin.air_at == datetime(2026, 12, 4, 19, 0, tzinfo=KATHMANDU)
    assert str(bulletin.air_date) == "2026-12-04"
    assert bulletin.status == "rendered"  # waits for an editor's approval
    assert {f.format for f in files} >= {"mp3", "opus"}
    assert all(f.duration_s > 3 for f in files)
    assert f"bulletin {bulletin.id}" in detail
    assert again == "already run"
    run = await job_run(services, job_id)
    assert run.outcome == "done" and run.fire_time == DHADING_BUILD


async def test_unapproved_bulletin_is_not_sent_to_groups(services: Services) -> None:
    async with services.db.session() as session:
        session.add(_group("-1001", ["dhading-gajuri-3"]))
    from core.bulletins import compose

    async with services.db.session() as session:
        composed = await compose(
            session,
            services.deployment,
            "radio-dhading",
            datetime(2026, 12, 4, 19, 0, tzinfo=KATHMANDU),
        )
    groups_at = datetime(2026, 12, 4, 19, 30, tzinfo=KATHMANDU)

    await fire(
        services,
        send_to_groups,
        "groups:radio-dhading:friday-1900",
        groups_at,
        "radio-dhading",
        "friday",
        "19:00",
    )

    run = await job_run(services, "groups:radio-dhading:friday-1900")
    assert run.outcome == "skipped"
    assert f"bulletin {composed.bulletin.id} is draft, not approved" in (run.detail or "")
    async with services.db.session() as session:
        assert (await session.scalars(select(OutboxMessage))).first() is None


async def test_no_bulletin_that_day_is_skipped_with_a_reason(services: Services) -> None:
    at = datetime(2026, 12, 11, 19, 30, tzinfo=KATHMANDU)

    await fire(
        services,
        send_to_groups,
        "groups:radio-dhading:friday-1900",
        at,
        "radio-dhading",
        "friday",
        "19:00",
    )

    run = await job_run(services, "groups:radio-dhading:friday-1900")
    assert run.outcome == "skipped" and "no bulletin for radio-dhading on 2026-12-11" in (
        run.detail or ""
    )


def _group(address: str, communities: list[str]) -> Recipient:
    return Recipient(
        channel="telegram",
        address=address,
        kind="supergroup",
        title="Ward notices",
        language="ne",
        communities=communities,
        status="approved",
    )


async def register(services: Services, code: str, language: str = "ne") -> Person:
    await make_invite(services, code, language=language, name=f"CFA {code}")
    person = Person(services, address=code, channel="telegram")
    await person.say(f"/start {code}")
    return person


async def answer_monthly(person: Person, services: Services, when: datetime) -> None:
    """Store a monthly survey answer from ``person`` sent at ``when``."""
    from core.models import ChannelIdentity, Report, SurveyDefinition

    async with services.db.session() as session:
        identity = await session.scalar(
            select(ChannelIdentity).where(ChannelIdentity.address == person.address)
        )
        survey = await session.scalar(
            select(SurveyDefinition).where(SurveyDefinition.survey_id == "monthly")
        )
        assert identity is not None and survey is not None
        cfa = await session.get(Cfa, identity.cfa_id)
        assert cfa is not None
        session.add(
            Report(
                reference=f"NP-2026-9{identity.cfa_id:05d}",
                cfa_id=cfa.id,
                community_id=cfa.community_id,
                survey_definition_id=survey.id,
                kind="survey",
                category="monthly",
                language=cfa.language,
                channel="telegram",
                answers={},
                submitted_at=when,
            )
        )


async def test_reminders_go_to_those_who_have_not_answered_this_local_month(
    services: Services,
) -> None:
    answered = await register(services, "ANSWERED01")
    late_in_utc = await register(services, "LATEUTC001")
    missing = await register(services, "MISSING001", language="en")
    opted_out = await register(services, "OPTEDOUT01")
    # 1 December 00:30 in Kathmandu is still 30 November in UTC: it counts for December.
    await answer_monthly(late_in_utc, services, datetime(2026, 11, 30, 18, 45, tzinfo=UTC))
    await answer_monthly(answered, services, datetime(2026, 12, 5, 9, 0, tzinfo=UTC))
    # Last month's answer does not count for this month.
    await answer_monthly(missing, services, datetime(2026, 11, 10, 9, 0, tzinfo=UTC))
    async with services.db.session() as session:
        cfa = await session.scalar(select(Cfa).where(Cfa.name == "CFA OPTEDOUT01"))
        assert cfa is not None
        cfa.opted_out_at = utcnow()
    at = datetime(2026, 12, 20, 10, 0, tzinfo=KATHMANDU)

    detail = await fire(services, remind_cfas, "reminders:monthly", at, "monthly")
    await fire(services, remind_cfas, "reminders:monthly", at + timedelta(seconds=1), "monthly")

    async with services.db.session() as session:
        queued = list(await session.scalars(select(OutboxMessage)))
    assert [m.address for m in queued] == ["MISSING001"]
    reminder = queued[0]
    assert reminder.purpose == "reminder" and reminder.channel == "telegram"
    assert "survey" in reminder.parts[0]["text"]  # the English text, as the CFA chose
    assert "start:monthly" in str(reminder.parts[0])
    assert detail.startswith("2026-12: 1 reminders queued, 1 left out")
    assert opted_out.address not in {m.address for m in queued}


@pytest.mark.parametrize("month", ["2026-12"])
async def test_cfa_missing_lists_the_same_people(services: Services, month: str) -> None:
    from scheduler.reminders import missing_cfas

    done = await register(services, "DONE000001")
    await register(services, "NOTYET0001")
    await answer_monthly(done, services, datetime(2026, 12, 2, 9, 0, tzinfo=UTC))

    async with services.db.session() as session:
        missing = await missing_cfas(session, "monthly", month, "Asia/Kathmandu")

    assert [m.cfa.name for m in missing] == ["CFA NOTYET0001"]
    assert missing[0].last_answered is None
