"""How choices look on WhatsApp and how answers come back: reply buttons, lists,
numbered lines, and a template's quick-reply button."""

from sqlalchemy import select

from bot.messages import Button, Reply
from core.models import ConversationSession
from tests.bot.channels.whatsapp.conftest import Service, WhatsAppUser
from tests.bot.channels.whatsapp.test_intake import reach_monthly_review, register
from tests.fakes.graph_api import choices_of, text_of


def reply_with(*labels: str) -> Reply:
    return Reply("Choose", buttons=[[Button(label, f"a:q:{n}")] for n, label in enumerate(labels)])


def test_up_to_three_short_choices_are_reply_buttons(service: Service) -> None:
    [(text, buttons)] = service.channel.render("1", reply_with("Yes", "No", "Skip"))

    assert text == "Choose" and isinstance(buttons, list)
    assert [(b.title, b.callback_data) for b in buttons] == [
        ("Yes", "a:q:0"),
        ("No", "a:q:1"),
        ("Skip", "a:q:2"),
    ]


def test_more_choices_or_longer_titles_become_a_list_with_whole_labels(service: Service) -> None:
    long_label = "पिउन असुरक्षित, धमिलो र गन्हाउने पानी"
    [(_, markup)] = service.channel.render("1", reply_with("Regular", long_label))

    rows = markup.to_dict()["sections"][0]["rows"]  # type: ignore[union-attr]
    assert [len(row["title"]) <= 24 for row in rows] == [True, True]
    assert rows[1]["title"].endswith("…") and rows[1]["description"] == long_label


def test_over_ten_choices_become_numbered_lines(service: Service) -> None:
    labels = [f"Choice {n}" for n in range(1, 13)]
    [(text, markup)] = service.channel.render("1", reply_with(*labels))

    assert markup is None
    assert text.splitlines()[-12:] == [f"{n}. Choice {n}" for n in range(1, 13)]


async def test_a_typed_number_picks_the_choice_of_that_number_in_a_menu(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await reach_monthly_review(sita)
    # The change menu's choices are not survey answers: the engine alone would not read
    # a number typed for one.
    [menu] = await sita.tap("review:edit")
    assert choices_of(menu)[1][0] == "edit:households_affected"

    [question] = await sita.say("२")

    assert "2/" in text_of(question), text_of(question)
    async with service.services.db.session() as session:
        conversation = await session.scalar(select(ConversationSession))
    assert conversation is not None and conversation.question_id == "households_affected"


async def test_a_template_quick_reply_button_is_read_as_its_payload(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    body = sita.body("template_button")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["button"] = {
        "payload": "start:report",
        "text": "रिपोर्ट",
    }

    sent = await sita.deliver(body)

    assert any("1/6" in text_of(r) for r in sent), [text_of(r) for r in sent]


async def test_a_list_reply_and_a_typed_label_answer_a_question(
    sita: WhatsAppUser, service: Service
) -> None:
    await register(sita)
    await sita.tap("start:monthly")
    [question] = await sita.tap("a:water_supply:irregular")
    assert "2/" in text_of(question)
    await sita.say("१२")

    typed = await sita.say("होइन")

    assert "4/" in text_of(typed[-1]), [text_of(r) for r in typed]
    async with service.services.db.session() as session:
        conversation = await session.scalar(select(ConversationSession))
    assert conversation is not None
    assert conversation.answers["water_supply"] == "irregular"
    assert conversation.answers["health_post_open"] is False
