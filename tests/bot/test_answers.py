"""Typed answers from cheap phones: local digits and separators, dates, yes/no in every
language, choices by number or label, and how answers are read back to the CFA."""

from datetime import date
from typing import Any

import pytest
from babel.dates import format_date

from bot.answers import (
    InvalidAnswer,
    ascii_digits,
    parse_choice,
    parse_choices,
    parse_date,
    parse_number,
    parse_text,
    parse_yes_no,
    show_answer,
)
from bot.surveys import Question
from core.config import PROJECT_ROOT
from core.i18n import Translator, translator

LANGUAGES = ["ne", "en", "fr"]
TODAY = date(2026, 3, 8)

WATER_CHOICES: list[dict[str, Any]] = [
    {"value": "regular", "label": {"en": "Regular", "ne": "नियमित", "fr": "Régulière"}},
    {"value": "irregular", "label": {"en": "Irregular", "ne": "अनियमित", "fr": "Irrégulière"}},
    {"value": "no_supply", "label": {"en": "No supply", "ne": "आपूर्ति ठप्प", "fr": "Coupée"}},
    {"value": "unsafe", "label": {"en": "Unsafe", "ne": "असुरक्षित", "fr": "Non potable"}},
]


def t(language: str) -> Translator:
    return translator(language, PROJECT_ROOT / "locales")


def question(kind: str, **fields: Any) -> Question:
    """A question of type ``kind``; ``fields`` as in the YAML (``validate``, ``choices``)."""
    return Question.model_validate({"id": "q", "type": kind, "label": {"en": "Q"}, **fields})


def number(**rules: Any) -> Question:
    return question("number", validate=rules)


def single() -> Question:
    return question("single_choice", choices=WATER_CHOICES)


def multiple(**rules: Any) -> Question:
    return question("multiple_choice", choices=WATER_CHOICES, validate=rules)


def refused(call: Any, *args: Any) -> str:
    """The message of the InvalidAnswer raised by ``call(*args)``."""
    with pytest.raises(InvalidAnswer) as caught:
        call(*args)
    return caught.value.message


# Digits and numbers


def test_ascii_digits_converts_devanagari_digits() -> None:
    assert ascii_digits("१२") == "12"
    assert ascii_digits("०७/०३/२०२६") == "07/03/2026"
    assert ascii_digits("ward 3") == "ward 3"


def test_parse_number_reads_devanagari_digits() -> None:
    value = parse_number("१२", number(), t("ne"))

    assert value == 12 and isinstance(value, int)


def test_parse_number_reads_an_english_thousands_separator() -> None:
    assert parse_number("1,200", number(integer=True), t("en")) == 1200


def test_parse_number_reads_a_french_decimal_comma() -> None:
    value = parse_number("3,5", number(), t("fr"))

    assert value == 3.5 and isinstance(value, float)


def test_parse_number_rejects_words_with_a_message() -> None:
    message = refused(parse_number, "twelve", number(), t("en"))

    assert message == "Please send a number, for example 12."


@pytest.mark.parametrize(
    ("text", "rules", "message"),
    [
        ("-1", {"min": 0}, "The number must be at least 0."),
        ("100001", {"max": 100000}, "The number must be at most 100,000."),
        ("2.5", {"integer": True}, "Please send a whole number, without decimals."),
    ],
)
def test_parse_number_enforces_its_rules_with_a_message(
    text: str, rules: dict[str, Any], message: str
) -> None:
    assert refused(parse_number, text, number(**rules), t("en")) == message


def test_parse_number_accepts_the_limits_themselves() -> None:
    rules = number(min=0, max=100000, integer=True)

    assert parse_number("0", rules, t("en")) == 0
    assert parse_number("100000", rules, t("en")) == 100000


def test_parse_number_messages_are_in_the_cfa_language() -> None:
    english = refused(parse_number, "-1", number(min=0), t("en"))
    nepali = refused(parse_number, "-1", number(min=0), t("ne"))

    assert nepali == "संख्या कम्तीमा 0 हुनुपर्छ।"
    assert nepali != english


def test_parse_number_formats_the_limit_in_the_cfa_locale() -> None:
    message = refused(parse_number, "200000", number(max=100000), t("fr"))

    assert message == "Le nombre ne doit pas dépasser 100\u202f000."


# Dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-07", "2026-03-07"),
        ("07/03/2026", "2026-03-07"),
        ("०७/०३/२०२६", "2026-03-07"),
        ("today", "2026-03-08"),
        ("yesterday", "2026-03-07"),
        (" Yesterday ", "2026-03-07"),
    ],
)
def test_parse_date_accepts_typed_and_shortcut_dates(text: str, expected: str) -> None:
    assert parse_date(text, question("date"), t("en"), TODAY) == expected


def test_parse_date_shortcuts_are_relative_to_the_given_day() -> None:
    assert parse_date("yesterday", question("date"), t("en"), date(2026, 3, 1)) == "2026-02-28"


def test_parse_date_rejects_an_impossible_date() -> None:
    message = refused(parse_date, "31/02/2026", question("date"), t("en"), TODAY)

    assert message == "There is no such date. Please check the day and the month."


def test_parse_date_explains_a_bikram_sambat_date() -> None:
    message = refused(parse_date, "15/08/2082", question("date"), t("en"), TODAY)

    assert "Bikram Sambat" in message and "08/03/2026" in message


def test_parse_date_rejects_a_future_date_when_not_future() -> None:
    not_future = question("date", validate={"not_future": True})

    message = refused(parse_date, "09/03/2026", not_future, t("en"), TODAY)

    assert message == "That date is in the future. Please check it."
    assert parse_date("08/03/2026", not_future, t("en"), TODAY) == "2026-03-08"


def test_parse_date_accepts_a_future_date_without_the_rule() -> None:
    assert parse_date("09/03/2026", question("date"), t("en"), TODAY) == "2026-03-09"


# Yes / no


@pytest.mark.parametrize("text", ["yes", "हो", "oui", "Yes!"])
def test_parse_yes_no_accepts_yes_in_every_language(text: str) -> None:
    assert parse_yes_no(text, t("en")) is True


@pytest.mark.parametrize("text", ["no", "होइन", "non", "NO."])
def test_parse_yes_no_accepts_no_in_every_language(text: str) -> None:
    assert parse_yes_no(text, t("en")) is False


def test_parse_yes_no_rejects_maybe() -> None:
    assert refused(parse_yes_no, "maybe", t("en")) == "Please answer with the Yes or No button."


# Choices


def test_parse_choice_accepts_the_number_in_devanagari_digits() -> None:
    assert parse_choice("२", single(), LANGUAGES, t("ne")) == "irregular"


def test_parse_choice_accepts_the_value() -> None:
    assert parse_choice("no_supply", single(), LANGUAGES, t("en")) == "no_supply"


def test_parse_choice_accepts_a_label_in_another_language() -> None:
    assert parse_choice("Coupée", single(), LANGUAGES, t("en")) == "no_supply"
    assert parse_choice("नियमित", single(), LANGUAGES, t("fr")) == "regular"
    assert parse_choice("no supply", single(), LANGUAGES, t("ne")) == "no_supply"


@pytest.mark.parametrize("text", ["0", "5", "flood"])
def test_parse_choice_rejects_an_unknown_choice(text: str) -> None:
    message = refused(parse_choice, text, single(), LANGUAGES, t("en"))

    assert message == "Please tap one of the buttons, or type its number (1 to 4)."


@pytest.mark.parametrize("text", ["1, 3", "१ ३", "1;3"])
def test_parse_choices_accepts_several_numbers(text: str) -> None:
    assert parse_choices(text, multiple(), LANGUAGES, t("en")) == ["regular", "no_supply"]


def test_parse_choices_removes_duplicates() -> None:
    assert parse_choices("3, 1, 3, १", multiple(), LANGUAGES, t("en")) == ["no_supply", "regular"]


def test_parse_choices_accepts_one_label_of_several_words() -> None:
    assert parse_choices("No supply", multiple(), LANGUAGES, t("en")) == ["no_supply"]


def test_parse_choices_accepts_labels_of_several_words_separated_by_commas() -> None:
    assert parse_choices("No supply, Unsafe", multiple(), LANGUAGES, t("en")) == [
        "no_supply",
        "unsafe",
    ]


def test_parse_choices_enforces_the_minimum() -> None:
    message = refused(parse_choices, "1", multiple(min_choices=2), LANGUAGES, t("en"))

    assert message == "Please choose at least 2 options."


def test_parse_choices_enforces_the_maximum() -> None:
    message = refused(parse_choices, "1 2 3", multiple(max_choices=2), LANGUAGES, t("en"))

    assert message == "Please choose at most 2 options."
    assert parse_choices("1 2", multiple(max_choices=2), LANGUAGES, t("en")) == [
        "regular",
        "irregular",
    ]


def test_parse_choices_rejects_an_unknown_part() -> None:
    message = refused(parse_choices, "1, 9", multiple(), LANGUAGES, t("en"))

    assert "1 to 4" in message


# Text


def test_parse_text_returns_the_trimmed_answer() -> None:
    rules = question("text", validate={"min_length": 3, "max_length": 10})

    assert parse_text("  Gajuri  ", rules, t("en")) == "Gajuri"


def test_parse_text_enforces_the_minimum_length() -> None:
    message = refused(parse_text, "short", question("text", validate={"min_length": 10}), t("en"))

    assert message == "Please write a little more: at least 10 characters."


def test_parse_text_enforces_the_maximum_length() -> None:
    too_long = question("text", validate={"max_length": 20})

    message = refused(parse_text, "x" * 21, too_long, t("en"))

    assert message == "That is too long: at most 20 characters, you sent 21."
    assert parse_text("x" * 20, too_long, t("en")) == "x" * 20


def test_parse_text_rejects_a_blank_answer() -> None:
    assert refused(parse_text, "   ", question("text"), t("en")) == "Please type your answer."


# Showing answers back


def test_show_answer_renders_a_skipped_answer_in_the_cfa_language() -> None:
    assert show_answer(question("text"), None, t("en")) == "(skipped)"
    assert show_answer(question("text"), None, t("ne")) == "(छोडिएको)"


def test_show_answer_renders_choices_with_their_labels_in_the_cfa_language() -> None:
    assert show_answer(single(), "no_supply", t("fr")) == "Coupée"
    assert show_answer(multiple(), ["regular", "no_supply"], t("ne")) == "नियमित, आपूर्ति ठप्प"


def test_show_answer_renders_yes_and_no_in_the_cfa_language() -> None:
    assert show_answer(question("yes_no"), True, t("en")) == "Yes"
    assert show_answer(question("yes_no"), False, t("en")) == "No"
    assert show_answer(question("yes_no"), True, t("ne")) == "हो"
    assert show_answer(question("yes_no"), False, t("fr")) == "Non"


def test_show_answer_renders_a_date_in_the_long_format_of_the_locale() -> None:
    day = "2026-03-07"

    assert show_answer(question("date"), day, t("en")) == "March 7, 2026"
    assert show_answer(question("date"), day, t("fr")) == "7 mars 2026"
    nepali = show_answer(question("date"), day, t("ne"))
    assert nepali == format_date(date(2026, 3, 7), format="long", locale="ne")
    assert "मार्च" in nepali


def test_show_answer_renders_shared_coordinates() -> None:
    value = {"latitude": 27.7172, "longitude": 85.324}

    assert show_answer(question("location"), value, t("en")) == "📍 27.71720, 85.32400"


def test_show_answer_renders_a_typed_place() -> None:
    value = {"text": "Gajuri ward 3"}

    assert show_answer(question("location"), value, t("en")) == "📍 Gajuri ward 3"
