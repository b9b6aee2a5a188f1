"""Faults found by an editor trying the bulletin pipeline, one test each."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core import bulletins
from core.errors import ContentError
from core.models import Recording
from core.services import Services
from core.templates import load_template
from tests.core.test_cli import run as helpdesk
from tests.helpers import make_report

AIR = datetime(2026, 12, 4, 13, 15, tzinfo=UTC)


async def composed(services: Services) -> int:
    await make_report(services, summary={"ne": "गजुरीमा पानी आएन।"})
    async with services.db.session() as session:
        result = await bulletins.compose(session, services.deployment, "radio-dhading", AIR)
    return result.bulletin.id


async def test_editing_a_script_sets_its_old_recording_aside(services: Services) -> None:
    number = await composed(services)
    async with services.db.session() as session:
        await bulletins.save_recording(
            session, number, "ne", path="r.ogg", mime_type="audio/ogg", source="upload"
        )

    async with services.db.session() as session:
        await bulletins.edit_item(session, number, "ne", 2, "पानी फेरि आयो।")

    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Recording)) == 0


async def test_moves_keep_the_intro_first_and_the_outro_last(services: Services) -> None:
    number = await composed(services)
    async with services.db.session() as session:
        await bulletins.add_announcement(session, services.deployment, number, "ne", "सूचना।")
        await bulletins.move_item(session, number, "ne", 3, to=99)
        with pytest.raises(bulletins.BulletinError, match="stays in its place"):
            await bulletins.move_item(session, number, "ne", 4, to=1)

    async with services.db.session() as session:
        kinds = [
            i.kind for i in bulletins.script(await bulletins.get_bulletin(session, number), "ne")
        ]
    assert kinds == ["intro", "report", "announcement", "outro"]


async def test_an_empty_edit_is_refused(services: Services) -> None:
    number = await composed(services)

    with pytest.raises(bulletins.BulletinError, match="needs some text"):
        async with services.db.session() as session:
            await bulletins.edit_item(session, number, "ne", 2, "   ")


async def test_a_report_is_added_once_and_only_to_a_station_serving_it(
    services: Services,
) -> None:
    number = await composed(services)
    elsewhere = await make_report(
        services, community="sindhupalchok-melamchi-4", summary={"ne": "मेलम्चीको खबर।"}
    )
    async with services.db.session() as session:
        bulletin = await bulletins.get_bulletin(session, number)
        first = next(i for i in bulletin.items if i.kind == "report")
        aired = await session.get(type(elsewhere), first.report_id)
        assert aired is not None
        reference = aired.reference

    with pytest.raises(bulletins.BulletinError, match="already in the ne script"):
        async with services.db.session() as session:
            await bulletins.add_report(session, services.deployment, number, reference, "ne")
    with pytest.raises(bulletins.BulletinError, match="does not serve"):
        async with services.db.session() as session:
            await bulletins.add_report(
                session, services.deployment, number, elsewhere.reference, "ne"
            )


async def test_composing_for_a_past_or_off_air_date_warns_the_editor(services: Services) -> None:
    config = services.deployment.stations["radio-dhading"]
    async with services.db.session() as session:
        result = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            bulletins.air_time(config, date(1999, 1, 4)),
        )

    assert any("in the past" in w for w in result.warnings)
    assert any("is a monday" in w and "friday" in w for w in result.warnings)


def test_a_report_template_without_its_summary_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bulletins").mkdir()
    source = Path(__file__).parents[2] / "content" / "bulletins" / "ne.yaml"
    text = source.read_text(encoding="utf-8").replace(
        '"{community} बाट: {summary}"', '"{community} बाट"'
    )
    (tmp_path / "bulletins" / "ne.yaml").write_text(text, encoding="utf-8")

    with pytest.raises(ContentError) as caught:
        load_template(tmp_path, "ne")

    assert caught.value.key == "report" and "{summary}" in caught.value.problem


def test_recording_a_file_that_is_not_audio_is_refused(tmp_path: Path) -> None:
    assert helpdesk(tmp_path, "db", "upgrade").returncode == 0
    not_audio = tmp_path / "reading.ogg"
    not_audio.write_text("this is not audio", encoding="utf-8")

    result = helpdesk(
        tmp_path, "bulletin", "record", "1", "--language", "ne", "--file", str(not_audio)
    )

    assert result.returncode == 1 and "not audio that ffmpeg can read" in result.stderr
