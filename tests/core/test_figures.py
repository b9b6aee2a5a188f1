"""The programme's figures, counted on known data planted in each database kind, and
their CSV and XLSX exports read back."""

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select

from core import figures
from core.config import PROJECT_ROOT
from core.deployment import load_deployment
from core.figures import ALL, COLUMNS
from core.models import (
    Broadcast,
    Bulletin,
    Cfa,
    Community,
    ConversationSession,
    Issue,
    OutboxMessage,
    Recipient,
    Report,
    Station,
    SurveyDefinition,
)
from core.services import Services
from scheduler.reminders import missing_cfas
from tests.conftest import _truncate, migrate, settings_for

GAJURI, MELAMCHI, TIKAPUR = "dhading-gajuri-3", "sindhupalchok-melamchi-4", "kailali-tikapur-5"
MONTHS = ["2026-10", "2026-11"]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Plant:
    """Puts rows straight into the database, as the intake and desk would leave them."""

    services: Services
    reports: int = 0

    async def ids(self) -> tuple[dict[str, int], dict[str, int]]:
        async with self.services.db.session() as session:
            places = await session.execute(select(Community.code, Community.id))
            surveys = await session.execute(
                select(SurveyDefinition.survey_id, SurveyDefinition.id)
            )
            return dict(iter(places.all())), dict(iter(surveys.all()))

    async def cfa(
        self, community: str, created: str, *, status: str = "active", role: str = "reporter"
    ) -> int:
        places, _ = await self.ids()
        async with self.services.db.session() as session:
            cfa = Cfa(
                name="Planted",
                community_id=places[community],
                language="ne",
                status=status,
                role=role,
                created_at=at(created),
            )
            session.add(cfa)
            await session.flush()
            return cfa.id

    async def report(
        self,
        cfa_id: int,
        community: str,
        submitted: str,
        *,
        survey: str = "report",
        validated: str | None = None,
        issue_id: int | None = None,
    ) -> int:
        places, surveys = await self.ids()
        self.reports += 1
        async with self.services.db.session() as session:
            report = Report(
                reference=f"NP-2026-{self.reports:06d}",
                cfa_id=cfa_id,
                community_id=places[community],
                survey_definition_id=surveys[survey],
                kind="survey" if survey == "monthly" else "report",
                category="monthly_survey" if survey == "monthly" else "health",
                language="ne",
                channel="telegram",
                answers={},
                submitted_at=at(submitted),
                status="validated" if validated else "received",
                validated_at=at(validated) if validated else None,
                issue_id=issue_id,
            )
            session.add(report)
            await session.flush()
            return report.id

    async def issue(
        self, reference: str, community: str | None, status: str, resolved: str | None
    ) -> int:
        places, _ = await self.ids()
        async with self.services.db.session() as session:
            issue = Issue(
                reference=reference,
                title="Planted issue",
                community_id=places[community] if community else None,
                status=status,
                resolved_at=at(resolved) if resolved else None,
            )
            session.add(issue)
            await session.flush()
            return issue.id

    async def bulletin(self, station: str, air: str, status: str) -> int:
        async with self.services.db.session() as session:
            row = await session.scalar(select(Station).where(Station.code == station))
            assert row is not None
            moment = at(air)
            bulletin = Bulletin(
                station_id=row.id, air_date=moment.date(), air_at=moment, status=status
            )
            session.add(bulletin)
            await session.flush()
            return bulletin.id

    async def deliveries(
        self, bulletin_id: int, communities: list[str], states: list[str], sent: str
    ) -> None:
        async with self.services.db.session() as session:
            group = Recipient(
                channel="telegram",
                address=f"-100{bulletin_id}",
                kind="group",
                title="Planted group",
                communities=communities,
                status="approved",
            )
            broadcast = Broadcast(bulletin_id=bulletin_id, recipients=len(states))
            session.add_all([group, broadcast])
            await session.flush()
            for number, state in enumerate(states):
                session.add(
                    OutboxMessage(
                        dedupe_key=f"broadcast:{broadcast.id}:{number}",
                        channel="telegram",
                        address=group.address,
                        purpose="broadcast",
                        broadcast_id=broadcast.id,
                        recipient_id=group.id,
                        parts=[],
                        state=state,
                        sent_at=at(sent) if state == "sent" else None,
                    )
                )

    async def conversation(self, cfa_id: int, state: str, started: str) -> None:
        async with self.services.db.session() as session:
            session.add(
                ConversationSession(cfa_id=cfa_id, state=state, answers={}, started_at=at(started))
            )


async def plant_two_months(services: Services) -> None:
    """October and November 2026 of a small programme; the expected figures are in the
    tests, worked out by hand from what is planted here."""
    plant = Plant(services)
    sita = await plant.cfa(GAJURI, "2026-09-01T00:00")
    hari = await plant.cfa(GAJURI, "2026-09-01T00:00")
    # Registered in November: not expected to answer October's survey.
    gita = await plant.cfa(GAJURI, "2026-11-15T00:00")
    await plant.cfa(GAJURI, "2026-09-01T00:00", status="inactive")
    await plant.cfa(GAJURI, "2026-09-01T00:00", role="journalist")
    maya = await plant.cfa(MELAMCHI, "2026-09-01T00:00")

    # Surveys: Sita in October and November (the November one sent at 00:45 on the 1st,
    # Kathmandu time, still 31 October in UTC); Hari in November only; Maya twice in
    # October, which is one CFA who answered.
    await plant.report(sita, GAJURI, "2026-10-10T04:00", survey="monthly")
    await plant.report(sita, GAJURI, "2026-10-31T19:00", survey="monthly")
    await plant.report(hari, GAJURI, "2026-11-20T04:00", survey="monthly")
    await plant.report(maya, MELAMCHI, "2026-10-02T04:00", survey="monthly")
    await plant.report(maya, MELAMCHI, "2026-10-25T04:00", survey="monthly")

    # Problem reports: one sent in October and validated in November; two in November.
    water = await plant.issue("IS-1", GAJURI, "resolved", "2026-11-28T10:00")
    await plant.report(sita, GAJURI, "2026-10-20T04:00", validated="2026-11-02T04:00")
    await plant.report(
        gita, GAJURI, "2026-11-16T04:00", validated="2026-11-17T04:00", issue_id=water
    )
    await plant.report(maya, MELAMCHI, "2026-11-18T04:00")

    # An issue without a community counts where its reports are; a closed one not at all.
    road = await plant.issue("IS-2", None, "resolved", "2026-11-29T10:00")
    await plant.report(hari, GAJURI, "2026-11-03T04:00", issue_id=road)
    await plant.report(maya, MELAMCHI, "2026-11-04T04:00", issue_id=road)
    await plant.issue("IS-3", GAJURI, "closed", None)

    # A conversation under way since November; an idle one is already counted as a report.
    await plant.conversation(gita, "asking", "2026-11-30T04:00")
    await plant.conversation(hari, "idle", "2026-11-20T03:50")

    # Radio Dhading (audience 45,000) on air in both months, twice in November; Radio
    # Melamchi (30,000) only a draft; a group of both communities got two deliveries.
    await plant.bulletin("radio-dhading", "2026-10-09T13:15", "aired")
    first = await plant.bulletin("radio-dhading", "2026-11-06T13:15", "aired")
    await plant.bulletin("radio-dhading", "2026-11-13T13:15", "approved")
    await plant.bulletin("radio-melamchi", "2026-11-14T12:15", "draft")
    await plant.deliveries(
        first, [GAJURI, MELAMCHI], ["sent", "sent", "failed"], "2026-11-06T13:45"
    )


@dataclass(frozen=True)
class Counted:
    """The two months counted on one database kind, and who the reminders would miss."""

    figures: figures.Figures
    missing_in_november: int


async def _plant_and_count(url: str, data_dir: Path) -> Counted:
    services = Services.build(settings_for(url, data_dir))
    try:
        await services.sync_content()
        await plant_two_months(services)
        async with services.db.session() as session:
            result = await figures.compute(session, services.deployment, MONTHS)
            missing = await missing_cfas(session, "monthly", "2026-11", "Asia/Kathmandu")
    finally:
        await services.close()
    return Counted(result, len(missing))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def counted(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Counted:
    """Planted and counted once per database kind: counting only reads, so the tests of
    this module share it."""
    data_dir = tmp_path_factory.mktemp(f"figures-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{data_dir / 'helpdesk.db'}"
        migrate(url)
    else:
        url = request.getfixturevalue("pg_url")
        asyncio.run(_truncate(url))
    return asyncio.run(_plant_and_count(url, data_dir))


def test_reports_and_conversations_count_in_the_programme_month(
    counted: Counted,
) -> None:
    result = counted.figures

    october, november = result.row("2026-10", GAJURI), result.row("2026-11", GAJURI)
    assert (october.reports, november.reports) == (2, 4)
    assert (october.validated, november.validated) == (0, 2)
    assert (october.conversations, november.conversations) == (2, 5)
    assert result.row("2026-11", MELAMCHI).reports == 2
    assert result.row("2026-11", ALL).reports == 6
    assert result.row("2026-10", ALL).conversations == 4


def test_issues_count_once_in_the_total_and_in_each_community_of_their_reports(
    counted: Counted,
) -> None:
    result = counted.figures

    assert result.row("2026-11", GAJURI).issues_resolved == 2
    assert result.row("2026-11", MELAMCHI).issues_resolved == 1
    assert result.row("2026-11", TIKAPUR).issues_resolved == 0
    assert result.row("2026-11", ALL).issues_resolved == 2
    assert result.row("2026-10", ALL).issues_resolved == 0


def test_people_reached_are_sent_deliveries_and_each_station_audience_once_a_month(
    counted: Counted,
) -> None:
    result = counted.figures

    november = result.row("2026-11", GAJURI)
    assert (november.group_deliveries, november.station_audience) == (2, 45_000)
    assert result.row("2026-11", MELAMCHI).people_reached == 2
    assert result.row("2026-11", ALL).people_reached == 45_002
    assert result.row("2026-10", ALL).people_reached == 45_000


def test_compliance_counts_reporters_registered_by_the_month_end(
    counted: Counted,
) -> None:
    result = counted.figures

    october, november = result.row("2026-10", GAJURI), result.row("2026-11", GAJURI)
    assert (october.surveyed_cfas, october.active_cfas) == (1, 2)
    assert (november.surveyed_cfas, november.active_cfas) == (2, 3)
    assert result.row("2026-10", MELAMCHI).compliance == 1.0
    assert result.row("2026-11", MELAMCHI).compliance == 0.0
    assert result.row("2026-10", TIKAPUR).compliance is None
    total = result.row("2026-11", ALL)
    assert total.active_cfas - total.surveyed_cfas == counted.missing_in_november == 2


def test_csv_export_reads_back_to_the_same_figures(counted: Counted) -> None:
    result = counted.figures

    rows = list(csv.DictReader(io.StringIO(figures.to_csv(result))))

    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 2 * (len(result.communities) + 1)
    by_key = {(row["month"], row["community"]): row for row in rows}
    november = by_key[("2026-11", GAJURI)]
    assert november["community_name"] == "Gajuri Ward 3"
    assert (november["reports"], november["people_reached"]) == ("4", "45002")
    assert float(november["survey_compliance"]) == pytest.approx(2 / 3, abs=1e-4)
    assert by_key[("2026-10", TIKAPUR)]["survey_compliance"] == ""
    assert by_key[("2026-11", ALL)]["issues_resolved"] == "2"


def test_xlsx_export_reads_back_to_the_same_figures(counted: Counted) -> None:
    result = counted.figures

    workbook = openpyxl.load_workbook(io.BytesIO(figures.to_xlsx(result)))

    sheet = workbook["Figures"]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert tuple(values[0]) == COLUMNS
    assert values[1:] == figures.table(result)
    total = next(row for row in values if row[:2] == ["2026-11", ALL])
    assert total[COLUMNS.index("people_reached")] == 45_002


def test_month_ranges_are_checked() -> None:
    assert figures.month_range("2026-11", "2027-02") == [
        "2026-11",
        "2026-12",
        "2027-01",
        "2027-02",
    ]
    for first, last in [("2026-13", "2027-01"), ("2026-11", "2026-10"), ("26-11", "2026-12")]:
        with pytest.raises(figures.FiguresError):
            figures.month_range(first, last)


def test_recent_months_end_in_the_programme_month_not_the_utc_one() -> None:
    # 18:30 UTC on 31 December is already 1 January in Kathmandu.
    now = datetime(2026, 12, 31, 18, 30, tzinfo=UTC)

    months = figures.recent_months(load_deployment(PROJECT_ROOT / "content"), 3, now)

    assert months == ["2026-11", "2026-12", "2027-01"]
