"""The replies that ask something: the menu, a question, the review, the confirmations.

Button payloads are short (Telegram allows 64 bytes) and name the question they belong
to, so a tap on a keyboard left over from an earlier question is recognised as stale.
"""

import unicodedata
from typing import Any

from babel.numbers import format_decimal

from bot.answers import show_answer
from bot.messages import Button, Reply
from bot.surveys import Question, QuestionType, Survey
from core.i18n import Translator, language_name


def N_(message: str) -> str:
    """Mark a text for translation where it is defined; it is translated where shown."""
    return message


# The commands a CFA has, in the order menus show them.
COMMANDS: list[tuple[str, str]] = [
    ("survey", N_("Answer the monthly survey")),
    ("report", N_("Report a problem")),
    ("myreports", N_("See my reports and their status")),
    ("back", N_("Change the previous answer")),
    ("cancel", N_("Stop the current survey")),
    ("language", N_("Change language")),
    ("stop", N_("Stop reminders and bulletins")),
    ("help", N_("How this works")),
]

# The word a CFA types to stop reminders and bulletins, translated in each catalog
# ("रोक", "arrêter"); the English word works in every language, as it does for SMS.
STOP_WORD = N_("stop")

STATUS_LABELS = {
    "received": N_("received"),
    "validated": N_("validated"),
    "rejected": N_("not taken forward"),
    "duplicate": N_("already reported"),
    "in_progress": N_("being followed up"),
    "resolved": N_("resolved"),
}


def text_of(texts: dict[str, str], language: str) -> str:
    """A survey text in ``language``, or in the first language it has."""
    return texts.get(language) or next(iter(texts.values()))


def menu(t: Translator, surveys: list[Survey], lead: str | None = None) -> Reply:
    """What a CFA can do when no survey is under way."""
    rows = [[Button(text_of(s.title, t.language), f"start:{s.id}")] for s in surveys]
    rows.append([Button(t.gettext("My reports"), "menu:myreports")])
    return Reply(text=lead or t.gettext("What would you like to do?"), buttons=rows)


def question(
    t: Translator,
    survey: Survey,
    asked: Question,
    position: int,
    total: int,
    answers: dict[str, Any],
    draft: list[str] | None,
) -> Reply:
    """A question with its place in the survey ("Question 3 of 8") and its buttons."""
    title = t.gettext("Question %(number)s of %(total)s") % {
        "number": format_decimal(position, locale=t.locale),
        "total": format_decimal(total, locale=t.locale),
    }
    lines = [text_of(asked.label, t.language)]
    if asked.hint:
        lines.append(text_of(asked.hint, t.language))
    lines.append(_expectation(asked, t))
    if asked.id in answers:
        lines.append(
            t.gettext("Current answer: %(answer)s")
            % {"answer": show_answer(asked, answers[asked.id], t)}
        )
    return Reply(
        text="\n".join(lines), title=title, buttons=_question_buttons(asked, t, answers, draft)
    )


def review(t: Translator, survey: Survey, asked: list[Question], answers: dict[str, Any]) -> Reply:
    """All answers, numbered, with the buttons to send, change or cancel."""
    lines = [t.gettext("Please check your answers before sending:"), ""]
    for number, item in enumerate(asked, start=1):
        shown = show_answer(item, answers.get(item.id), t)
        lines.append(f"{number}. {text_of(item.label, t.language)}\n   → {shown}")
    buttons = [
        [Button("✅ " + t.gettext("Send"), "review:send")],
        [Button("✏️ " + t.gettext("Change an answer"), "review:edit")],
        [Button("✖ " + t.gettext("Cancel"), "review:cancel")],
    ]
    return Reply(text="\n".join(lines), title=text_of(survey.title, t.language), buttons=buttons)


def change_menu(t: Translator, asked: list[Question]) -> Reply:
    """Which answer to change, one button per question asked."""
    rows = [
        [Button(f"{n}. {_short(text_of(q.label, t.language))}", f"edit:{q.id}")]
        for n, q in enumerate(asked, start=1)
    ]
    rows.append([Button(t.gettext("Back to the review"), "review:show")])
    return Reply(text=t.gettext("Which answer do you want to change?"), buttons=rows)


def confirm_cancel(t: Translator) -> Reply:
    """Ask before throwing the answers away: a mistaken tap must not lose a survey."""
    return Reply(
        text=t.gettext("Stop this survey? Your answers will not be sent."),
        buttons=[
            [Button(t.gettext("Yes, stop"), "cancel:yes")],
            [Button(t.gettext("No, continue"), "cancel:no")],
        ],
    )


def language_menu(t: Translator, languages: list[str]) -> Reply:
    """The deployment's languages, each in its own name."""
    rows = [[Button(language_name(code), f"lang:{code}")] for code in languages]
    return Reply(text=t.gettext("Choose your language:"), buttons=rows)


def help_text(t: Translator) -> Reply:
    """What the bot is for and the commands it knows."""
    lines = [t.gettext("I collect your community's reports and tell you what becomes of them.")]
    lines += [f"/{name} — {t.gettext(description)}" for name, description in COMMANDS]
    return Reply(text="\n".join(lines))


def is_stop_word(text: str, t: Translator) -> bool:
    """Whether a typed message is only the stop word, in English or the CFA's language.

    Case, accents and end punctuation are ignored: people type "Arreter", "STOP!" or "रोक।".
    """
    typed = _folded(text)
    return typed in {_folded(STOP_WORD), _folded(t.gettext(STOP_WORD))}


def opted_out(t: Translator) -> Reply:
    """The confirmation of /stop: what stops, what still works, and the way back."""
    return Reply(
        t.gettext(
            "You will get no more reminders or bulletins from us. You can still send "
            "reports at any time with /report or /survey. To get them again, send /start."
        )
    )


def opted_in(t: Translator) -> Reply:
    """The confirmation of /start after /stop."""
    return Reply(t.gettext("Welcome back! You will get reminders and bulletins again."))


def _folded(text: str) -> str:
    word = text.casefold().strip().rstrip(".!।").strip()
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _question_buttons(
    asked: Question, t: Translator, answers: dict[str, Any], draft: list[str] | None
) -> list[list[Button]]:
    rows: list[list[Button]] = []
    if asked.type == QuestionType.SINGLE_CHOICE:
        rows = _pairs(
            [
                Button(text_of(c.label, t.language), f"a:{asked.id}:{c.value}")
                for c in asked.choices or []
            ]
        )
    elif asked.type == QuestionType.MULTIPLE_CHOICE:
        chosen = set(draft or [])
        rows = _pairs(
            [
                Button(
                    ("☑ " if c.value in chosen else "☐ ") + text_of(c.label, t.language),
                    f"toggle:{asked.id}:{c.value}",
                )
                for c in asked.choices or []
            ]
        )
        rows.append([Button("✔ " + t.gettext("Done"), f"done:{asked.id}")])
    elif asked.type == QuestionType.YES_NO:
        rows = [
            [
                Button(t.gettext("Yes"), f"a:{asked.id}:yes"),
                Button(t.gettext("No"), f"a:{asked.id}:no"),
            ]
        ]
    elif asked.type == QuestionType.DATE:
        rows = [
            [
                Button(t.gettext("Today"), f"a:{asked.id}:today"),
                Button(t.gettext("Yesterday"), f"a:{asked.id}:yesterday"),
            ]
        ]

    if asked.id in answers and asked.type != QuestionType.MULTIPLE_CHOICE:
        rows.append([Button(t.gettext("Keep answer"), f"keep:{asked.id}")])
    if not asked.required:
        rows.append([Button(t.gettext("Skip"), f"skip:{asked.id}")])
    return rows


def _expectation(asked: Question, t: Translator) -> str:
    expected = {
        QuestionType.TEXT: t.gettext("Type your answer."),
        QuestionType.SINGLE_CHOICE: t.gettext("Tap one answer."),
        QuestionType.MULTIPLE_CHOICE: t.gettext("Tap every answer that applies, then Done."),
        QuestionType.NUMBER: t.gettext("Type a number."),
        QuestionType.DATE: t.gettext("Type the date as day/month/year, or tap a button."),
        QuestionType.YES_NO: t.gettext("Tap Yes or No."),
        QuestionType.LOCATION: t.gettext(
            "Share a location (📎 → Location), or type the place name."
        ),
        QuestionType.PHOTO: t.gettext("Send a photo."),
        QuestionType.VOICE: t.gettext("Send a voice note: hold the microphone button and speak."),
    }[asked.type]
    if not asked.required:
        expected += " " + t.gettext("This question is optional.")
    return expected


def _pairs(buttons: list[Button]) -> list[list[Button]]:
    # Two short buttons side by side save scrolling on small screens; long labels need a row.
    if all(len(button.label) <= 14 for button in buttons):
        return [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    return [[button] for button in buttons]


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# What the staff desk tells a CFA outside a conversation (through the outbox).
INFO_REQUEST = N_(
    "About your report %(reference)s, the helpdesk asks: %(question)s\n\n"
    "Please answer with a message here."
)
INFO_THANKS = N_("Thank you! Your answer was added to your report %(reference)s.")
ISSUE_UPDATES = {
    "referred": N_("Your report %(reference)s was taken to: %(authority)s."),
    "responded": N_("%(authority)s answered about your report %(reference)s."),
    "in_progress": N_("Work has started on the problem in your report %(reference)s."),
    "resolved": N_("The problem in your report %(reference)s is resolved."),
    "closed": N_(
        "We have stopped following the problem in your report %(reference)s, without a resolution."
    ),
}
ISSUE_OUTCOME = N_("What happened: %(outcome)s")
# When an authority is not named yet, the update says this instead.
UNNAMED_AUTHORITY = N_("The authorities")
AIRING = N_(
    "The outcome of your report %(reference)s will be on %(station)s on %(date)s at %(time)s."
)
