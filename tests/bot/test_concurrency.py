"""Many CFAs answering at the same moment on the embedded database."""

import asyncio

from sqlalchemy import select

from core.models import Report
from core.services import Services
from tests.helpers import Person, make_invite

CFAS = 20


async def walk_report(services: Services, number: int) -> None:
    person = Person(services, address=f"cfa-{number}")
    await person.say(f"/start CONC-{number}")
    await person.walk_report(
        f"School {number} has had no teacher for two weeks.",
        f"Ward {number}",
        category="education",
    )


async def test_twenty_cfas_at_once_on_sqlite_lose_nothing(sqlite_services: Services) -> None:
    for number in range(CFAS):
        await make_invite(sqlite_services, f"CONC-{number}", language="en")

    await asyncio.gather(*(walk_report(sqlite_services, n) for n in range(CFAS)))

    async with sqlite_services.db.session() as session:
        reports = (await session.scalars(select(Report))).unique().all()
    descriptions = sorted(r.answers["description"] for r in reports)
    assert descriptions == sorted(
        f"School {n} has had no teacher for two weeks." for n in range(CFAS)
    )
    assert len({r.reference for r in reports}) == CFAS
