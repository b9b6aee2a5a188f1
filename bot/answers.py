"""Reading a CFA's typed or tapped answer into a stored value, and showing it back.

Typed answers come from cheap phones in several scripts: numbers may be typed in
Devanagari (``१२``) or other local digits, with local separators; choices may be typed
as their number or their label in any of the deployment's languages.
"""

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.dates import format_date
from babel.numbers import NumberFormatError, format_decimal, parse_decimal

from bot.surveys import Question, QuestionType
from core.i18n import Translator

YES_WORDS = {"yes", "y", "oui", "o", "हो", "हजुर", "ho", "ok", "✅"}
NO_WORDS = {"no", "n", "non", "होइन", "हैन", "छैन", "hoina", "❌"}
DATE_PATTERNS = (
    (re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"), ("y", "m", "d")),
    (re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$"), ("d", "m", "y")),
)


class InvalidAnswer(Exception):
    """The answer does not fit the question; ``message`` says why, in the CFA's language."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


def ascii_digits(text: str) -> str:
    """Replace every Unicode decimal digit (Devanagari, Arabic-Indic, ...) by 0-9."""
    return "".join(str(unicodedata.digit(c)) if c.isdecimal() else c for c in text)


def parse_text(text: str, question: Question, t: Translator) -> str:
    """A free-text answer, trimmed and within the question's length limits."""
    value = text.strip()
    rules = question.validate_
    if not value:
        raise InvalidAnswer(t.gettext("Please type your answer."))
    if rules.min_length is not None and len(value) < rules.min_length:
        raise InvalidAnswer(
            t.gettext("Please write a little more: at least %(count)s characters.")
            % {"count": rules.min_length}
        )
    if rules.max_length is not None and len(value) > rules.max_length:
        raise InvalidAnswer(
            t.gettext("That is too long: at most %(count)s characters, you sent %(sent)s.")
            % {"count": rules.max_length, "sent": len(value)}
        )
    return value


def parse_number(text: str, question: Question, t: Translator) -> int | float:
    """A number typed in any digits and with the CFA's locale's separators."""
    cleaned = ascii_digits(text.strip()).replace(" ", "").replace("\u202f", "")
    number = _decimal(cleaned, t.language)
    if number is None:
        raise InvalidAnswer(t.gettext("Please send a number, for example 12."))

    rules = question.validate_
    if rules.integer and number != number.to_integral_value():
        raise InvalidAnswer(t.gettext("Please send a whole number, without decimals."))
    if rules.min is not None and number < Decimal(str(rules.min)):
        raise InvalidAnswer(
            t.gettext("The number must be at least %(min)s.")
            % {"min": format_decimal(rules.min, locale=t.locale)}
        )
    if rules.max is not None and number > Decimal(str(rules.max)):
        raise InvalidAnswer(
            t.gettext("The number must be at most %(max)s.")
            % {"max": format_decimal(rules.max, locale=t.locale)}
        )
    return int(number) if number == number.to_integral_value() else float(number)


def parse_date(text: str, question: Question, t: Translator, today: date) -> str:
    """A date typed as 2026-03-07 or 07/03/2026 (any digits), or tapped as today/yesterday.

    Returns:
        The date in ISO form.
    """
    typed = ascii_digits(text.strip())
    shortcuts = {"today": today, "yesterday": today - timedelta(days=1)}
    if typed.lower() in shortcuts:
        return _checked_date(shortcuts[typed.lower()], question, t, today).isoformat()

    parts = _date_parts(typed)
    if parts is None:
        raise InvalidAnswer(
            t.gettext("Please send a date as day/month/year, for example %(example)s.")
            % {"example": today.strftime("%d/%m/%Y")}
        )
    # Nepal's Bikram Sambat calendar runs about 57 years ahead of the Gregorian one.
    if parts[0] > today.year + 40:
        raise InvalidAnswer(
            t.gettext(
                "This looks like a Bikram Sambat date. Please send the date in the "
                "Western (AD) calendar, for example %(example)s."
            )
            % {"example": today.strftime("%d/%m/%Y")}
        )
    try:
        value = date(*parts)
    except ValueError:
        raise InvalidAnswer(
            t.gettext("There is no such date. Please check the day and the month.")
        ) from None
    return _checked_date(value, question, t, today).isoformat()


def _checked_date(value: date, question: Question, t: Translator, today: date) -> date:
    if question.validate_.not_future and value > today:
        raise InvalidAnswer(t.gettext("That date is in the future. Please check it."))
    return value


def parse_yes_no(text: str, t: Translator) -> bool:
    """Yes or no, from a button or a typed word in any of our languages."""
    word = text.strip().lower().rstrip(".!")
    if word in YES_WORDS or word == t.gettext("Yes").lower():
        return True
    if word in NO_WORDS or word == t.gettext("No").lower():
        return False
    raise InvalidAnswer(t.gettext("Please answer with the Yes or No button."))


def parse_choice(text: str, question: Question, languages: list[str], t: Translator) -> str:
    """One choice, typed as its number, its value or its label in any language."""
    values = _match_choices([text], question, languages)
    if values is None:
        raise InvalidAnswer(_choose_message(question, t))
    return values[0]


def parse_choices(text: str, question: Question, languages: list[str], t: Translator) -> list[str]:
    """Several choices typed at once: ``1, 3``, ``१ ३`` or labels separated by commas.

    Commas and semicolons separate first, since labels may have spaces (``No supply``);
    a part that is no label is then read as numbers or words separated by spaces.
    """
    values: list[str] = []
    for part in filter(None, (p.strip() for p in re.split(r"[,;]+", text))):
        found = _match_choices([part], question, languages)
        found = found or _match_choices(part.split(), question, languages)
        if found is None:
            raise InvalidAnswer(_choose_message(question, t))
        values.extend(found)
    if not values:
        raise InvalidAnswer(_choose_message(question, t))
    return check_choice_count(list(dict.fromkeys(values)), question, t)


def check_choice_count(values: list[str], question: Question, t: Translator) -> list[str]:
    """Enforce a multiple-choice question's minimum and maximum number of choices."""
    exclusive = [c for c in question.choices or [] if c.exclusive and c.value in values]
    if exclusive and len(values) > 1:
        raise InvalidAnswer(
            t.gettext("“%(choice)s” cannot be combined with other answers.")
            % {"choice": _choice_label(question, exclusive[0].value, t.language)}
        )
    rules = question.validate_
    least = rules.min_choices if rules.min_choices is not None else (1 if question.required else 0)
    if len(values) < least:
        raise InvalidAnswer(
            t.ngettext(
                "Please choose at least %(count)s option.",
                "Please choose at least %(count)s options.",
                least,
            )
            % {"count": least}
        )
    if rules.max_choices is not None and len(values) > rules.max_choices:
        raise InvalidAnswer(
            t.ngettext(
                "Please choose at most %(count)s option.",
                "Please choose at most %(count)s options.",
                rules.max_choices,
            )
            % {"count": rules.max_choices}
        )
    return values


def show_answer(question: Question, value: Any, t: Translator) -> str:
    """An answer as the CFA should read it back in the review, in their language."""
    if value is None:
        return t.gettext("(skipped)")
    language = t.language
    if question.type == QuestionType.SINGLE_CHOICE:
        return _choice_label(question, str(value), language)
    if question.type == QuestionType.MULTIPLE_CHOICE:
        return ", ".join(_choice_label(question, str(v), language) for v in value)
    if question.type == QuestionType.YES_NO:
        return t.gettext("Yes") if value else t.gettext("No")
    if question.type == QuestionType.NUMBER:
        return format_decimal(value, locale=t.locale)
    if question.type == QuestionType.DATE:
        return format_date(date.fromisoformat(value), format="long", locale=t.locale)
    if question.type == QuestionType.LOCATION:
        return _show_location(value)
    if question.type == QuestionType.PHOTO:
        return "📷 " + t.gettext("photo received")
    if question.type == QuestionType.VOICE:
        return "🎤 " + t.gettext("voice note received")
    return str(value)


def _show_location(value: dict[str, Any]) -> str:
    if "text" in value:
        return f"📍 {value['text']}"
    return f"📍 {value['latitude']:.5f}, {value['longitude']:.5f}"


def _choice_label(question: Question, value: str, language: str) -> str:
    choice = question.choice(value)
    if choice is None:
        return value
    return choice.label.get(language) or next(iter(choice.label.values()))


def _choose_message(question: Question, t: Translator) -> str:
    count = len(question.choices or [])
    return t.gettext("Please tap one of the buttons, or type its number (1 to %(count)s).") % {
        "count": count
    }


def _match_choices(parts: list[str], question: Question, languages: list[str]) -> list[str] | None:
    choices = question.choices or []
    found: list[str] = []
    for part in parts:
        key = ascii_digits(part.strip()).lower().rstrip(".)")
        if key.isdigit() and 1 <= int(key) <= len(choices):
            found.append(choices[int(key) - 1].value)
            continue
        match = next(
            (
                choice.value
                for choice in choices
                if key == choice.value
                or any(key == choice.label.get(lang, "").lower() for lang in languages)
            ),
            None,
        )
        if match is None:
            return None
        found.append(match)
    return found or None


def _decimal(text: str, language: str) -> Decimal | None:
    if not re.fullmatch(r"[-+]?[0-9.,']+", text):
        return None
    try:
        return Decimal(parse_decimal(text, locale=language, strict=False))
    except (NumberFormatError, InvalidOperation, ValueError):
        pass
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _date_parts(text: str) -> tuple[int, int, int] | None:
    """Year, month and day as typed, not yet checked to be a real date."""
    for pattern, order in DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            parts = dict(zip(order, (int(group) for group in match.groups()), strict=True))
            return parts["y"], parts["m"], parts["d"]
    return None
