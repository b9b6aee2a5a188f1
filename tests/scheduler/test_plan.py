"""The schedule the sample deployment asks for."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from core.config import PROJECT_ROOT
from core.deployment import Airtime, StationConfig, load_deployment
from scheduler.plan import _build_job, plan
from scheduler.triggers import LocalTimeTrigger

KATHMANDU = ZoneInfo("Asia/Kathmandu")


def sample_plan() -> dict[str, object]:
    deployment = load_deployment(PROJECT_ROOT / "content")
    return {spec.id: spec for spec in plan(deployment, heartbeat_seconds=0)}


def test_every_slot_has_a_build_and_a_group_job_and_reminders_are_planned() -> None:
    specs = sample_plan()

    assert sorted(specs) == [
        "build:radio-dhading:friday-1900",
        "build:radio-melamchi:saturday-1800",
        "build:radio-melamchi:wednesday-0730",
        "build:radio-tikapur:sunday-2000",
        "groups:radio-dhading:friday-1900",
        "groups:radio-melamchi:saturday-1800",
        "groups:radio-melamchi:wednesday-0730",
        "groups:radio-tikapur:sunday-2000",
        "reminders:monthly",
    ]


def test_build_fires_lead_time_before_the_slot_in_the_stations_zone() -> None:
    specs = sample_plan()
    melamchi = specs["build:radio-melamchi:wednesday-0730"]
    dhading_groups = specs["groups:radio-dhading:friday-1900"]

    assert isinstance(melamchi.trigger, LocalTimeTrigger)  # type: ignore[attr-defined]
    assert str(melamchi.trigger) == "06:00 Asia/Kathmandu on wed"  # type: ignore[attr-defined]
    assert melamchi.args == ("radio-melamchi", "wednesday", "07:30")  # type: ignore[attr-defined]
    assert str(dhading_groups.trigger) == "19:30 Asia/Kathmandu on fri"  # type: ignore[attr-defined]


def test_lead_time_across_midnight_and_the_week_moves_the_day_back() -> None:
    station = StationConfig(
        code="night-fm",
        name="Night FM",
        timezone="Asia/Kathmandu",
        languages=["ne"],
        communities=["dhading-gajuri-3"],
        programme={"en": "Helpdesk"},
        airtime=[Airtime(day="monday", time="00:30")],
        lead_time_minutes=90,
    )

    spec = _build_job(station, station.airtime[0])

    assert str(spec.trigger) == "23:00 Asia/Kathmandu on sun"
    fire = spec.trigger.get_next_fire_time(None, datetime(2026, 12, 3, tzinfo=UTC))
    assert fire is not None
    assert fire.astimezone(KATHMANDU) == datetime(2026, 12, 6, 23, 0, tzinfo=KATHMANDU)
    assert spec.grace_seconds == 90 * 60
