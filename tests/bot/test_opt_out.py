"""A CFA stops reminders and bulletins with /stop or the stop word of their language, and
comes back with /start; reports can be sent all along."""

from sqlalchemy import select

from bot.prompts import COMMANDS
from core.models import Cfa
from core.services import Services
from tests.helpers import Person, make_invite


async def registered(services: Services, language: str = "ne") -> Person:
    await make_invite(services, "STOP-1", language=language)
    person = Person(services)
    await person.say("/start STOP-1")
    return person


async def opted_out_at(services: Services) -> object:
    async with services.db.session() as session:
        return await session.scalar(select(Cfa.opted_out_at))


async def test_nepali_stop_word_opts_out_and_start_opts_back_in(services: Services) -> None:
    sita = await registered(services)

    stopped = await sita.say("रोक")
    when = await opted_out_at(services)
    back = await sita.say("/start")

    assert when is not None
    assert "/start" in stopped[0].text and "/report" in stopped[0].text
    assert "बुलेटिन" in stopped[0].text, "confirmed in the CFA's language"
    assert await opted_out_at(services) is None
    assert "फेरि" in back[0].text and back[-1].buttons, "welcomed back with the menu"


async def test_stop_command_mid_survey_keeps_the_question(sqlite_services: Services) -> None:
    sita = await registered(sqlite_services)
    await sita.tap("start:report")

    replies = await sita.say("/stop")
    stopped_once = await opted_out_at(sqlite_services)
    await sita.say("/stop")

    assert stopped_once is not None and await opted_out_at(sqlite_services) == stopped_once
    assert "/start" in replies[0].text
    assert any(b.data.startswith("a:category:") for b in replies[-1].flat_buttons)


async def test_french_stop_word_is_read_without_its_accent_and_english_works_too(
    sqlite_services: Services,
) -> None:
    marie = await registered(sqlite_services, language="fr")

    french = await marie.say("Arreter !")
    await marie.say("/start")
    english = await marie.say("STOP")

    assert "ne recevrez plus" in french[0].text and "ne recevrez plus" in english[0].text
    assert await opted_out_at(sqlite_services) is not None


async def test_stop_word_inside_a_sentence_is_an_answer_not_an_opt_out(
    sqlite_services: Services,
) -> None:
    sita = await registered(sqlite_services)
    await sita.tap("start:report")
    await sita.tap("a:category:health")

    await sita.say("रोक लगाइएको धारा खोल्नुपर्छ")

    assert await opted_out_at(sqlite_services) is None


async def test_help_and_the_command_menu_offer_stop(sqlite_services: Services) -> None:
    sita = await registered(sqlite_services)

    shown = await sita.say("/help")

    assert "/stop — सम्झना र बुलेटिन बन्द गर्नुहोस्" in shown[0].text
    assert "stop" in [name for name, _ in COMMANDS]
