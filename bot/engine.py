"""The conversation engine: moves one CFA's saved conversation one step per message.

The engine knows nothing of Telegram or WhatsApp. For each :class:`Incoming` it opens a
transaction, loads the CFA's :class:`core.models.ConversationSession`, applies the step,
marks the update processed in the intake ledger, commits, and only then returns the
replies: an answer the CFA saw acknowledged is always saved, and after a restart the
conversation continues where it was.
"""

import logging
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import prompts, store
from bot.answers import (
    InvalidAnswer,
    check_choice_count,
    parse_choice,
    parse_choices,
    parse_date,
    parse_number,
    parse_text,
    parse_yes_no,
)
from bot.messages import Incoming, Kind, Reply
from bot.prompts import STATUS_LABELS, text_of
from bot.surveys import MEDIA_TYPES, Question, QuestionType, Survey
from core import bulletins, review
from core.db import Database, utcnow
from core.deployment import Deployment
from core.i18n import Translator, negotiate, translator
from core.models import Cfa, ConversationSession, SurveyDefinition

logger = logging.getLogger(__name__)


class Engine:
    """Runs surveys and problem reports for registered CFAs on any channel.

    Args:
        db: the project's database.
        deployment: the loaded deployment (languages, country, surveys).
    """

    def __init__(self, db: Database, deployment: Deployment) -> None:
        self.db = db
        self.deployment = deployment
        self._surveys: dict[int, Survey] = {}

    async def handle(
        self, channel: str, address: str, incoming: Incoming, *, update_key: str | None = None
    ) -> list[Reply]:
        """Apply one message and return what to answer, after it is committed.

        Args:
            channel: ``telegram``, ``whatsapp`` or ``terminal``.
            address: the person's id on that channel (a chat id, a phone number).
            incoming: what they sent.
            update_key: the channel's id of the update, marked processed in the ledger
                in the same transaction, so a redelivery after a crash is not applied twice.
        """
        started = time.perf_counter()
        async with self.db.session() as session:
            if update_key is not None:
                await store.mark_processed(session, channel, update_key)
            cfa = await store.find_cfa(session, channel, address)
            if cfa is None:
                replies = await self._stranger(session, channel, address, incoming)
            else:
                replies = await self._turn(session, cfa, channel).step(incoming)

        logger.debug(
            "%s:%s %s handled in %.1f ms",
            channel,
            address,
            incoming.kind,
            (time.perf_counter() - started) * 1000,
        )
        return replies

    async def wants_media(self, channel: str, address: str, kind: Kind) -> bool:
        """Whether the CFA's current question takes a photo or voice note of ``kind``.

        Channels ask before downloading, so nothing is fetched (or kept) that no
        question asked for.
        """
        async with self.db.session() as session:
            cfa = await store.find_cfa(session, channel, address)
            if cfa is None:
                return False
            conversation = await session.scalar(
                select(ConversationSession).where(ConversationSession.cfa_id == cfa.id)
            )
            if conversation is not None and conversation.state == "recording":
                return kind == Kind.VOICE
            if conversation is None or conversation.state != "asking":
                return False
            survey = await self.survey_version(session, conversation.survey_definition_id)
            question = survey.question(conversation.question_id or "")
            return question.type.value == kind.value

    async def survey_version(self, session: AsyncSession, definition_id: int | None) -> Survey:
        """A stored survey version, parsed once per process: versions never change.

        Raises:
            LookupError: no conversation under way, or the version is not stored.
        """
        if definition_id is None:
            raise LookupError("no survey is under way")
        if definition_id not in self._surveys:
            definition = await session.get(SurveyDefinition, definition_id)
            if definition is None:
                raise LookupError(f"survey version {definition_id} is not stored")
            self._surveys[definition_id] = Survey.model_validate(definition.definition)
        return self._surveys[definition_id]

    def translator(self, language: str) -> Translator:
        """The texts of ``language``."""
        return translator(language)

    def apology(self, client_language: str | None) -> Reply:
        """What to say when a step failed on our side and nothing of it was saved."""
        config = self.deployment.config
        language = negotiate(client_language, config.languages, config.default_language)
        return Reply(
            self.translator(language).gettext(
                "Sorry, something went wrong on our side. Your earlier answers are safe; "
                "please send your last message again."
            )
        )

    def _turn(self, session: AsyncSession, cfa: Cfa, channel: str) -> "Turn":
        return Turn(self, session, cfa, channel, self.translator(cfa.language))

    async def _stranger(
        self, session: AsyncSession, channel: str, address: str, incoming: Incoming
    ) -> list[Reply]:
        config = self.deployment.config
        language = negotiate(incoming.client_language, config.languages, config.default_language)
        t = self.translator(language)

        code = incoming.text.strip() if incoming.command == "start" else ""
        if not code:
            logger.info("%s:%s is not registered; explained, nothing stored", channel, address)
            return [
                Reply(
                    t.gettext(
                        "Hello! This service is for registered Community Frontline Associates. "
                        "If you are one, please ask your coordinator for an invitation link."
                    )
                )
            ]

        invite = await store.claim_invite(session, code)
        if invite is None:
            logger.warning("%s:%s sent an unknown or used invite code", channel, address)
            return [
                Reply(
                    t.gettext(
                        "This invitation code is not valid, has expired or was already used. "
                        "Please ask your coordinator for a new one."
                    )
                )
            ]

        name = incoming.display_name or f"CFA {channel}:{address}"
        cfa = await store.register_cfa(session, invite, channel, address, name)
        return await self._turn(session, cfa, channel).welcome()


@dataclass
class Turn:
    """One step of one CFA's conversation, inside the engine's open transaction."""

    engine: Engine
    session: AsyncSession
    cfa: Cfa
    channel: str
    t: Translator
    conversation: ConversationSession | None = None
    _survey: Survey | None = None

    async def step(self, incoming: Incoming) -> list[Reply]:
        """Route the message by its kind and the conversation's state."""
        self.conversation = await store.load_conversation(self.session, self.cfa)
        if self.conversation.survey_definition_id is not None:
            self._survey = await self.engine.survey_version(
                self.session, self.conversation.survey_definition_id
            )

        if incoming.kind == Kind.COMMAND:
            return await self._command(incoming)
        # While "stop this survey?" is asked, a typed "stop" answers that question.
        if self._is_stop_word(incoming) and self.state != "cancelling":
            return self._opt_out()
        if incoming.kind == Kind.EDITED:
            note = self.t.gettext("Edited messages are not read. To change an answer, use /back.")
            return [Reply(note), *self.prompt()]
        if incoming.kind == Kind.UNSUPPORTED:
            note = self.t.gettext(
                "I cannot read this kind of message. Please answer with text or the buttons."
            )
            return [Reply(note), *self.prompt()]

        handlers = {
            "idle": self._idle,
            "asking": self._asking,
            "review": self._review,
            "cancelling": self._cancelling,
            "language": self._choosing_language,
            "recording": self._recording,
        }
        return await handlers[self.state](incoming)

    @property
    def state(self) -> str:
        """Where the conversation is: idle, asking, review, cancelling, language, recording."""
        return self._conversation.state

    @property
    def _conversation(self) -> ConversationSession:
        assert self.conversation is not None
        return self.conversation

    @property
    def survey(self) -> Survey:
        """The survey version under way; only asked for while one is."""
        assert self._survey is not None, "a survey is under way"
        return self._survey

    async def welcome(self) -> list[Reply]:
        """The first message a newly registered CFA gets."""
        self.conversation = await store.load_conversation(self.session, self.cfa)
        community = self.cfa.community.display_name(self.t.language)
        text = self.t.gettext(
            "Welcome, %(name)s! You are registered as a reporter for %(community)s."
        ) % {"name": self.cfa.name, "community": community}
        return [Reply(text), self._menu()]

    def prompt(self) -> list[Reply]:
        """Ask again whatever the conversation is waiting for."""
        if self.state == "asking":
            return [self._question_reply()]
        if self.state == "review":
            return [self._review_reply()]
        if self.state == "cancelling":
            return [prompts.confirm_cancel(self.t)]
        if self.state == "language":
            return [prompts.language_menu(self.t, self.engine.deployment.languages)]
        if self.state == "recording":
            return [self._recording_prompt()]
        return [self._menu()]

    # Commands ---------------------------------------------------------------------------

    async def _command(self, incoming: Incoming) -> list[Reply]:
        command = incoming.command or ""
        if command == "stop":
            return self._opt_out()
        if command == "start" and not incoming.text.strip() and self.cfa.opted_out_at:
            return self._opt_in()
        if command == "start":
            if incoming.text.strip():
                note = self.t.gettext("You are already registered. Welcome back!")
                return [Reply(note), *self.prompt()]
            return self.prompt()
        if command == "help":
            return [prompts.help_text(self.t), *self.prompt()]
        if command in ("survey", "report"):
            return await self._start_by_kind("survey" if command == "survey" else "report")
        if command == "myreports":
            return [await self._my_reports(), *self.prompt()]
        if command == "language":
            return self._enter("language")
        if command == "cancel":
            return self._cancel_command()
        if command == "back":
            return self._back()
        if command == "record" and self.cfa.role == "journalist":
            return await self._start_recording(incoming.text)
        note = self.t.gettext("I do not know that command.")
        return [Reply(note), prompts.help_text(self.t)]

    def _is_stop_word(self, incoming: Incoming) -> bool:
        return incoming.kind == Kind.TEXT and prompts.is_stop_word(incoming.text, self.t)

    def _opt_out(self) -> list[Reply]:
        # A survey under way is kept: opting out stops what we send, not what they report.
        if self.cfa.opted_out_at is None:
            self.cfa.opted_out_at = utcnow()
            logger.info("cfa %s opted out of reminders and bulletins", self.cfa.id)
        return [prompts.opted_out(self.t), *self.prompt()]

    def _opt_in(self) -> list[Reply]:
        self.cfa.opted_out_at = None
        logger.info("cfa %s opted back in to reminders and bulletins", self.cfa.id)
        return [prompts.opted_in(self.t), *self.prompt()]

    def _enter(self, state: str) -> list[Reply]:
        if self.state not in ("language", "cancelling", "recording"):
            self._conversation.resume_state = self.state
        self._conversation.state = state
        return self.prompt()

    def _resume(self) -> list[Reply]:
        self._conversation.state = self._conversation.resume_state or "idle"
        self._conversation.resume_state = None
        return self.prompt()

    def _cancel_command(self) -> list[Reply]:
        if self.state == "recording":
            self._conversation.pending = None
            return [Reply(self.t.gettext("Stopped. Nothing was sent.")), *self._resume()]
        if self.state in ("asking", "review"):
            return self._enter("cancelling")
        if self.state == "cancelling":
            return self.prompt()
        return [Reply(self.t.gettext("There is nothing to stop.")), *self._resume_or_prompt()]

    def _resume_or_prompt(self) -> list[Reply]:
        return self._resume() if self.state == "language" else self.prompt()

    def _back(self) -> list[Reply]:
        if self.state in ("cancelling", "language"):
            self._resume()
        if self.state == "review":
            asked = self._asked()
            self._set_question(asked[-1].id)
            return self.prompt()
        if self.state != "asking":
            return [
                Reply(self.t.gettext("There is no previous answer to change.")),
                *self.prompt(),
            ]

        asked = self._asked()
        current = self._conversation.question_id
        ids = [q.id for q in asked]
        if current not in ids or ids.index(current) == 0:
            return [Reply(self.t.gettext("This is the first question.")), *self.prompt()]
        self._set_question(ids[ids.index(current) - 1])
        return self.prompt()

    # States -----------------------------------------------------------------------------

    async def _idle(self, incoming: Incoming) -> list[Reply]:
        data = incoming.data or ""
        if data.startswith("start:"):
            return await self._start(data.removeprefix("start:"))
        if data == "menu:myreports":
            return [await self._my_reports(), self._menu()]
        # Staff asked about one of the CFA's reports: the next typed message answers it.
        if incoming.kind == Kind.TEXT:
            thanks = await review.take_answer(self.session, self.cfa, incoming.text)
            if thanks is not None:
                return [Reply(thanks), self._menu()]
        return [
            self._menu(
                lead=self.t.gettext("Please choose one of the buttons below, or send /help.")
            )
        ]

    async def _asking(self, incoming: Incoming) -> list[Reply]:
        question = self.survey.question(self._conversation.question_id or "")
        try:
            if incoming.kind == Kind.BUTTON:
                return await self._asking_button(question, incoming.data or "")
            value = await self._read(question, incoming)
        except InvalidAnswer as invalid:
            return [Reply("⚠️ " + invalid.message), self._question_reply()]
        return self._record(question, value)

    async def _asking_button(self, question: Question, data: str) -> list[Reply]:
        action, _, rest = data.partition(":")
        question_id, _, value = rest.partition(":")
        if question_id != question.id or action not in ("a", "skip", "toggle", "done", "keep"):
            note = self.t.gettext(
                "That button belongs to an earlier message. Here is the current question:"
            )
            return [Reply(note), self._question_reply()]

        if action == "skip":
            if question.required:
                raise InvalidAnswer(self.t.gettext("This question needs an answer."))
            return self._record(question, None)
        if action == "keep" and question.id in self._conversation.answers:
            return self._record(question, self._conversation.answers[question.id])
        if action == "toggle":
            return self._toggle(question, value)
        if action == "done":
            chosen = check_choice_count(list(self._conversation.draft or []), question, self.t)
            return self._record(question, chosen)
        return self._record(question, await self._read(question, Incoming(Kind.TEXT, text=value)))

    def _toggle(self, question: Question, value: str) -> list[Reply]:
        if question.choice(value) is None:
            return [self._question_reply()]
        chosen = list(self._conversation.draft or [])
        chosen = [v for v in chosen if v != value] if value in chosen else [*chosen, value]
        self._conversation.draft = chosen
        reply = self._question_reply()
        reply.replace = True
        return [reply]

    async def _read(self, question: Question, incoming: Incoming) -> Any:
        """Turn a message into the answer it gives to ``question``, or raise InvalidAnswer."""
        if incoming.kind == Kind.TEXT and not question.required and self._is_skip(incoming.text):
            return None
        if question.type in MEDIA_TYPES:
            return await self._read_media(question, incoming)
        if question.type == QuestionType.LOCATION and incoming.kind == Kind.LOCATION:
            return self._coordinates(incoming)

        # A caption is read as the typed answer; a photo without one, or anything else
        # that carries no text, cannot answer a typed question.
        typed = incoming.kind == Kind.TEXT or (incoming.kind == Kind.PHOTO and incoming.text)
        if not typed:
            raise InvalidAnswer(self._wrong_kind(question))
        return self._parse(question, incoming.text)

    def _coordinates(self, incoming: Incoming) -> dict[str, float]:
        latitude, longitude = incoming.latitude, incoming.longitude
        # NaN and infinities fail every comparison, so they are refused here too.
        if not (
            latitude is not None
            and longitude is not None
            and -90 <= latitude <= 90
            and -180 <= longitude <= 180
        ):
            raise InvalidAnswer(
                self.t.gettext(
                    "That location is not on the map. Please share "
                    "it again, or type the place name."
                )
            )
        return {"latitude": latitude, "longitude": longitude}

    def _parse(self, question: Question, text: str) -> Any:
        languages = self.engine.deployment.languages
        if question.type == QuestionType.TEXT:
            return parse_text(text, question, self.t)
        if question.type == QuestionType.NUMBER:
            return parse_number(text, question, self.t)
        if question.type == QuestionType.DATE:
            return parse_date(text, question, self.t, self._today())
        if question.type == QuestionType.YES_NO:
            return parse_yes_no(text, self.t)
        if question.type == QuestionType.SINGLE_CHOICE:
            return parse_choice(text, question, languages, self.t)
        if question.type == QuestionType.MULTIPLE_CHOICE:
            return parse_choices(text, question, languages, self.t)
        place = text.strip()
        if len(place) < 2:
            raise InvalidAnswer(self._wrong_kind(question))
        return {"text": place}

    async def _read_media(self, question: Question, incoming: Incoming) -> int:
        if incoming.kind.value != question.type.value or incoming.media is None:
            raise InvalidAnswer(self._wrong_kind(question))
        media = incoming.media
        return await store.add_media(
            self.session,
            self.cfa.id,
            question.id,
            kind=question.type.value,
            path=media.path,
            mime_type=media.mime_type,
            size=media.size,
            sha256=media.sha256,
            source_id=media.source_id,
        )

    def _wrong_kind(self, question: Question) -> str:
        messages = {
            QuestionType.PHOTO: self.t.gettext("This question needs a photo."),
            QuestionType.VOICE: self.t.gettext("This question needs a voice note."),
            QuestionType.LOCATION: self.t.gettext(
                "This question needs a location: share it, or type the place name."
            ),
        }
        return messages.get(
            question.type,
            self.t.gettext("This question needs a typed answer or a tap on a button."),
        )

    def _is_skip(self, text: str) -> bool:
        word = text.strip().lower()
        return word in ("skip", "/skip", self.t.gettext("Skip").lower())

    def _record(self, question: Question, value: Any) -> list[Reply]:
        conversation = self._conversation
        answers = dict(conversation.answers)
        answers[question.id] = value
        conversation.answers = self._prune(answers)
        conversation.draft = None

        following = self._next_question()
        if following is None:
            conversation.state = "review"
            conversation.question_id = None
        else:
            self._set_question(following.id)
        logger.debug("cfa %s answered %s.%s", self.cfa.id, self.survey.id, question.id)
        return self.prompt()

    async def _review(self, incoming: Incoming) -> list[Reply]:
        data = incoming.data or ""
        if data == "review:send":
            return await self._submit()
        if data == "review:edit":
            return [prompts.change_menu(self.t, self._asked())]
        if data == "review:cancel":
            return self._enter("cancelling")
        if data.startswith("edit:") and data.removeprefix("edit:") in self._asked_ids():
            self._set_question(data.removeprefix("edit:"))
            return self.prompt()
        if data == "review:show":
            return self.prompt()
        note = self.t.gettext("Please use the buttons below: send, change an answer, or cancel.")
        return [Reply(note), *self.prompt()]

    async def _cancelling(self, incoming: Incoming) -> list[Reply]:
        if incoming.data == "cancel:yes":
            self._clear()
            logger.info("cfa %s stopped a survey; answers dropped", self.cfa.id)
            return [Reply(self.t.gettext("Stopped. Nothing was sent.")), self._menu()]
        if incoming.data == "cancel:no":
            return self._resume()
        if incoming.kind == Kind.TEXT:
            try:
                stop = parse_yes_no(incoming.text, self.t)
            except InvalidAnswer as invalid:
                return [Reply("⚠️ " + invalid.message), *self.prompt()]
            return await self._cancelling(
                Incoming(Kind.BUTTON, data=f"cancel:{'yes' if stop else 'no'}")
            )
        return self.prompt()

    async def _choosing_language(self, incoming: Incoming) -> list[Reply]:
        code = (incoming.data or "").removeprefix("lang:")
        if code not in self.engine.deployment.languages:
            return self.prompt()
        self.cfa.language = code
        self.t = self.engine.translator(code)
        logger.info("cfa %s switched language to %s", self.cfa.id, code)
        return [Reply(self.t.gettext("Language changed.")), *self._resume()]

    # Recording a bulletin (journalists) ----------------------------------------------------

    async def _start_recording(self, arguments: str) -> list[Reply]:
        usage = self.t.gettext("Send /record BULLETIN LANGUAGE, for example /record 12 ne.")
        parts = arguments.split()
        if len(parts) != 2 or not parts[0].isdigit():
            return [Reply(usage)]
        try:
            bulletin = await bulletins.recordable(self.session, int(parts[0]), parts[1].lower())
        except bulletins.BulletinError as error:
            logger.info("cfa %s cannot record: %s", self.cfa.id, error)
            return [
                Reply(
                    self.t.gettext("That bulletin cannot be recorded: %(reason)s")
                    % {"reason": str(error)}
                )
            ]

        script = "\n\n".join(i.text for i in bulletins.script(bulletin, parts[1].lower()))
        self._enter("recording")
        self._conversation.pending = {
            "bulletin": bulletin.id,
            "language": parts[1].lower(),
            "script": script,
        }
        return self.prompt()

    def _recording_prompt(self) -> Reply:
        pending = self._conversation.pending or {}
        text = self.t.gettext(
            "Read this script aloud and send it as one voice note. /cancel to stop."
        )
        return Reply(
            f"{text}\n\n{pending.get('script', '')}",
            title=self.t.gettext("Bulletin %(number)s (%(language)s)")
            % {"number": pending.get("bulletin"), "language": pending.get("language")},
        )

    async def _recording(self, incoming: Incoming) -> list[Reply]:
        if incoming.kind != Kind.VOICE or incoming.media is None:
            return [Reply("⚠️ " + self.t.gettext("This needs a voice note.")), *self.prompt()]
        pending = self._conversation.pending or {}
        await bulletins.save_recording(
            self.session,
            int(pending["bulletin"]),
            str(pending["language"]),
            path=incoming.media.path,
            mime_type=incoming.media.mime_type,
            source=self.channel,
            cfa_id=self.cfa.id,
        )
        self._conversation.pending = None
        done = self.t.gettext(
            "Thank you. Your reading of bulletin %(number)s is saved and "
            "will be used when it is rendered."
        ) % {"number": pending["bulletin"]}
        return [Reply(done), *self._resume()]

    # Surveys ----------------------------------------------------------------------------

    async def _start_by_kind(self, kind: str) -> list[Reply]:
        if self.state in ("asking", "review"):
            note = self.t.gettext(
                "You are already answering a survey. Finish it, or use /cancel to stop it."
            )
            return [Reply(note), *self.prompt()]
        survey = next((s for s in self.engine.deployment.surveys.values() if s.kind == kind), None)
        if survey is None:
            return [Reply(self.t.gettext("This is not available here.")), self._menu()]
        return await self._start(survey.id)

    async def _start(self, survey_id: str) -> list[Reply]:
        definition = await store.latest_definition(self.session, survey_id)
        if definition is None:
            logger.warning(
                "survey %s requested but not loaded; run helpdesk content load", survey_id
            )
            return [Reply(self.t.gettext("This is not available here.")), self._menu()]

        conversation = self._conversation
        conversation.state = "asking"
        conversation.survey_definition_id = definition.id
        self._survey = await self.engine.survey_version(self.session, definition.id)
        conversation.answers = {}
        conversation.draft = None
        conversation.started_at = datetime.now(ZoneInfo("UTC"))
        first = self._next_question()
        assert first is not None, "a survey has at least one question"
        self._set_question(first.id)

        logger.info("cfa %s started %s v%d", self.cfa.id, survey_id, definition.version)
        replies = []
        if self.survey.intro:
            replies.append(
                Reply(
                    text_of(self.survey.intro, self.t.language),
                    title=text_of(self.survey.title, self.t.language),
                )
            )
        return [*replies, *self.prompt()]

    async def _submit(self) -> list[Reply]:
        survey, conversation = self.survey, self._conversation
        answers = {q.id: conversation.answers.get(q.id) for q in self._asked()}
        year = datetime.now(ZoneInfo("UTC")).year
        number = await store.next_number(self.session, f"report:{year}")
        reference = f"{self.engine.deployment.config.country}-{year}-{number:06d}"

        location = answers.get(survey.location_from) if survey.location_from else None
        location = location or {}
        category = survey.category or str(answers.get(survey.category_from or "") or survey.id)
        media_ids = [
            v
            for q in self._asked()
            if q.type in MEDIA_TYPES
            for v in [answers.get(q.id)]
            if isinstance(v, int)
        ]
        assert conversation.survey_definition_id is not None
        report = await store.create_report(
            self.session,
            reference=reference,
            media_ids=media_ids,
            cfa_id=self.cfa.id,
            community_id=self.cfa.community_id,
            survey_definition_id=conversation.survey_definition_id,
            kind=survey.kind,
            category=category,
            language=self.t.language,
            channel=self.channel,
            answers=answers,
            location_lat=location.get("latitude"),
            location_lon=location.get("longitude"),
            location_text=location.get("text"),
        )
        self._clear()
        logger.info("report %s received from cfa %s (%s)", report.reference, self.cfa.id, category)
        receipt = self.t.gettext(
            "Thank you! Your report was received. Reference: %(reference)s. "
            "We will tell you what becomes of it."
        ) % {"reference": reference}
        return [Reply(receipt), self._menu()]

    def _clear(self) -> None:
        conversation = self._conversation
        conversation.state = "idle"
        conversation.resume_state = None
        conversation.survey_definition_id = None
        self._survey = None
        conversation.question_id = None
        conversation.answers = {}
        conversation.draft = None

    def _set_question(self, question_id: str) -> None:
        conversation = self._conversation
        conversation.state = "asking"
        conversation.question_id = question_id
        current = conversation.answers.get(question_id)
        question = self.survey.question(question_id)
        conversation.draft = None
        if question.type == QuestionType.MULTIPLE_CHOICE and isinstance(current, list):
            conversation.draft = list(current)

    def _applicable(self, answers: dict[str, Any]) -> list[Question]:
        # A question whose condition is not decided yet counts as coming, so "question 3
        # of 8" does not jump when the deciding answer arrives; its trigger is always
        # earlier, so it is never asked before it is decided.
        return [
            q
            for q in self.survey.questions
            if q.ask_if is None
            or q.ask_if.question not in answers
            or q.ask_if.matches(answers[q.ask_if.question])
        ]

    def _prune(self, answers: dict[str, Any]) -> dict[str, Any]:
        # An answer changed with /back can make later questions inapplicable; their old
        # answers must not be sent.
        kept = {q.id for q in self._applicable(answers)}
        return {key: value for key, value in answers.items() if key in kept}

    def _asked(self) -> list[Question]:
        return self._applicable(self._conversation.answers)

    def _asked_ids(self) -> list[str]:
        return [q.id for q in self._asked()]

    def _next_question(self) -> Question | None:
        answers = self._conversation.answers
        return next((q for q in self._applicable(answers) if q.id not in answers), None)

    def _question_reply(self) -> Reply:
        conversation = self._conversation
        asked = self.survey.question(conversation.question_id or "")
        applicable = self._asked()
        ids = [q.id for q in applicable]
        position = ids.index(asked.id) + 1 if asked.id in ids else len(ids)
        return prompts.question(
            self.t,
            self.survey,
            asked,
            position,
            len(applicable),
            conversation.answers,
            conversation.draft,
        )

    def _review_reply(self) -> Reply:
        return prompts.review(self.t, self.survey, self._asked(), self._conversation.answers)

    def _menu(self, lead: str | None = None) -> Reply:
        return prompts.menu(self.t, list(self.engine.deployment.surveys.values()), lead)

    def _today(self) -> date:
        return datetime.now(ZoneInfo(self.cfa.community.timezone)).date()

    async def _my_reports(self) -> Reply:
        reports = await store.cfa_reports(self.session, self.cfa.id)
        if not reports:
            return Reply(self.t.gettext("You have not sent any report yet."))

        zone = ZoneInfo(self.cfa.community.timezone)
        lines = []
        for report in reports:
            survey = await self.engine.survey_version(self.session, report.survey_definition_id)
            title = text_of(survey.title, self.t.language)
            status = self.t.gettext(STATUS_LABELS.get(report.status, report.status))
            day = format_date(report.submitted_at.astimezone(zone), "medium", locale=self.t.locale)
            lines.append(f"{report.reference} · {title} · {day}\n   {status}")
        header = self.t.ngettext(
            "Your latest report:", "Your latest %(count)s reports:", len(reports)
        ) % {"count": len(reports)}
        return Reply("\n".join([header, *lines]))
