"""The conversation engine on a real database, driven as a CFA would drive it."""

from sqlalchemy import func, select

from bot.engine import Engine
from bot.messages import Incoming, Kind
from core.models import Cfa, ChannelIdentity, ConversationSession, ProcessedUpdate, Report
from core.services import Services
from tests.helpers import Person, make_invite


async def registered(
    services: Services, code: str = "INV-ENGINE1", language: str = "en"
) -> Person:
    await make_invite(services, code, language=language)
    person = Person(services)
    await person.say(f"/start {code}")
    return person


async def test_invite_registers_the_cfa_in_the_invite_language(services: Services) -> None:
    person = await registered(services, language="ne")

    assert "स्वागत" in person.replies[0].text or "Welcome" in person.replies[0].text
    async with services.db.session() as session:
        cfa = await session.scalar(select(Cfa))
        assert cfa is not None and cfa.language == "ne" and cfa.name == "Sita"


async def test_unknown_person_is_told_politely_and_nothing_is_stored(services: Services) -> None:
    stranger = Person(services, address="stranger")

    replies = await stranger.send(Incoming(Kind.TEXT, text="hello", client_language="fr"))

    assert "coordinat" in replies[0].text.lower()
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Cfa)) == 0
        assert await session.scalar(select(func.count()).select_from(ChannelIdentity)) == 0
        assert await session.scalar(select(func.count()).select_from(ConversationSession)) == 0


async def test_used_invite_code_is_refused_for_a_second_person(services: Services) -> None:
    await registered(services, code="INV-ONCE")
    other = Person(services, address="someone-else")

    replies = await other.say("/start INV-ONCE")

    assert "not valid" in replies[0].text or "मान्य" in replies[0].text
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Cfa)) == 1


async def test_monthly_survey_counts_questions_and_sends_a_receipt(services: Services) -> None:
    cfa = await registered(services)

    await cfa.tap("start:monthly")
    assert cfa.last.title == "Question 1 of 8"
    await cfa.tap("a:water_supply:irregular")
    await cfa.say("१२")
    assert cfa.last.title == "Question 3 of 8"
    await cfa.tap("a:health_post_open:no")
    await cfa.tap("toggle:problems:health")
    await cfa.tap("done:problems")
    assert cfa.last.title == "Question 5 of 7", "no migration chosen: that question drops out"
    await cfa.tap("skip:last_public_meeting")
    await cfa.send(Incoming(Kind.LOCATION, latitude=27.86, longitude=84.87))
    await cfa.say("Health post closed <since> March & no staff *at all*")
    assert "check your answers" in cfa.last.text
    assert "12" in cfa.last.text and "<since> March & no staff *at all*" in cfa.last.text
    receipt = await cfa.tap("review:send")

    assert "NP-" in receipt[0].text
    async with services.db.session() as session:
        report = await session.scalar(select(Report))
        assert report is not None
        assert receipt[0].text.count(report.reference) == 1
        assert report.answers["households_affected"] == 12
        assert report.answers["problems"] == ["health"]
        assert report.answers["last_public_meeting"] is None
        assert (report.location_lat, report.location_lon) == (27.86, 84.87)
        assert report.status == "received" and report.category == "monthly_survey"


async def test_wrong_answer_is_explained_and_asked_again(services: Services) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")

    replies = await cfa.say("many")

    assert replies[0].text.startswith("⚠️")
    assert replies[1].title == "Question 2 of 8"


async def test_back_changes_the_previous_answer_and_drops_answers_it_made_moot(
    services: Services,
) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")
    await cfa.say("3")
    await cfa.tap("a:health_post_open:yes")
    await cfa.say("2")  # typed choice: migration
    await cfa.say("40")  # people abroad, asked because of migration
    assert cfa.last.title == "Question 6 of 8"

    await cfa.say("/back")
    await cfa.say("/back")
    assert cfa.last.title == "Question 4 of 8"
    await cfa.say("4")  # health instead of migration

    assert cfa.last.title == "Question 5 of 7"
    async with services.db.session() as session:
        conversation = await session.scalar(select(ConversationSession))
        assert conversation is not None and "migrants_abroad" not in conversation.answers


async def test_cancel_asks_first_and_keeps_the_answers_on_no(services: Services) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")

    await cfa.say("/cancel")
    await cfa.tap("cancel:no")
    assert cfa.last.title == "Question 2 of 8"
    await cfa.say("/cancel")
    await cfa.tap("cancel:yes")

    assert "Nothing was sent" in cfa.replies[-2].text
    async with services.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Report)) == 0


async def test_language_switch_mid_survey_asks_the_same_question_in_nepali(
    services: Services,
) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")

    await cfa.say("/language")
    replies = await cfa.tap("lang:ne")

    assert replies[-1].text.startswith("सेवासम्बन्धी समस्याले")
    assert "२" in (replies[-1].title or "") or "2" in (replies[-1].title or "")


async def test_conversation_resumes_at_the_same_question_with_a_new_engine(
    services: Services,
) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")
    await cfa.say("5")

    services.engine = Engine(services.db, services.deployment)
    replies = await cfa.say("/start")

    assert replies[-1].title == "Question 3 of 8"


async def test_sticker_and_edit_are_answered_and_the_state_is_kept(services: Services) -> None:
    cfa = await registered(services)
    await cfa.tap("start:report")
    await cfa.tap("a:category:health")

    sticker = await cfa.send(Incoming(Kind.UNSUPPORTED, what="sticker"))
    edited = await cfa.send(Incoming(Kind.EDITED))
    photo = await cfa.send(Incoming(Kind.PHOTO))

    assert sticker[-1].title == edited[-1].title == photo[-1].title == "Question 2 of 6"
    assert "cannot read" in sticker[0].text and "/back" in edited[0].text
    assert "typed answer" in photo[0].text


async def test_my_reports_lists_reference_and_status(services: Services) -> None:
    cfa = await registered(services)
    receipt = await cfa.walk_report(
        "The ward budget meeting was not announced to anyone.",
        "Gajuri bazaar",
        category="public_finance",
    )
    reference = receipt[0].text.split("Reference: ")[1].split(".")[0]

    replies = await cfa.say("/myreports")

    assert reference in replies[0].text and "received" in replies[0].text


async def test_stale_button_from_an_earlier_question_is_recognised(services: Services) -> None:
    cfa = await registered(services)
    await cfa.tap("start:monthly")
    await cfa.tap("a:water_supply:regular")

    replies = await cfa.send(Incoming(Kind.BUTTON, data="a:water_supply:unsafe"))

    assert "earlier message" in replies[0].text
    assert replies[1].title == "Question 2 of 8"


async def test_update_key_is_marked_processed_with_the_step(services: Services) -> None:
    from bot import store

    async with services.db.session() as session:
        assert await store.record_update(session, "terminal", "u-1", {"x": 1})
        assert not await store.record_update(session, "terminal", "u-1", {"x": 1})
    await services.engine.handle(
        "terminal", "nobody", Incoming(Kind.TEXT, text="hi"), update_key="u-1"
    )

    async with services.db.session() as session:
        row = await session.get(ProcessedUpdate, ("terminal", "u-1"))
        assert row is not None and row.processed_at is not None and row.payload is None
