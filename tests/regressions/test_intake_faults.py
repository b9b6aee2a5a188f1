"""Faults found by trying the intake as a new user would, one test each."""

import math
import shutil
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bot.channels.terminal import TerminalChat
from bot.messages import Button, Incoming, Kind, Reply
from core.config import PROJECT_ROOT
from core.deployment import load_deployment
from core.errors import ContentError
from core.models import Media, Report
from core.services import Services
from tests.bot.channels.conftest import RunningService
from tests.conftest import settings_for
from tests.helpers import Person, make_invite


async def cfa_at_report_location(services: Services) -> Person:
    await make_invite(services, "REG-1", language="en")
    person = Person(services)
    await person.say("/start REG-1")
    await person.tap("start:report")
    await person.tap("a:category:health")
    await person.say("The health post has had no nurse since March.")
    return person


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(math.nan, math.inf), (999.0, 999.0), (91.0, 0.0), (-91.0, 200.0), (27.7, 181.0)],
)
async def test_location_off_the_map_is_refused_and_asked_again(
    services: Services, latitude: float, longitude: float
) -> None:
    person = await cfa_at_report_location(services)

    replies = await person.send(Incoming(Kind.LOCATION, latitude=latitude, longitude=longitude))

    assert replies[0].text.startswith("⚠️") and "not on the map" in replies[0].text
    assert replies[-1].title == "Question 3 of 6"


def write_limits(tmp_path: Path, old: str, new: str) -> Path:
    content = tmp_path / "content"
    shutil.copytree(PROJECT_ROOT / "content", content)
    survey = content / "surveys" / "monthly.yaml"
    text = survey.read_text(encoding="utf-8")
    assert old in text
    survey.write_text(text.replace(old, new, 1), encoding="utf-8")
    return content


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("{min: 0, max: 100000, integer: true}", "{min: 10, max: 1}", "questions[1].validate.min"),
        (
            "{max_length: 1000}",
            "{min_length: 2000, max_length: 1000}",
            "questions[7].validate.min_length",
        ),
        ("{min_choices: 1}", "{min_choices: 12}", "questions[3].validate.min_choices"),
    ],
)
def test_limits_no_answer_can_meet_are_refused_when_loading(
    tmp_path: Path, old: str, new: str, key: str
) -> None:
    content = write_limits(tmp_path, old, new)

    with pytest.raises(ContentError) as caught:
        load_deployment(content)

    assert caught.value.key == key and "more than" in caught.value.problem


async def test_going_back_offers_to_keep_the_current_answer(services: Services) -> None:
    person = await cfa_at_report_location(services)
    await person.say("/back")

    replies = await person.tap("Keep answer")

    assert replies[-1].title == "Question 3 of 6"


async def test_none_cannot_be_combined_with_other_problems(services: Services) -> None:
    await make_invite(services, "REG-2", language="en")
    person = Person(services)
    await person.say("/start REG-2")
    await person.tap("start:monthly")
    await person.tap("a:water_supply:regular")
    await person.say("0")
    await person.tap("a:health_post_open:yes")
    await person.tap("toggle:problems:health")
    await person.tap("toggle:problems:none")

    replies = await person.tap("done:problems")

    assert "cannot be combined" in replies[0].text
    assert replies[-1].title == "Question 4 of 8"


async def test_cancel_confirmation_understands_a_typed_no(services: Services) -> None:
    person = await cfa_at_report_location(services)
    await person.say("/cancel")

    replies = await person.say("no")

    assert replies[-1].title == "Question 3 of 6"


async def test_terminal_letters_never_press_buttons_of_an_older_reply(
    sqlite_services: Services,
) -> None:
    chat = TerminalChat(sqlite_services.engine, "t-1", Path("/nonexistent"), write=lambda _: None)
    chat.show(Reply("menu", buttons=[[Button("Monthly survey", "start:monthly")]]))
    chat.show(Reply("question with buttons", buttons=[]))

    incoming = await chat.interpret("a")

    assert incoming is not None and incoming.kind == Kind.TEXT and incoming.text == "a"


async def test_terminal_keeps_no_file_that_no_question_asked_for(
    sqlite_services: Services, tmp_path: Path
) -> None:
    await make_invite(sqlite_services, "REG-3", language="en")
    media_dir = tmp_path / "media"
    chat = TerminalChat(sqlite_services.engine, "t-2", media_dir, write=lambda _: None)
    await chat.send(Incoming(Kind.COMMAND, command="start", text="REG-3"))
    picture = tmp_path / "well.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")

    incoming = await chat.interpret(f":photo {picture}")

    assert incoming is not None and incoming.media is None
    assert not media_dir.exists() or not any(media_dir.rglob("*.png"))
    async with sqlite_services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Media)) == 0
        assert await session.scalar(select(func.count()).select_from(Report)) == 0


async def test_service_starts_and_answers_health_checks_when_telegram_is_unreachable(
    sqlite_url: str, tmp_path: Path
) -> None:
    settings = settings_for(
        sqlite_url,
        tmp_path,
        telegram_token="123:unreachable",
        telegram_api_base="http://127.0.0.1:9",
    )
    service = RunningService(settings)
    await service.start(wait_for_telegram=False)
    try:
        async with httpx.AsyncClient(trust_env=False) as client:
            health = await client.get(f"{service.url}/healthz")
        connected = service.app.state.telegram.ready.is_set()
    finally:
        await service.stop()

    assert health.status_code == 200 and not connected
