"""Composing and editing bulletin scripts from validated reports."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from core import bulletins
from core.errors import ContentError
from core.models import Bulletin
from core.services import Services
from core.templates import load_template
from tests.helpers import make_report

NE = {"ne": "गजुरीको धारामा तीन हप्तादेखि पानी आएको छैन।"}
AIR = datetime(2026, 12, 4, 13, 15, tzinfo=UTC)


async def compose(
    services: Services, station: str = "radio-dhading", air_at: datetime = AIR, **options: bool
) -> bulletins.Composed:
    async with services.db.session() as session:
        return await bulletins.compose(session, services.deployment, station, air_at, **options)


def texts(bulletin: Bulletin, language: str) -> list[str]:
    return [item.text for item in bulletins.script(bulletin, language)]


async def test_script_is_dated_in_the_station_zone_not_utc(services: Services) -> None:
    await make_report(
        services,
        community="sindhupalchok-melamchi-4",
        summary={"en": "The Melamchi bridge reopened.", "ne": "पुल खुल्यो।"},
        validated_at=datetime(2026, 3, 1, tzinfo=UTC),
    )

    composed = await compose(services, "radio-melamchi", datetime(2026, 3, 7, 18, 30, tzinfo=UTC))

    assert composed.bulletin.air_date.isoformat() == "2026-03-08"
    intro = texts(composed.bulletin, "en")[0]
    assert "March 8, 2026" in intro and "Sunday" in intro and "7" not in intro


async def test_items_come_from_validated_summaries_of_the_station_communities(
    services: Services,
) -> None:
    await make_report(services, summary=NE)
    await make_report(services, summary={"ne": "अर्को जिल्लाको खबर।"}, community="kailali-tikapur-5")
    await make_report(services)  # received, not validated

    script = texts((await compose(services)).bulletin, "ne")

    assert len(script) == 3 and NE["ne"] in script[1]
    assert not any("अर्को जिल्लाको" in text for text in script)


async def test_nothing_that_identifies_the_reporter_reaches_the_script(services: Services) -> None:
    await make_report(
        services,
        summary=NE,
        cfa_name="Sita Tamang",
        answers={"description": "call me on +9779841234567"},
    )

    bulletin = (await compose(services)).bulletin
    script = " ".join(item.text for item in bulletin.items)

    for personal in ("Sita", "Tamang", "9841234567", "700100200", "call me"):
        assert personal not in script


async def test_sensitive_reports_stay_out_unless_an_editor_adds_them(services: Services) -> None:
    report = await make_report(services, category="security", summary={"ne": "सुरक्षासम्बन्धी खबर।"})
    bulletin = (await compose(services)).bulletin
    assert not any("सुरक्षासम्बन्धी" in text for text in texts(bulletin, "ne"))

    async with services.db.session() as session:
        await bulletins.add_report(
            session, services.deployment, bulletin.id, report.reference, "ne"
        )
    async with services.db.session() as session:
        edited = await bulletins.get_bulletin(session, bulletin.id)

    script = texts(edited, "ne")
    assert "सुरक्षासम्बन्धी खबर।" in script[-2] and bulletins.script(edited, "ne")[-1].kind == "outro"


async def test_edits_reorder_and_drops_are_what_the_script_keeps(services: Services) -> None:
    await make_report(services, summary=NE)
    bulletin = (await compose(services)).bulletin

    async with services.db.session() as session:
        await bulletins.add_announcement(
            session, services.deployment, bulletin.id, "ne", "शुक्रबार स्वास्थ्य शिविर।", at=2
        )
        await bulletins.edit_item(session, bulletin.id, "ne", 3, "सम्पादित   समाचार।")
        await bulletins.move_item(session, bulletin.id, "ne", 3, to=2)
        await bulletins.drop_item(session, bulletin.id, "ne", 3)
        # The intro names the station and the programme: it is edited, never dropped.
        with pytest.raises(bulletins.BulletinError, match="intro"):
            await bulletins.drop_item(session, bulletin.id, "ne", 1)
    async with services.db.session() as session:
        edited = await bulletins.get_bulletin(session, bulletin.id)

    kept = texts(edited, "ne")
    assert kept[1] == "सम्पादित समाचार।"
    assert "शुक्रबार स्वास्थ्य शिविर।" not in kept
    assert [i.kind for i in bulletins.script(edited, "ne")][0 :: len(kept) - 1] == [
        "intro",
        "outro",
    ]
    assert [i.position for i in bulletins.script(edited, "ne")] == list(range(len(kept)))


async def test_composing_again_needs_replace_so_edits_are_not_lost(services: Services) -> None:
    first = (await compose(services)).bulletin
    async with services.db.session() as session:
        await bulletins.add_announcement(session, services.deployment, first.id, "ne", "सूचना।")

    with pytest.raises(bulletins.BulletinError, match="--replace"):
        await compose(services)
    second = (await compose(services, replace=True)).bulletin

    assert "सूचना।" not in texts(second, "ne")
    async with services.db.session() as session:
        assert len((await session.scalars(select(Bulletin))).all()) == 1


async def test_a_report_is_not_aired_twice_by_one_station(services: Services) -> None:
    await make_report(services, summary=NE)
    await compose(services)

    later = await compose(services, air_at=datetime(2026, 12, 11, 13, 15, tzinfo=UTC))

    assert [item.kind for item in bulletins.script(later.bulletin, "ne")] == [
        "intro",
        "nothing_new",
        "outro",
    ]


async def test_a_missing_summary_language_is_reported_to_the_editor(services: Services) -> None:
    await make_report(services, community="sindhupalchok-melamchi-4", summary={"ne": "खबर।"})

    composed = await compose(services, "radio-melamchi")

    assert any("no summary in en" in warning for warning in composed.warnings)
    assert len(texts(composed.bulletin, "ne")) == 3 and len(texts(composed.bulletin, "en")) == 3


def test_a_template_placeholder_typo_names_file_and_part(tmp_path: Path) -> None:
    (tmp_path / "bulletins").mkdir()
    source = Path(__file__).parents[2] / "content" / "bulletins" / "en.yaml"
    text = source.read_text(encoding="utf-8").replace(': {summary}"', ': {sumary}"', 1)
    (tmp_path / "bulletins" / "en.yaml").write_text(text, encoding="utf-8")

    with pytest.raises(ContentError) as caught:
        load_template(tmp_path, "en")

    assert caught.value.path == "bulletins/en.yaml" and caught.value.key == "report"
    assert "{sumary}" in caught.value.problem
