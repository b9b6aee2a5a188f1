"""Faults a new user found in the distribution commands, each kept from coming back."""

from datetime import date

from sqlalchemy import select

from core import bulletins
from core.config import Settings
from core.models import Station
from core.services import Services
from scheduler.service import SchedulerService
from tests.helpers import make_report, run_helpdesk


async def test_out_of_range_months_get_one_line_not_a_traceback(
    sqlite_services: Services,
) -> None:
    for month in ("0001-01", "9999-12", "2026-13"):
        result = await run_helpdesk(sqlite_services.settings, "cfa", "missing", "--month", month)

        assert result.exit_code == 1, result.output
        assert "YYYY-MM" in result.output and "Traceback" not in result.output


async def test_a_report_added_by_hand_removes_the_nothing_new_line(
    sqlite_services: Services,
) -> None:
    services = sqlite_services
    async with services.db.session() as session:
        station = await session.scalar(select(Station).where(Station.code == "radio-dhading"))
        assert station is not None
        config = services.deployment.stations["radio-dhading"]
        composed = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            bulletins.air_time(config, date(2026, 12, 4)),
        )
    assert "nothing_new" in [i.kind for i in bulletins.script(composed.bulletin, "ne")]
    report = await make_report(services, summary={"ne": "गजुरीमा पानी आयो।"})

    async with services.db.session() as session:
        await bulletins.add_report(
            session, services.deployment, composed.bulletin.id, report.reference, "ne"
        )
        kinds = [
            item.kind
            for item in bulletins.script(
                await bulletins.get_bulletin(session, composed.bulletin.id), "ne"
            )
        ]

    assert "nothing_new" not in kinds and "report" in kinds


async def test_scheduler_run_says_what_the_fire_did(sqlite_services: Services) -> None:
    services = sqlite_services
    storing = SchedulerService(services, holder="storing")
    assert await storing.lease.acquire()
    storing.start()
    storing.stop()
    await storing.lease.release()

    result = await run_helpdesk(
        services.settings, "scheduler", "run", "groups:radio-dhading:friday-1900"
    )

    assert result.exit_code == 0, result.output
    assert result.output.startswith("skipped: no bulletin for radio-dhading on")


def test_public_url_follows_the_port_unless_set() -> None:
    assert Settings(_env_file=None, web_port=8765).public_url == "http://127.0.0.1:8765"  # type: ignore[call-arg]
    assert (
        Settings(_env_file=None, public_url="https://helpdesk.example.org").public_url  # type: ignore[call-arg]
        == "https://helpdesk.example.org"
    )


async def test_two_renders_of_one_bulletin_at_once_refuse_the_second(
    sqlite_services: Services,
) -> None:
    import asyncio

    from core import rendering

    services = sqlite_services
    await make_report(services, summary={"ne": "गजुरीमा पानी आयो।"})
    async with services.db.session() as session:
        config = services.deployment.stations["radio-dhading"]
        composed = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            bulletins.air_time(config, date(2026, 12, 4)),
        )
    render = rendering.render(
        services.db, services.deployment, services.settings, composed.bulletin.id
    )
    again = rendering.render(
        services.db, services.deployment, services.settings, composed.bulletin.id
    )

    first, second = await asyncio.gather(render, again, return_exceptions=True)

    outcomes = sorted([type(first).__name__, type(second).__name__])
    assert outcomes == ["BulletinError", "list"], (first, second)
    refused = first if isinstance(first, Exception) else second
    assert "being rendered already" in str(refused)
    async with services.db.session() as session:
        approved = await bulletins.approve(
            session, composed.bulletin.id, media_dir=services.settings.resolved_media_dir
        )
    assert approved.status == "approved"  # the files on disk are whole


async def test_a_scheduled_compose_carries_resolved_issues_once(sqlite_services: Services) -> None:
    from core.db import utcnow
    from core.models import Community, Issue

    services = sqlite_services
    async with services.db.session() as session:
        ward = await session.scalar(select(Community).where(Community.code == "dhading-gajuri-3"))
        assert ward is not None
        session.add(
            Issue(
                reference="IS-2026-0001",
                title="Tap",
                community_id=ward.id,
                status="resolved",
                outcome={"ne": "गजुरीको धारा मर्मत भयो।"},
                resolved_at=utcnow(),
            )
        )
    config = services.deployment.stations["radio-dhading"]

    async with services.db.session() as session:
        first = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            bulletins.air_time(config, date(2026, 12, 4)),
        )
        second = await bulletins.compose(
            session,
            services.deployment,
            "radio-dhading",
            bulletins.air_time(config, date(2026, 12, 11)),
        )

    kinds = [item.kind for item in bulletins.script(first.bulletin, "ne")]
    assert kinds == ["intro", "resolved_issue", "outro"]
    assert "resolved_issue" not in [i.kind for i in bulletins.script(second.bulletin, "ne")]


async def test_desk_pages_are_not_cached_framed_or_sniffed(sqlite_services: Services) -> None:
    import httpx

    from core.web import create_app

    app = create_app(sqlite_services.settings, sqlite_services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://desk") as client:
            login = await client.get("/desk/login")
            health = await client.get("/healthz")

    assert login.headers["cache-control"] == "no-store"
    assert login.headers["x-frame-options"] == "DENY"
    assert login.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'none'" in login.headers["content-security-policy"]
    assert "x-frame-options" not in health.headers
